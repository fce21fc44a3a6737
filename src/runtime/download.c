/* Hub downloads owned by the manager: single-flight per model, a thread each, progress that
 * pollers, /health and /v1/models read without waiting, and a progress bar on a terminal. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/internal.h"
#include "runtime/common.h"
#include "runtime/discovery.h"
#include "util/log.h"

#define LOG_INTERVAL_S 10.0

struct rt_dl {
    atomic_int refs; /* the manager's list + each rt_download handle */
    rt_manager *rt;  /* NULL for a handle on a model already on disk */
    rt_model *model;
    char id[RT_ID_MAX];
    char url[2 * RT_PATH_MAX];
    char dest[RT_PATH_MAX];
    atomic_bool cancel;
    rt_fetch_progress progress;
    bool show_bar;
    int last_decile;
    double last_log, started;
    pthread_mutex_t mu; /* guards what follows; taken after rt->mu, never before */
    pthread_cond_t cv;
    bool done;
    rt_status status;
    rt_error error;
    uint64_t seq; /* bumped at every progress report */
    bool has_thread;
    pthread_t thread;
};

struct rt_download {
    rt_dl *dl;
    uint64_t seen_seq;
};

static rt_dl *dl_new(const char *id) {
    rt_dl *dl = calloc(1, sizeof *dl);
    if (dl == NULL) return NULL;
    atomic_init(&dl->refs, 1);
    atomic_init(&dl->cancel, false);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&dl->mu, NULL);
    pthread_cond_init(&dl->cv, &attr);
    pthread_condattr_destroy(&attr);
    snprintf(dl->id, sizeof dl->id, "%s", id);
    dl->last_decile = -1;
    return dl;
}

static void dl_release(rt_dl *dl) {
    if (dl == NULL || atomic_fetch_sub(&dl->refs, 1) != 1) return;
    pthread_mutex_destroy(&dl->mu);
    pthread_cond_destroy(&dl->cv);
    free(dl);
}

static bool dl_done(rt_dl *dl) {
    pthread_mutex_lock(&dl->mu);
    bool done = dl->done;
    pthread_mutex_unlock(&dl->mu);
    return done;
}

void rt_download_progress_of(rt_dl *dl, uint64_t *bytes, uint64_t *total, double *rate) {
    *bytes = atomic_load(&dl->progress.bytes);
    *total = atomic_load(&dl->progress.total);
    *rate = atomic_load(&dl->progress.rate);
}

/* ---- display ----------------------------------------------------------------------------- */

static void format_eta(double seconds, char *buf, size_t size) {
    if (seconds < 0 || seconds > 99 * 3600) {
        snprintf(buf, size, "--:--");
        return;
    }
    int s = (int)seconds;
    if (s >= 3600)
        snprintf(buf, size, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, size, "%d:%02d", s / 60, s % 60);
}

static void draw(rt_dl *dl, const rt_fetch_progress *p, bool final) {
    uint64_t bytes = atomic_load(&p->bytes), total = atomic_load(&p->total);
    double rate = atomic_load(&p->rate);
    double pct = total > 0 ? 100.0 * (double)bytes / (double)total : 0;
    double eta = rate > 0 && total >= bytes ? (double)(total - bytes) / rate : -1;
    char eta_text[16];
    format_eta(eta, eta_text, sizeof eta_text);
    int phase = atomic_load(&p->phase);
    if (dl->show_bar) {
        enum { WIDTH = 24 };
        char bar[WIDTH + 1];
        int fill = (int)(pct / 100.0 * WIDTH);
        for (int i = 0; i < WIDTH; i++) bar[i] = i < fill ? '#' : '.';
        bar[WIDTH] = '\0';
        fprintf(stderr, "\r%-32.32s [%s] %5.1f%% %7.1f MB/s ETA %-8s%s", dl->id, bar, pct,
                rate / 1e6, eta_text, final ? "\n" : "");
        return;
    }
    double now = rt_now();
    int decile = (int)(pct / 10);
    /* The outcome is logged separately; nothing to say before the first bytes. */
    if (final || phase == RT_DOWNLOAD_VERIFYING || total == 0) return;
    if (decile != dl->last_decile || now - dl->last_log >= LOG_INTERVAL_S) {
        dl->last_decile = decile;
        dl->last_log = now;
        fl_log(FL_LOG_INFO, "downloading %s: %.0f%% (%.1f of %.1f MB, %.1f MB/s, ETA %s)", dl->id,
               pct, (double)bytes / 1e6, (double)total / 1e6, rate / 1e6, eta_text);
    }
}

static void on_report(void *user, const rt_fetch_progress *p, bool final) {
    rt_dl *dl = user;
    pthread_mutex_lock(&dl->mu);
    dl->seq++;
    pthread_cond_broadcast(&dl->cv);
    pthread_mutex_unlock(&dl->mu);
    draw(dl, p, final);
}

/* ---- the download thread ----------------------------------------------------------------- */

static void publish_result(rt_dl *dl, rt_status status, const rt_error *err) {
    rt_manager *rt = dl->rt;
    rt_model *m = dl->model;
    struct stat st;
    bool present = status == RT_OK && stat(dl->dest, &st) == 0;
    pthread_mutex_lock(&rt->mu);
    if (present) {
        m->on_disk = true;
        m->listed = true;
        m->size = (uint64_t)st.st_size;
        m->mtime = (int64_t)st.st_mtime;
        m->error.status = RT_OK;
        m->error.message[0] = '\0';
        if (m->state == RT_STATE_DOWNLOADING) m->state = RT_STATE_ON_DISK;
    } else {
        m->state = RT_STATE_FAILED;
        m->error = *err;
        m->warmup_pending = false;
    }
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    pthread_mutex_lock(&dl->mu);
    dl->done = true;
    dl->status = status;
    dl->error = *err;
    dl->seq++;
    pthread_cond_broadcast(&dl->cv);
    pthread_mutex_unlock(&dl->mu);
}

static void *download_main(void *arg) {
    rt_dl *dl = arg;
    rt_manager *rt = dl->rt;
    rt_error err = {0};
    rt_status status;
    double t0 = rt_now();
    char shown[sizeof dl->url];
    fl_log(FL_LOG_INFO, "downloading %s from %s", dl->id,
           rt_url_for_log(dl->url, shown, sizeof shown));
    char type_dir[RT_PATH_MAX];
    snprintf(type_dir, sizeof type_dir, "%s/%s", rt->model_path,
             dl->model->name.type == RT_MODEL_LLM ? "llm" : "whisper");
    status = rt_prepare_write_path(type_dir, dl->dest, &err);
    if (status == RT_OK) {
        rt_fetch_request req;
        rt_fetch_request_defaults(&req);
        req.url = dl->url;
        req.dest = dl->dest;
        req.token = rt->hf_token;
        req.retries = rt->cfg.download_retries;
        req.backoff_s = rt->cfg.download_backoff_s;
        req.cancel = &dl->cancel;
        req.progress = &dl->progress;
        req.report = on_report;
        req.report_user = dl;
        status = rt_fetch(&req, &err);
    }
    if (status == RT_OK)
        fl_log(FL_LOG_INFO, "downloaded %s (%.1f MB in %.1f s)", dl->id,
               (double)atomic_load(&dl->progress.bytes) / 1e6, rt_now() - t0);
    else
        fl_log(FL_LOG_ERROR, "download of %s failed: %s", dl->id, err.message);
    publish_result(dl, status, &err);
    return NULL;
}

/* <endpoint>/<owner>/<repo>/resolve/main/<file>, each path part percent-encoded. */
static bool build_url(const rt_manager *rt, const rt_name *name, char *url, size_t size) {
    size_t len = (size_t)snprintf(url, size, "%s/", rt->hf_endpoint);
    const char *parts[2] = {name->hub_repo, name->hub_file};
    for (int k = 0; k < 2; k++) {
        const char *s = parts[k];
        while (*s != '\0') {
            size_t n = strcspn(s, "/");
            char *escaped = curl_easy_escape(NULL, s, (int)n);
            if (escaped == NULL) return false;
            len += (size_t)snprintf(url + len, len < size ? size - len : 0, "%s%s", escaped,
                                    s[n] == '/' ? "/" : "");
            curl_free(escaped);
            s += n + (s[n] == '/');
        }
        if (k == 0)
            len += (size_t)snprintf(url + len, len < size ? size - len : 0, "/resolve/main/");
    }
    return len < size;
}

static bool remember(rt_manager *rt, rt_dl *dl) {
    if (rt->n_dls == rt->cap_dls) {
        size_t cap = rt->cap_dls > 0 ? rt->cap_dls * 2 : 8;
        rt_dl **grown = realloc(rt->dls, cap * sizeof *grown);
        if (grown == NULL) return false;
        rt->dls = grown;
        rt->cap_dls = cap;
    }
    rt->dls[rt->n_dls++] = dl;
    return true;
}

rt_status rt_download_begin_locked(rt_manager *rt, rt_model *m, rt_dl **out, rt_error *err) {
    if (out != NULL) *out = NULL;
    if (m->dl != NULL && !dl_done(m->dl)) {
        if (out != NULL) {
            atomic_fetch_add(&m->dl->refs, 1);
            *out = m->dl;
        }
        return RT_OK;
    }
    if (!m->name.on_hub)
        return rt_set_error(err, RT_ERR_MODEL_NOT_FOUND, 0,
                            "model '%s' is not on disk (%s) and is not a Hub name", m->name.id,
                            m->path);
    rt_dl *dl = dl_new(m->name.id);
    if (dl == NULL) return rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory");
    dl->rt = rt;
    dl->model = m;
    dl->started = rt_now();
    dl->show_bar = rt->cfg.progress_bar && isatty(STDERR_FILENO);
    snprintf(dl->dest, sizeof dl->dest, "%s", m->path);
    if (!build_url(rt, &m->name, dl->url, sizeof dl->url) || !remember(rt, dl)) {
        dl_release(dl);
        return rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot prepare the download of %s",
                            m->name.id);
    }
    if (pthread_create(&dl->thread, NULL, download_main, dl) != 0) {
        dl->done = true;
        return rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot start a download thread");
    }
    dl->has_thread = true;
    m->dl = dl;
    m->state = RT_STATE_DOWNLOADING;
    m->listed = true;
    m->error.status = RT_OK;
    m->error.message[0] = '\0';
    if (out != NULL) {
        atomic_fetch_add(&dl->refs, 1);
        *out = dl;
    }
    pthread_cond_broadcast(&rt->cv);
    return RT_OK;
}

void rt_downloads_cancel(rt_manager *rt) {
    for (size_t i = 0; i < rt->n_dls; i++) atomic_store(&rt->dls[i]->cancel, true);
}

void rt_downloads_join_and_free(rt_manager *rt) {
    for (size_t i = 0; i < rt->n_dls; i++) {
        if (rt->dls[i]->has_thread) pthread_join(rt->dls[i]->thread, NULL);
        dl_release(rt->dls[i]);
    }
    free(rt->dls);
    rt->dls = NULL;
    rt->n_dls = rt->cap_dls = 0;
}

/* ---- the public handle ------------------------------------------------------------------- */

const char *rt_download_state_name(rt_download_state state) {
    static const char *const names[] = {"queued", "running", "verifying", "done", "failed"};
    return (unsigned)state < sizeof names / sizeof names[0] ? names[state] : "failed";
}

rt_status rt_download_start(rt_manager *rt, const char *name, rt_download **out, rt_error *err) {
    *out = NULL;
    rt_download *h = calloc(1, sizeof *h);
    if (h == NULL) return rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory");
    pthread_mutex_lock(&rt->mu);
    rt_model *m = NULL;
    rt_status st = rt->stopping ? rt_set_error(err, RT_ERR_UNAVAILABLE, 0, "shutting down")
                                : rt_resolve_locked(rt, name, &m, err);
    if (st == RT_OK && m->on_disk && m->state != RT_STATE_DOWNLOADING) {
        /* Already here: a handle that reports done at once. */
        h->dl = dl_new(m->name.id);
        if (h->dl == NULL)
            st = rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory");
        else {
            h->dl->done = true;
            h->dl->status = RT_OK;
            atomic_store(&h->dl->progress.bytes, m->size);
            atomic_store(&h->dl->progress.total, m->size);
            atomic_store(&h->dl->progress.phase, RT_DOWNLOAD_DONE);
        }
    } else if (st == RT_OK) {
        if (m->state == RT_STATE_FAILED) m->state = RT_STATE_ABSENT;
        st = rt_download_begin_locked(rt, m, &h->dl, err);
    }
    pthread_mutex_unlock(&rt->mu);
    if (st != RT_OK) {
        free(h);
        return st;
    }
    *out = h;
    return RT_OK;
}

bool rt_download_poll(rt_download *h, int timeout_ms, rt_download_progress *p) {
    rt_dl *dl = h->dl;
    memset(p, 0, sizeof *p);
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&dl->mu);
    while (!dl->done && dl->seq == h->seen_seq && timeout_ms > 0)
        if (pthread_cond_timedwait(&dl->cv, &dl->mu, &deadline) != 0) break;
    h->seen_seq = dl->seq;
    bool done = dl->done;
    snprintf(p->model, sizeof p->model, "%s", dl->id);
    p->bytes = atomic_load(&dl->progress.bytes);
    p->total = atomic_load(&dl->progress.total);
    p->rate = atomic_load(&dl->progress.rate);
    p->attempt = atomic_load(&dl->progress.attempt);
    p->eta_s = p->rate > 0 && p->total >= p->bytes ? (double)(p->total - p->bytes) / p->rate : -1;
    if (done) {
        p->state = dl->status == RT_OK ? RT_DOWNLOAD_DONE : RT_DOWNLOAD_FAILED;
        p->error = dl->error;
        if (dl->status == RT_OK) p->eta_s = 0;
    } else {
        int phase = atomic_load(&dl->progress.phase);
        p->state = phase == 0 ? RT_DOWNLOAD_QUEUED : (rt_download_state)phase;
    }
    pthread_mutex_unlock(&dl->mu);
    return done;
}

void rt_download_release(rt_download *h) {
    if (h == NULL) return;
    dl_release(h->dl);
    free(h);
}

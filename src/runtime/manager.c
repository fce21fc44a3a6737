/* The model registry and its state machine, one worker thread per model in use, the idle
 * reaper, and the memory / per-type residency policy. */
#include <curl/curl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "runtime/discovery.h"
#include "runtime/internal.h"
#include "runtime/common.h"
#include "util/log.h"

#define MAX_MODELS 4096
#define BUSY_RETRY_S 2
#define LOADING_RETRY_S 5
/* How often the queue of a model that is not ready is swept for cancelled jobs. */
#define CANCEL_SWEEP_S 0.25
#define MEMORY_RETRY_S 10
/* A name not found rescans <model-path> at most this often (a model copied in is then found). */
#define MISS_RESCAN_INTERVAL_S 1.0

/* ---- configuration ----------------------------------------------------------------------- */

const char *rt_status_name(rt_status status) {
    static const char *const names[] = {"ok",      "bad_request", "model_not_found", "busy",
                                        "loading", "unavailable", "internal",        "no_space"};
    return (unsigned)status < sizeof names / sizeof names[0] ? names[status] : "internal";
}

void rt_config_defaults(rt_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->model_path = "./models";
    cfg->warm_up = true;
    cfg->auto_download = true;
    cfg->idle_timeout_s = 300;
    cfg->idle_check_interval_s = 60;
    cfg->max_models_per_type = 1;
    cfg->queue_capacity = 8;
    cfg->load_wait_s = 60;
    cfg->download_retries = 4;
    cfg->download_backoff_s = 1.0;
    cfg->progress_bar = true;
}

static bool copy_string(const char *s, char **out) {
    *out = strdup(s != NULL ? s : "");
    return *out != NULL;
}

/* Strips trailing slashes (keeps "/"). */
static void trim_slashes(char *s) {
    size_t n = strlen(s);
    while (n > 1 && s[n - 1] == '/') s[--n] = '\0';
}

static rt_status check_device(rt_manager *rt, const char *device, rt_error *err) {
    static const char *const known[] = {"AUTO", "CPU", "GPU", "NPU"};
    const char *d = device != NULL && device[0] != '\0' ? device : "AUTO";
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcasecmp(d, known[i]) != 0) continue;
        snprintf(rt->device_requested, sizeof rt->device_requested, "%s", known[i]);
        if (i >= 2) {
            snprintf(rt->device_note, sizeof rt->device_note,
                     "%s requested, but this build runs on the CPU only: using CPU", known[i]);
            fl_log(FL_LOG_WARN, "%s", rt->device_note);
        }
        return RT_OK;
    }
    return rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "unknown device '%s' (AUTO, CPU, GPU or NPU)",
                        d);
}

static rt_status copy_config(rt_manager *rt, const rt_config *cfg, rt_error *err) {
    rt->cfg = *cfg;
    const char *endpoint = cfg->hf_endpoint != NULL ? cfg->hf_endpoint : getenv("HF_ENDPOINT");
    const char *token = cfg->hf_token != NULL ? cfg->hf_token : getenv("HF_TOKEN");
    const char *model_path = cfg->model_path != NULL ? cfg->model_path : "./models";
    bool ok =
        copy_string(model_path, &rt->model_path) &&
        copy_string(cfg->llm_model != NULL ? cfg->llm_model : RT_DEFAULT_LLM, &rt->llm_default) &&
        copy_string(cfg->whisper_model != NULL ? cfg->whisper_model : RT_DEFAULT_WHISPER,
                    &rt->whisper_default) &&
        copy_string(endpoint != NULL && endpoint[0] != '\0' ? endpoint : RT_DEFAULT_HF_ENDPOINT,
                    &rt->hf_endpoint) &&
        copy_string(token, &rt->hf_token);
    if (ok && cfg->cache_dir != NULL)
        ok = copy_string(cfg->cache_dir, &rt->cache_dir);
    else if (ok) {
        size_t n = strlen(model_path) + sizeof "/cache";
        rt->cache_dir = malloc(n);
        ok = rt->cache_dir != NULL;
        if (ok) snprintf(rt->cache_dir, n, "%s/cache", model_path);
    }
    if (!ok) return rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory");
    trim_slashes(rt->model_path);
    trim_slashes(rt->hf_endpoint);
    rt->cfg.model_path = rt->model_path;
    rt->cfg.cache_dir = rt->cache_dir;
    rt->cfg.llm_model = rt->llm_default;
    rt->cfg.whisper_model = rt->whisper_default;
    rt->cfg.hf_endpoint = rt->hf_endpoint;
    rt->cfg.hf_token = rt->hf_token;
    if (rt->cfg.max_models_per_type < 1) rt->cfg.max_models_per_type = 1;
    if (rt->cfg.queue_capacity < 1) rt->cfg.queue_capacity = 1;
    if (rt->cfg.idle_check_interval_s <= 0) rt->cfg.idle_check_interval_s = 60;
    if (rt->cfg.load_wait_s < 0) rt->cfg.load_wait_s = 0;
    if (rt->cfg.download_retries < 0) rt->cfg.download_retries = 0;
    char shown[256];
    if (strncmp(rt->hf_endpoint, "http://", 7) != 0 && strncmp(rt->hf_endpoint, "https://", 8) != 0)
        return rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "HF endpoint '%s' is not an http(s) URL",
                            rt_url_for_log(rt->hf_endpoint, shown, sizeof shown));
    return check_device(rt, cfg->device, err);
}

/* ---- the registry ------------------------------------------------------------------------ */

rt_model *rt_find_model_locked(rt_manager *rt, const char *id) {
    for (size_t i = 0; i < rt->n_models; i++)
        if (strcmp(rt->models[i]->name.id, id) == 0) return rt->models[i];
    return NULL;
}

static rt_model *add_model_locked(rt_manager *rt, const rt_name *name, rt_error *err) {
    if (rt->n_models >= MAX_MODELS) {
        rt_set_error(err, RT_ERR_BUSY, 60, "too many models known");
        return NULL;
    }
    if (rt->n_models == rt->cap_models) {
        size_t cap = rt->cap_models > 0 ? rt->cap_models * 2 : 16;
        rt_model **grown = realloc(rt->models, cap * sizeof *grown);
        if (grown == NULL) {
            rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory");
            return NULL;
        }
        rt->models = grown;
        rt->cap_models = cap;
    }
    rt_model *m = calloc(1, sizeof *m);
    if (m == NULL) {
        rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory");
        return NULL;
    }
    m->rt = rt;
    m->name = *name;
    m->state = RT_STATE_ABSENT;
    if ((size_t)snprintf(m->path, sizeof m->path, "%s/%s", rt->model_path, name->rel_path) >=
        sizeof m->path) {
        free(m);
        rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "model path too long");
        return NULL;
    }
    rt->models[rt->n_models++] = m;
    return m;
}

/* Merges a discovery result into the registry. */
static void merge_found_locked(rt_manager *rt, const rt_found *found, size_t n) {
    for (size_t i = 0; i < rt->n_models; i++) {
        rt_model *m = rt->models[i];
        bool present = false;
        for (size_t k = 0; k < n && !present; k++) present = strcmp(found[k].id, m->name.id) == 0;
        bool busy = m->handle != NULL || m->state == RT_STATE_DOWNLOADING ||
                    m->state == RT_STATE_LOADING || m->queued > 0 || m->running > 0;
        if (present || busy) continue;
        /* The file went away. */
        m->on_disk = false;
        m->size = 0;
        m->mtime = 0;
        m->listed = m->is_default;
        if (m->state == RT_STATE_ON_DISK) m->state = RT_STATE_ABSENT;
    }
    for (size_t k = 0; k < n; k++) {
        rt_model *m = rt_find_model_locked(rt, found[k].id);
        if (m == NULL) {
            rt_name name;
            if (rt_name_parse(found[k].id, &name, NULL) != RT_OK) continue;
            m = add_model_locked(rt, &name, NULL);
            if (m == NULL) continue;
        }
        if (m->state == RT_STATE_DOWNLOADING) continue; /* its .part is not the model */
        snprintf(m->path, sizeof m->path, "%s", found[k].path);
        m->on_disk = true;
        m->listed = true;
        m->size = found[k].size;
        m->mtime = found[k].mtime;
        if (m->state == RT_STATE_ABSENT) m->state = RT_STATE_ON_DISK;
    }
}

/* Before a local name is answered "not found": reads <model-path> again, unless that was done
 * less than MISS_RESCAN_INTERVAL_S ago. Drops the lock while the file system is read. */
static void rescan_on_miss_locked(rt_manager *rt) {
    double now = rt_now();
    if (rt->last_miss_rescan > 0 && now - rt->last_miss_rescan < MISS_RESCAN_INTERVAL_S) return;
    rt->last_miss_rescan = now;
    rt_found *found = NULL;
    size_t n = 0;
    pthread_mutex_unlock(&rt->mu);
    rt_status st = rt_discover(rt->model_path, &found, &n, NULL);
    pthread_mutex_lock(&rt->mu);
    if (st != RT_OK) return;
    merge_found_locked(rt, found, n);
    pthread_cond_broadcast(&rt->cv);
    free(found);
}

rt_status rt_resolve_locked(rt_manager *rt, const char *name, rt_model **out, rt_error *err) {
    rt_name parsed;
    *out = NULL;
    rt_status st = rt_name_parse(name, &parsed, err);
    if (st != RT_OK) return st;
    rt_model *m = rt_find_model_locked(rt, parsed.id);
    if (!parsed.on_hub && (m == NULL || !m->on_disk)) {
        rescan_on_miss_locked(rt);
        m = rt_find_model_locked(rt, parsed.id);
    }
    if (m == NULL && !parsed.on_hub)
        return rt_set_error(
            err, RT_ERR_MODEL_NOT_FOUND, 0, "model '%s' not found: no %s under %s%s", parsed.id,
            parsed.rel_path, rt->model_path,
            parsed.type == RT_MODEL_LLM ? " (to fetch one from the Hub, name owner/repo/file.gguf)"
                                        : "");
    if (m == NULL) m = add_model_locked(rt, &parsed, err);
    if (m == NULL) return err != NULL ? err->status : RT_ERR_INTERNAL;
    *out = m;
    return RT_OK;
}

rt_status rt_rescan(rt_manager *rt, rt_error *err) {
    rt_found *found = NULL;
    size_t n = 0;
    /* The file system is read without the lock; only the merge holds it. */
    rt_status st = rt_discover(rt->model_path, &found, &n, err);
    if (st != RT_OK) return st;
    pthread_mutex_lock(&rt->mu);
    merge_found_locked(rt, found, n);
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    free(found);
    return RT_OK;
}

static rt_status add_default_locked(rt_manager *rt, const char *name, rt_model_type type,
                                    rt_model **out, rt_error *err) {
    *out = NULL;
    if (name[0] == '\0') return RT_OK;
    rt_name parsed;
    rt_status st = rt_name_parse(name, &parsed, err);
    if (st != RT_OK) return st;
    if (parsed.type != type)
        return rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "'%s' is not a %s model", name,
                            rt_model_type_name(type));
    rt_model *m = rt_find_model_locked(rt, parsed.id);
    if (m == NULL) m = add_model_locked(rt, &parsed, err);
    if (m == NULL) return err != NULL ? err->status : RT_ERR_INTERNAL;
    m->is_default = true;
    m->listed = true;
    if (!m->on_disk && !parsed.on_hub)
        rt_set_error(&m->error, RT_ERR_MODEL_NOT_FOUND, 0,
                     "default model '%s' not found: no %s under %s", parsed.id, parsed.rel_path,
                     rt->model_path);
    *out = m;
    return RT_OK;
}

/* ---- memory and residency ---------------------------------------------------------------- */

uint64_t rt_memory_used_locked(const rt_manager *rt) {
    uint64_t used = 0;
    for (size_t i = 0; i < rt->n_models; i++) {
        const rt_model *m = rt->models[i];
        used += m->weights_bytes + m->kv_bytes + m->reserved_bytes;
    }
    return used;
}

static uint64_t memory_limit(const rt_manager *rt) {
    return rt->cfg.max_memory_gb > 0 ? (uint64_t)(rt->cfg.max_memory_gb * 1e9) : 0;
}

static bool is_idle(const rt_model *m) {
    return m->state == RT_STATE_READY && m->running == 0 && m->queued == 0 && !m->want_loaded;
}

/* The least recently used idle resident model (of `type`, or any type when type < 0). */
static rt_model *lru_idle_locked(rt_manager *rt, int type, const rt_model *except) {
    rt_model *best = NULL;
    for (size_t i = 0; i < rt->n_models; i++) {
        rt_model *m = rt->models[i];
        if (m == except || !is_idle(m) || (type >= 0 && (int)m->name.type != type)) continue;
        if (best == NULL || m->last_used < best->last_used) best = m;
    }
    return best;
}

static int resident_count_locked(const rt_manager *rt, rt_model_type type, const rt_model *except) {
    int n = 0;
    for (size_t i = 0; i < rt->n_models; i++) {
        const rt_model *m = rt->models[i];
        if (m != except && m->name.type == type &&
            (m->state == RT_STATE_READY || m->state == RT_STATE_LOADING))
            n++;
    }
    return n;
}

/* Unloads an idle model. Drops the lock while the engine frees it. */
static void unload_locked(rt_manager *rt, rt_model *m, const char *why) {
    void *handle = m->handle;
    m->state = RT_STATE_UNLOADING;
    pthread_mutex_unlock(&rt->mu);
    fl_log(FL_LOG_INFO, "unloading %s (%s)", m->name.id, why);
    rt->engine.unload(rt->engine.user, m->name.type, handle);
    pthread_mutex_lock(&rt->mu);
    m->handle = NULL;
    m->weights_bytes = 0;
    m->state = m->on_disk ? RT_STATE_ON_DISK : RT_STATE_ABSENT;
    pthread_cond_broadcast(&rt->cv);
}

/* Evicts idle models of each type beyond --max-models-per-type (LRU first). */
static void enforce_type_limit_locked(rt_manager *rt) {
    for (int type = RT_MODEL_LLM; type <= RT_MODEL_WHISPER; type++) {
        while (resident_count_locked(rt, (rt_model_type)type, NULL) > rt->cfg.max_models_per_type) {
            rt_model *victim = lru_idle_locked(rt, type, NULL);
            if (victim == NULL) break;
            unload_locked(rt, victim, "over --max-models-per-type");
        }
    }
}

/* Frees room for loading m: evicts idle models of its type beyond the per-type limit, then any
 * idle models while the memory limit would be passed. Returns 1 when m may load, 0 when it
 * must wait for busy models, -1 when it can never fit (err set). */
/* True when m's context estimate is missing or for another version of its file. */
static bool needs_context_estimate(const rt_manager *rt, const rt_model *m) {
    return memory_limit(rt) > 0 && rt->engine.context_bytes != NULL &&
           (!m->context_estimated || m->context_for_size != m->size ||
            m->context_for_mtime != m->mtime);
}

/* Asks the engine for m's context estimate. Drops the lock while the file is read. */
static void estimate_context_locked(rt_manager *rt, rt_model *m) {
    char path[RT_PATH_MAX];
    snprintf(path, sizeof path, "%s", m->path);
    uint64_t size = m->size;
    int64_t mtime = m->mtime;
    pthread_mutex_unlock(&rt->mu);
    uint64_t bytes = rt->engine.context_bytes(rt->engine.user, m->name.type, path, rt->cfg.n_ctx);
    pthread_mutex_lock(&rt->mu);
    m->context_bytes = bytes;
    m->context_for_size = size;
    m->context_for_mtime = mtime;
    m->context_estimated = true;
}

static int make_room_locked(rt_manager *rt, rt_model *m, rt_error *err) {
    while (resident_count_locked(rt, m->name.type, m) >= rt->cfg.max_models_per_type) {
        rt_model *victim = lru_idle_locked(rt, (int)m->name.type, m);
        if (victim == NULL) break; /* busy: load side by side, evict when it goes idle */
        unload_locked(rt, victim, "making room for another model of its type");
    }
    uint64_t limit = memory_limit(rt);
    if (limit == 0) return 1;
    uint64_t need = m->size + m->context_bytes;
    if (need > limit) {
        rt_set_error(err, RT_ERR_UNAVAILABLE, 0,
                     "model '%s' needs %.2f GB (weights %.2f GB + context %.2f GB), more than "
                     "--max-memory %.2f GB",
                     m->name.id, (double)need / 1e9, (double)m->size / 1e9,
                     (double)m->context_bytes / 1e9, (double)limit / 1e9);
        return -1;
    }
    while (rt_memory_used_locked(rt) + need > limit) {
        rt_model *victim = lru_idle_locked(rt, -1, m);
        if (victim == NULL) {
            rt_set_error(err, RT_ERR_UNAVAILABLE, MEMORY_RETRY_S,
                         "not enough memory to load '%s': %.2f GB needed, %.2f of %.2f GB held "
                         "by models in use",
                         m->name.id, (double)need / 1e9, (double)rt_memory_used_locked(rt) / 1e9,
                         (double)limit / 1e9);
            return 0;
        }
        unload_locked(rt, victim, "over --max-memory");
    }
    return 1;
}

typedef struct reserve_ctx {
    rt_manager *rt;
    rt_model *m;
} reserve_ctx;

/* Per-job memory (KV caches) counted against --max-memory. */
static rt_status reserve_memory(void *user, int64_t delta, rt_error *err) {
    reserve_ctx *c = user;
    rt_manager *rt = c->rt;
    rt_status st = RT_OK;
    pthread_mutex_lock(&rt->mu);
    uint64_t limit = memory_limit(rt);
    while (delta > 0 && limit > 0 && rt_memory_used_locked(rt) + (uint64_t)delta > limit) {
        rt_model *victim = lru_idle_locked(rt, -1, c->m);
        if (victim == NULL) {
            st = rt_set_error(err, RT_ERR_UNAVAILABLE, MEMORY_RETRY_S,
                              "not enough memory for this request's context (%.1f MB) within "
                              "--max-memory %.2f GB",
                              (double)delta / 1e6, (double)limit / 1e9);
            break;
        }
        unload_locked(rt, victim, "over --max-memory");
    }
    if (st == RT_OK) {
        if (delta < 0 && (uint64_t)-delta > c->m->kv_bytes)
            c->m->kv_bytes = 0;
        else
            c->m->kv_bytes = (uint64_t)((int64_t)c->m->kv_bytes + delta);
    }
    pthread_mutex_unlock(&rt->mu);
    return st;
}

/* ---- the worker of a model --------------------------------------------------------------- */

void rt_wait_locked(rt_manager *rt, double deadline) {
    if (isinf(deadline)) {
        pthread_cond_wait(&rt->cv, &rt->mu);
        return;
    }
    struct timespec now, ts;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double wait = deadline - rt_now();
    if (wait <= 0) return;
    double abs = (double)now.tv_sec + (double)now.tv_nsec * 1e-9 + wait;
    ts.tv_sec = (time_t)abs;
    ts.tv_nsec = (long)((abs - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) ts.tv_nsec = 999999999L;
    pthread_cond_timedwait(&rt->cv, &rt->mu, &ts);
}

static void unlink_job_locked(rt_model *m, rt_job *prev, rt_job *job) {
    rt_job *next = rt_job_queue(job)->next;
    if (prev == NULL)
        m->queue_head = next;
    else
        rt_job_queue(prev)->next = next;
    if (m->queue_tail == job) m->queue_tail = prev;
    rt_job_queue(job)->next = NULL;
    m->queued--;
}

/* Why a job waiting for m gives up now. */
static void waiting_error(const rt_model *m, rt_error *err) {
    if (m->state == RT_STATE_DOWNLOADING && m->dl != NULL) {
        uint64_t bytes, total;
        double rate;
        rt_download_progress_of(m->dl, &bytes, &total, &rate);
        double eta = rate > 0 && total > bytes ? (double)(total - bytes) / rate : 30;
        int retry = eta < LOADING_RETRY_S ? LOADING_RETRY_S : eta > 300 ? 300 : (int)eta;
        rt_set_error(err, RT_ERR_LOADING, retry, "model '%s' is still downloading (%.0f%%)",
                     m->name.id, total > 0 ? 100.0 * (double)bytes / (double)total : 0.0);
    } else if (m->error.status != RT_OK && m->state == RT_STATE_ON_DISK) {
        *err = m->error;
    } else {
        rt_set_error(err, RT_ERR_LOADING, LOADING_RETRY_S, "model '%s' is still loading",
                     m->name.id);
    }
}

/* Ends queued jobs that were cancelled, or waited longer than allowed for their model; returns
 * the earliest deadline of those still waiting for it (INFINITY when none). */
static double sweep_queue_locked(rt_manager *rt, rt_model *m) {
    (void)rt;
    double now = rt_now(), next = INFINITY;
    bool waiting = m->state != RT_STATE_READY;
    rt_job *prev = NULL;
    for (rt_job *job = m->queue_head, *after; job != NULL; job = after) {
        after = rt_job_queue(job)->next;
        double deadline = rt_job_queue(job)->deadline;
        if (rt_job_cancelled(job) || (waiting && deadline <= now)) {
            unlink_job_locked(m, prev, job);
            rt_error err = {0};
            if (rt_job_cancelled(job)) {
                rt_job_result r = {.reason = RT_FINISH_CANCELLED};
                rt_job_finish(job, &r);
            } else {
                waiting_error(m, &err);
                rt_job_fail(job, &err);
            }
            rt_job_release(job);
            continue;
        }
        if (waiting && deadline < next) next = deadline;
        /* rt_job_cancel (a client gone) wakes no one: a job waiting for its model is looked
         * at again this often, so it leaves the queue (and /health) within that time. */
        if (waiting && now + CANCEL_SWEEP_S < next) next = now + CANCEL_SWEEP_S;
        prev = job;
    }
    /* A load asked for without a job waits for memory only so long (then gives up). */
    if (m->state == RT_STATE_ON_DISK && m->want_loaded && m->want_deadline > now &&
        m->want_deadline < next)
        next = m->want_deadline;
    return next;
}

static void fail_queue_locked(rt_model *m, const rt_error *err) {
    while (m->queue_head != NULL) {
        rt_job *job = m->queue_head;
        unlink_job_locked(m, NULL, job);
        rt_job_fail(job, err);
        rt_job_release(job);
    }
}

static void load_locked(rt_manager *rt, rt_model *m) {
    m->state = RT_STATE_LOADING;
    m->reserved_bytes = m->size;
    m->error.status = RT_OK;
    m->error.message[0] = '\0';
    char path[RT_PATH_MAX];
    snprintf(path, sizeof path, "%s", m->path);
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    fl_log(FL_LOG_INFO, "loading %s from %s", m->name.id, path);
    double t0 = rt_now();
    rt_error err = {0};
    uint64_t bytes = 0;
    void *handle = rt->engine.load(rt->engine.user, m->name.type, path, &bytes, &err);
    if (handle != NULL)
        fl_log(FL_LOG_INFO, "loaded %s in %.2f s", m->name.id, rt_now() - t0);
    else
        fl_log(FL_LOG_ERROR, "loading %s failed: %s", m->name.id, err.message);
    pthread_mutex_lock(&rt->mu);
    m->reserved_bytes = 0;
    m->warmup_pending = false;
    if (handle != NULL) {
        m->handle = handle;
        m->weights_bytes = bytes;
        m->state = RT_STATE_READY;
        m->last_used = rt_now();
    } else {
        m->state = RT_STATE_FAILED;
        m->error = err;
    }
    pthread_cond_broadcast(&rt->cv);
}

/* The model's file changed under it (truncated while mapped): unload it and take the file as it
 * now is; the next job loads it again (or fails cleanly when it is no longer a model). */
static void reload_changed_file_locked(rt_manager *rt, rt_model *m) {
    unload_locked(rt, m, "its file changed on disk");
    struct stat st;
    m->on_disk = stat(m->path, &st) == 0;
    m->size = m->on_disk ? (uint64_t)st.st_size : 0;
    m->state = m->on_disk ? RT_STATE_ON_DISK : RT_STATE_ABSENT;
}

static void run_next_locked(rt_manager *rt, rt_model *m) {
    rt_job *job = m->queue_head;
    unlink_job_locked(m, NULL, job);
    m->running++;
    m->current = job;
    rt->jobs_running++;
    void *handle = m->handle;
    pthread_mutex_unlock(&rt->mu);
    reserve_ctx rc = {rt, m};
    rt_run_env env = {
        .pool = rt->pool, .n_ctx = rt->cfg.n_ctx, .reserve = reserve_memory, .reserve_user = &rc};
    rt->engine.run(rt->engine.user, m->name.type, handle, job, &env);
    if (!rt_job_is_finished(job)) {
        rt_error err;
        rt_set_error(&err, RT_ERR_INTERNAL, 0, "the engine ended the job without a result");
        rt_job_fail(job, &err);
    }
    pthread_mutex_lock(&rt->mu);
    m->current = NULL;
    rt_job_release(job);
    m->running--;
    rt->jobs_running--;
    m->last_used = rt_now();
    if (rt->engine.damaged != NULL && rt->engine.damaged(rt->engine.user, m->name.type, handle))
        reload_changed_file_locked(rt, m);
    enforce_type_limit_locked(rt);
    pthread_cond_broadcast(&rt->cv);
}

/* One step of a worker; returns false when it should wait for a change. */
static bool worker_step_locked(rt_manager *rt, rt_model *m) {
    bool needed = m->queued > 0 || m->want_loaded;
    rt_error err = {0};
    switch (m->state) {
    case RT_STATE_READY:
        m->want_loaded = false;
        if (m->queue_head == NULL) return false;
        run_next_locked(rt, m);
        return true;
    case RT_STATE_ABSENT:
        if (!needed) return false;
        if (!rt->cfg.auto_download) {
            rt_set_error(&err, RT_ERR_MODEL_NOT_FOUND, 0,
                         "model '%s' is not downloaded (automatic downloads are off)", m->name.id);
            m->state = RT_STATE_FAILED;
            m->error = err;
            m->warmup_pending = false;
        } else if (rt_download_begin_locked(rt, m, NULL, &err) != RT_OK) {
            m->state = RT_STATE_FAILED;
            m->error = err;
            m->warmup_pending = false;
        }
        return true;
    case RT_STATE_ON_DISK: {
        if (!needed) return false;
        if (needs_context_estimate(rt, m)) {
            estimate_context_locked(rt, m);
            return true; /* the lock was dropped: look again */
        }
        int room = make_room_locked(rt, m, &err);
        if (room > 0) {
            load_locked(rt, m);
            return true;
        }
        m->error = err; /* why it waits (or can never load) */
        if (room < 0) {
            m->state = RT_STATE_FAILED;
            m->warmup_pending = false;
            return true;
        }
        if (m->want_loaded && rt_now() >= m->want_deadline) {
            m->want_loaded = false;
            m->warmup_pending = false;
        }
        return false;
    }
    case RT_STATE_FAILED:
        fail_queue_locked(m, &m->error);
        m->want_loaded = false;
        m->warmup_pending = false;
        return false;
    default: /* downloading, loading (by another thread), unloading: wait */
        return false;
    }
}

static void *worker_main(void *arg) {
    rt_model *m = arg;
    rt_manager *rt = m->rt;
    pthread_mutex_lock(&rt->mu);
    while (!rt->stopping) {
        double next = sweep_queue_locked(rt, m);
        if (!worker_step_locked(rt, m)) rt_wait_locked(rt, next);
    }
    pthread_mutex_unlock(&rt->mu);
    return NULL;
}

static rt_status ensure_worker_locked(rt_model *m, rt_error *err) {
    if (m->has_worker) return RT_OK;
    if (pthread_create(&m->worker, NULL, worker_main, m) != 0)
        return rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot start a worker thread");
    m->has_worker = true;
    return RT_OK;
}

/* A model whose last attempt failed is tried again when something asks for it. */
static void retry_if_failed_locked(rt_model *m) {
    if (m->state != RT_STATE_FAILED) return;
    m->state = m->on_disk ? RT_STATE_ON_DISK : RT_STATE_ABSENT;
}

/* ---- the idle reaper --------------------------------------------------------------------- */

static void *reaper_main(void *arg) {
    rt_manager *rt = arg;
    pthread_mutex_lock(&rt->mu);
    while (!rt->stopping) {
        rt_wait_locked(rt, rt_now() + rt->cfg.idle_check_interval_s);
        if (rt->stopping) break;
        double timeout = rt->cfg.idle_timeout_s;
        for (size_t i = 0; timeout > 0 && i < rt->n_models; i++) {
            rt_model *m = rt->models[i];
            if (!is_idle(m) || rt_now() - m->last_used < timeout) continue;
            char why[64];
            snprintf(why, sizeof why, "idle for %.0f s", rt_now() - m->last_used);
            unload_locked(rt, m, why);
            i = (size_t)-1; /* the lock was dropped: look again from the start */
        }
        enforce_type_limit_locked(rt);
    }
    pthread_mutex_unlock(&rt->mu);
    return NULL;
}

/* ---- life cycle -------------------------------------------------------------------------- */

static void free_manager(rt_manager *rt) {
    for (size_t i = 0; i < rt->n_models; i++) free(rt->models[i]);
    free(rt->models);
    if (rt->pool != NULL) fluid_pool_free(rt->pool);
    free(rt->model_path);
    free(rt->cache_dir);
    free(rt->llm_default);
    free(rt->whisper_default);
    free(rt->hf_endpoint);
    free(rt->hf_token);
    pthread_mutex_destroy(&rt->mu);
    pthread_cond_destroy(&rt->cv);
    free(rt);
    curl_global_cleanup();
}

rt_manager *rt_create_with_engine(const rt_config *cfg, const rt_engine *engine, rt_error *err) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot initialise libcurl");
        return NULL;
    }
    rt_manager *rt = calloc(1, sizeof *rt);
    if (rt == NULL) {
        curl_global_cleanup();
        rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory");
        return NULL;
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&rt->mu, NULL);
    pthread_cond_init(&rt->cv, &attr);
    pthread_condattr_destroy(&attr);
    rt->engine = *engine;
    rt->start_time = rt_now();
    rt_found *found = NULL;
    size_t n_found = 0;
    if (copy_config(rt, cfg, err) != RT_OK ||
        rt_discover(rt->model_path, &found, &n_found, err) != RT_OK)
        goto fail;
    pthread_mutex_lock(&rt->mu);
    merge_found_locked(rt, found, n_found);
    rt_status st = add_default_locked(rt, rt->llm_default, RT_MODEL_LLM, &rt->default_llm, err);
    if (st == RT_OK)
        st = add_default_locked(rt, rt->whisper_default, RT_MODEL_WHISPER, &rt->default_whisper,
                                err);
    pthread_mutex_unlock(&rt->mu);
    free(found);
    if (st != RT_OK) goto fail;
    rt->pool = fluid_pool_create(cfg->n_threads);
    if (rt->pool == NULL) {
        rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot start the compute threads");
        goto fail;
    }
    return rt;
fail:
    free_manager(rt);
    return NULL;
}

rt_manager *rt_create(const rt_config *cfg, rt_error *err) {
    return rt_create_with_engine(cfg, rt_engine_fluid(), err);
}

static void want_loaded_locked(rt_manager *rt, rt_model *m) {
    retry_if_failed_locked(m);
    m->want_loaded = true;
    m->want_deadline = rt_now() + rt->cfg.load_wait_s;
}

rt_status rt_start(rt_manager *rt, rt_error *err) {
    rt_status st = RT_OK;
    pthread_mutex_lock(&rt->mu);
    if (rt->started) goto out;
    rt->started = true;
    if (pthread_create(&rt->reaper, NULL, reaper_main, rt) != 0) {
        st = rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot start the idle reaper");
        goto out;
    }
    rt->has_reaper = true;
    rt_model *defaults[2] = {rt->default_whisper, rt->default_llm};
    for (int i = 0; i < 2 && rt->cfg.warm_up; i++) {
        rt_model *m = defaults[i];
        if (m == NULL || (!m->on_disk && !m->name.on_hub)) continue;
        want_loaded_locked(rt, m);
        m->warmup_pending = true;
        st = ensure_worker_locked(m, err);
        if (st != RT_OK) break;
    }
    pthread_cond_broadcast(&rt->cv);
out:
    pthread_mutex_unlock(&rt->mu);
    return st;
}

void rt_destroy(rt_manager *rt) {
    if (rt == NULL) return;
    pthread_mutex_lock(&rt->mu);
    rt->stopping = true;
    rt_downloads_cancel(rt);
    for (size_t i = 0; i < rt->n_models; i++)
        if (rt->models[i]->current != NULL) rt_job_cancel(rt->models[i]->current);
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    if (rt->has_reaper) pthread_join(rt->reaper, NULL);
    for (size_t i = 0; i < rt->n_models; i++)
        if (rt->models[i]->has_worker) pthread_join(rt->models[i]->worker, NULL);
    rt_downloads_join_and_free(rt);
    rt_error err;
    rt_set_error(&err, RT_ERR_UNAVAILABLE, 0, "the server is shutting down");
    for (size_t i = 0; i < rt->n_models; i++) {
        rt_model *m = rt->models[i];
        fail_queue_locked(m, &err);
        if (m->handle != NULL) rt->engine.unload(rt->engine.user, m->name.type, m->handle);
    }
    free_manager(rt);
}

void rt_cancel_jobs(rt_manager *rt) {
    rt_error err;
    rt_set_error(&err, RT_ERR_UNAVAILABLE, 0, "the server is shutting down");
    pthread_mutex_lock(&rt->mu);
    for (size_t i = 0; i < rt->n_models; i++) {
        rt_model *m = rt->models[i];
        if (m->current != NULL) rt_job_cancel(m->current);
        fail_queue_locked(m, &err);
    }
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
}

/* ---- jobs -------------------------------------------------------------------------------- */

static rt_status submit(rt_manager *rt, rt_job *job, const char *name, rt_model_type type,
                        rt_error *err) {
    pthread_mutex_lock(&rt->mu);
    rt_model *m = NULL;
    rt_status st = RT_OK;
    if (rt->stopping) {
        st = rt_set_error(err, RT_ERR_UNAVAILABLE, 0, "the server is shutting down");
        goto out;
    }
    if (name == NULL || name[0] == '\0') {
        m = type == RT_MODEL_LLM ? rt->default_llm : rt->default_whisper;
        if (m == NULL) {
            st = rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "no model named and no default %s model",
                              rt_model_type_name(type));
            goto out;
        }
    } else if ((st = rt_resolve_locked(rt, name, &m, err)) != RT_OK) {
        goto out;
    }
    if (m->name.type != type) {
        st = rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "'%s' is a %s model, not a %s model",
                          m->name.id, rt_model_type_name(m->name.type), rt_model_type_name(type));
        goto out;
    }
    if (!m->on_disk && m->state != RT_STATE_DOWNLOADING && !rt->cfg.auto_download) {
        st = rt_set_error(err, RT_ERR_MODEL_NOT_FOUND, 0,
                          "model '%s' is not downloaded (automatic downloads are off)", m->name.id);
        goto out;
    }
    if (m->queued >= rt->cfg.queue_capacity) {
        st = rt_set_error(err, RT_ERR_BUSY, BUSY_RETRY_S,
                          "model '%s' has %d requests waiting; try again shortly", m->name.id,
                          m->queued);
        goto out;
    }
    if ((st = ensure_worker_locked(m, err)) != RT_OK) goto out;
    retry_if_failed_locked(m);
    rt_job_set_model_id(job, m->name.id);
    rt_job_queue(job)->deadline = rt_now() + rt->cfg.load_wait_s;
    rt_job_queue(job)->next = NULL;
    if (m->queue_tail != NULL)
        rt_job_queue(m->queue_tail)->next = job;
    else
        m->queue_head = job;
    m->queue_tail = job;
    m->queued++;
    pthread_cond_broadcast(&rt->cv);
out:
    pthread_mutex_unlock(&rt->mu);
    return st;
}

/* Submits a new job, or frees it (both references) when it cannot be queued. */
static rt_status submit_or_drop(rt_manager *rt, rt_job *job, const char *name, rt_model_type type,
                                rt_job **out, rt_error *err) {
    *out = NULL;
    if (job == NULL) return rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory");
    rt_status st = submit(rt, job, name, type, err);
    if (st != RT_OK) {
        rt_job_release(job);
        rt_job_release(job);
        return st;
    }
    *out = job;
    return RT_OK;
}

rt_status rt_submit_chat(rt_manager *rt, const rt_chat_request *req, rt_job **out, rt_error *err) {
    *out = NULL;
    if ((req->messages == NULL || req->n_messages == 0) && req->prompt == NULL)
        return rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "no messages and no prompt");
    if (req->n_stop > RT_MAX_STOP)
        return rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "at most %d stop strings", RT_MAX_STOP);
    if (req->top_logprobs < 0 || req->top_logprobs > RT_MAX_TOP_LOGPROBS)
        return rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "top_logprobs must be 0..%d",
                            RT_MAX_TOP_LOGPROBS);
    for (size_t i = 0; i < req->n_messages; i++)
        if (req->messages[i].role == NULL || req->messages[i].content == NULL)
            return rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "message %zu has no role or content",
                                i);
    return submit_or_drop(rt, rt_job_new_chat(req), req->model, RT_MODEL_LLM, out, err);
}

rt_status rt_submit_transcription(rt_manager *rt, const rt_transcription_request *req, rt_job **out,
                                  rt_error *err) {
    *out = NULL;
    if (req->audio == NULL || req->audio_len == 0)
        return rt_set_error(err, RT_ERR_BAD_REQUEST, 0, "no audio");
    return submit_or_drop(rt, rt_job_new_transcription(req), req->model, RT_MODEL_WHISPER, out,
                          err);
}

/* ---- explicit control -------------------------------------------------------------------- */

rt_status rt_load_model(rt_manager *rt, const char *name, double wait_s, rt_error *err) {
    pthread_mutex_lock(&rt->mu);
    rt_model *m = NULL;
    rt_status st = rt->stopping ? rt_set_error(err, RT_ERR_UNAVAILABLE, 0, "shutting down")
                                : rt_resolve_locked(rt, name, &m, err);
    if (st == RT_OK && m->state != RT_STATE_READY) {
        want_loaded_locked(rt, m);
        st = ensure_worker_locked(m, err);
        pthread_cond_broadcast(&rt->cv);
    }
    double deadline = rt_now() + wait_s;
    while (st == RT_OK && wait_s > 0 && m->state != RT_STATE_READY && !rt->stopping) {
        if (m->state == RT_STATE_FAILED) {
            st = m->error.status != RT_OK ? m->error.status : RT_ERR_INTERNAL;
            if (err != NULL) *err = m->error;
            break;
        }
        if (rt_now() >= deadline) {
            waiting_error(m, err);
            st = RT_ERR_LOADING;
            break;
        }
        rt_wait_locked(rt, deadline);
    }
    pthread_mutex_unlock(&rt->mu);
    return st;
}

rt_status rt_unload_model(rt_manager *rt, const char *name, rt_error *err) {
    pthread_mutex_lock(&rt->mu);
    rt_model *m = NULL;
    rt_status st = rt_resolve_locked(rt, name, &m, err);
    if (st == RT_OK && m->state == RT_STATE_READY) {
        if (is_idle(m))
            unload_locked(rt, m, "asked to");
        else
            st = rt_set_error(err, RT_ERR_BUSY, BUSY_RETRY_S, "model '%s' is in use", m->name.id);
    }
    pthread_mutex_unlock(&rt->mu);
    return st;
}

#include "runtime/job.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/common.h"

typedef struct event_node {
    struct event_node *next;
    rt_event ev;
    char *text;
    rt_token_logprob *logprobs;
    rt_segment segment;
    char *segment_text;
    int32_t *tokens;
    rt_word *words;
    char *words_text; /* the words' texts, back to back */
    char *full_text;
    char language[16];
    char model[RT_ID_MAX];
} event_node;

struct rt_job {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int refs;
    atomic_bool cancel;
    rt_job_kind kind;
    rt_chat_request chat;
    fluid_chat_message *messages;
    rt_transcription_request asr;
    char model_id[RT_ID_MAX];
    event_node *head, *tail;
    event_node *current;    /* handed to the consumer by the last rt_job_next */
    event_node *finished;   /* the final event, kept for repeated rt_job_next calls */
    event_node *final_node; /* allocated up front so that finishing cannot fail */
    bool finish_queued;
    rt_job_queue_entry queue;
};

/* ---- request copies ---------------------------------------------------------------------- */

static bool dup_str(const char *s, const char **out) {
    *out = NULL;
    if (s == NULL) return true;
    char *d = strdup(s);
    *out = d;
    return d != NULL;
}

static rt_job *job_alloc(rt_job_kind kind) {
    rt_job *job = calloc(1, sizeof *job);
    if (job == NULL) return NULL;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&job->mu, NULL);
    pthread_cond_init(&job->cv, &attr);
    pthread_condattr_destroy(&attr);
    job->final_node = calloc(1, sizeof *job->final_node);
    if (job->final_node == NULL) {
        free(job);
        return NULL;
    }
    atomic_init(&job->refs, 2);
    atomic_init(&job->cancel, false);
    job->kind = kind;
    return job;
}

static void free_request(rt_job *job) {
    free((char *)job->chat.model);
    free((char *)job->chat.prompt);
    for (size_t i = 0; i < job->chat.n_stop; i++) free((char *)job->chat.stop[i]);
    for (size_t i = 0; job->messages != NULL && i < job->chat.n_messages; i++) {
        free((char *)job->messages[i].role);
        free((char *)job->messages[i].content);
    }
    free(job->messages);
    free((void *)job->chat.sampling.logit_bias);
    free((char *)job->asr.model);
    free((void *)job->asr.audio);
    free((char *)job->asr.language);
    free((char *)job->asr.prompt);
}

static void free_node(event_node *n) {
    if (n == NULL) return;
    free(n->text);
    free(n->logprobs);
    free(n->segment_text);
    free(n->tokens);
    free(n->words);
    free(n->words_text);
    free(n->full_text);
    free(n);
}

static void job_free(rt_job *job) {
    for (event_node *n = job->head, *next; n != NULL; n = next) {
        next = n->next;
        free_node(n);
    }
    free_node(job->current);
    if (job->finished != job->current) free_node(job->finished);
    if (!job->finish_queued) free_node(job->final_node);
    free_request(job);
    pthread_mutex_destroy(&job->mu);
    pthread_cond_destroy(&job->cv);
    free(job);
}

rt_job *rt_job_new_chat(const rt_chat_request *req) {
    rt_job *job = job_alloc(RT_JOB_CHAT);
    if (job == NULL) return NULL;
    job->chat = *req;
    job->chat.messages = NULL;
    job->chat.n_messages = 0;
    job->chat.sampling.logit_bias = NULL;
    bool ok = dup_str(req->model, &job->chat.model) && dup_str(req->prompt, &job->chat.prompt);
    size_t n_stop = req->n_stop < RT_MAX_STOP ? req->n_stop : RT_MAX_STOP;
    job->chat.n_stop = 0;
    for (size_t i = 0; ok && i < n_stop; i++) {
        ok = dup_str(req->stop[i], &job->chat.stop[i]);
        job->chat.n_stop = i + 1;
    }
    /* logit_bias is not owned by the request struct: copy it. */
    if (ok && req->sampling.n_logit_bias > 0) {
        fluid_logit_bias *bias = malloc(req->sampling.n_logit_bias * sizeof *bias);
        ok = bias != NULL;
        if (ok) memcpy(bias, req->sampling.logit_bias, req->sampling.n_logit_bias * sizeof *bias);
        job->chat.sampling.logit_bias = bias;
    }
    if (ok && req->n_messages > 0) {
        job->messages = calloc(req->n_messages, sizeof *job->messages);
        ok = job->messages != NULL;
        for (size_t i = 0; ok && i < req->n_messages; i++) {
            job->chat.n_messages = i + 1;
            ok = dup_str(req->messages[i].role, &job->messages[i].role) &&
                 dup_str(req->messages[i].content, &job->messages[i].content);
        }
        job->chat.messages = job->messages;
    }
    if (!ok) {
        job_free(job);
        return NULL;
    }
    return job;
}

rt_job *rt_job_new_transcription(const rt_transcription_request *req) {
    rt_job *job = job_alloc(RT_JOB_TRANSCRIPTION);
    if (job == NULL) return NULL;
    job->asr = *req;
    job->asr.audio = NULL;
    bool ok = dup_str(req->model, &job->asr.model) && dup_str(req->language, &job->asr.language) &&
              dup_str(req->prompt, &job->asr.prompt);
    if (ok && req->audio_len > 0) {
        void *audio = malloc(req->audio_len);
        ok = audio != NULL;
        if (ok) memcpy(audio, req->audio, req->audio_len);
        job->asr.audio = audio;
    }
    if (!ok) {
        job_free(job);
        return NULL;
    }
    return job;
}

rt_job_kind rt_job_kind_of(const rt_job *job) {
    return job->kind;
}
const rt_chat_request *rt_job_chat(const rt_job *job) {
    return &job->chat;
}
const rt_transcription_request *rt_job_transcription(const rt_job *job) {
    return &job->asr;
}
bool rt_job_cancelled(const rt_job *job) {
    return atomic_load(&job->cancel);
}
void rt_job_retain(rt_job *job) {
    atomic_fetch_add(&job->refs, 1);
}
rt_job_queue_entry *rt_job_queue(rt_job *job) {
    return &job->queue;
}

void rt_job_set_model_id(rt_job *job, const char *id) {
    pthread_mutex_lock(&job->mu);
    snprintf(job->model_id, sizeof job->model_id, "%s", id);
    pthread_mutex_unlock(&job->mu);
}

/* ---- producer ---------------------------------------------------------------------------- */

static void push_locked(rt_job *job, event_node *n) {
    if (job->tail != NULL)
        job->tail->next = n;
    else
        job->head = n;
    job->tail = n;
    pthread_cond_broadcast(&job->cv);
}

bool rt_job_emit_text(rt_job *job, const char *text, size_t len, const rt_token_logprob *lp,
                      size_t n_lp) {
    if (len == 0 && n_lp == 0) return true;
    pthread_mutex_lock(&job->mu);
    bool ok = !job->finish_queued;
    event_node *tail = job->tail;
    if (ok && n_lp == 0 && tail != NULL && tail->ev.type == RT_EVENT_TEXT &&
        tail->ev.n_logprobs == 0) {
        /* The consumer is behind: grow the pending text event instead of queueing another. */
        char *grown = realloc(tail->text, tail->ev.text_len + len + 1);
        ok = grown != NULL;
        if (ok) {
            memcpy(grown + tail->ev.text_len, text, len);
            tail->ev.text_len += len;
            grown[tail->ev.text_len] = '\0';
            tail->text = grown;
            tail->ev.text = grown;
        }
        pthread_mutex_unlock(&job->mu);
        if (!ok) atomic_store(&job->cancel, true);
        return ok;
    }
    event_node *n = ok ? calloc(1, sizeof *n) : NULL;
    if (n != NULL) {
        n->text = malloc(len + 1);
        n->logprobs = n_lp > 0 ? malloc(n_lp * sizeof *lp) : NULL;
        if (n->text == NULL || (n_lp > 0 && n->logprobs == NULL)) {
            free_node(n);
            n = NULL;
        }
    }
    if (n != NULL) {
        memcpy(n->text, text, len);
        n->text[len] = '\0';
        if (n_lp > 0) memcpy(n->logprobs, lp, n_lp * sizeof *lp);
        n->ev.type = RT_EVENT_TEXT;
        n->ev.text = n->text;
        n->ev.text_len = len;
        n->ev.logprobs = n->logprobs;
        n->ev.n_logprobs = n_lp;
        push_locked(job, n);
    }
    pthread_mutex_unlock(&job->mu);
    if (n == NULL) atomic_store(&job->cancel, true);
    return n != NULL;
}

static bool copy_segment(event_node *n, const rt_segment *seg) {
    n->segment = *seg;
    n->segment_text = strdup(seg->text != NULL ? seg->text : "");
    if (n->segment_text == NULL) return false;
    n->segment.text = n->segment_text;
    n->segment.tokens = NULL;
    n->segment.words = NULL;
    if (seg->n_tokens > 0) {
        n->tokens = malloc(seg->n_tokens * sizeof *n->tokens);
        if (n->tokens == NULL) return false;
        memcpy(n->tokens, seg->tokens, seg->n_tokens * sizeof *n->tokens);
        n->segment.tokens = n->tokens;
    }
    if (seg->n_words > 0) {
        size_t text_bytes = 0;
        for (size_t i = 0; i < seg->n_words; i++)
            text_bytes += strlen(seg->words[i].text != NULL ? seg->words[i].text : "") + 1;
        n->words = malloc(seg->n_words * sizeof *n->words);
        n->words_text = malloc(text_bytes);
        if (n->words == NULL || n->words_text == NULL) return false;
        char *p = n->words_text;
        for (size_t i = 0; i < seg->n_words; i++) {
            const char *w = seg->words[i].text != NULL ? seg->words[i].text : "";
            size_t wl = strlen(w) + 1;
            memcpy(p, w, wl);
            n->words[i] = seg->words[i];
            n->words[i].text = p;
            p += wl;
        }
        n->segment.words = n->words;
    }
    return true;
}

bool rt_job_emit_segment(rt_job *job, const rt_segment *seg) {
    event_node *n = calloc(1, sizeof *n);
    if (n == NULL || !copy_segment(n, seg)) {
        free_node(n);
        atomic_store(&job->cancel, true);
        return false;
    }
    n->ev.type = RT_EVENT_SEGMENT;
    n->ev.segment = &n->segment;
    pthread_mutex_lock(&job->mu);
    if (job->finish_queued) {
        pthread_mutex_unlock(&job->mu);
        free_node(n);
        return false;
    }
    push_locked(job, n);
    pthread_mutex_unlock(&job->mu);
    return true;
}

void rt_job_finish(rt_job *job, const rt_job_result *r) {
    pthread_mutex_lock(&job->mu);
    if (job->finish_queued) {
        pthread_mutex_unlock(&job->mu);
        return;
    }
    job->finish_queued = true;
    event_node *n = job->final_node;
    n->ev.type = RT_EVENT_FINISHED;
    n->ev.finish_reason = r->reason;
    n->ev.usage = r->usage;
    if (r->error != NULL) n->ev.error = *r->error;
    if (r->full_text != NULL) {
        n->full_text = strdup(r->full_text); /* on failure the event comes without it */
        n->ev.full_text = n->full_text != NULL ? n->full_text : "";
    }
    if (r->language != NULL) {
        snprintf(n->language, sizeof n->language, "%s", r->language);
        n->ev.language = n->language;
    }
    n->ev.duration = r->duration;
    snprintf(n->model, sizeof n->model, "%s", job->model_id);
    n->ev.model = n->model;
    push_locked(job, n);
    pthread_mutex_unlock(&job->mu);
}

void rt_job_fail(rt_job *job, const rt_error *error) {
    rt_job_result r = {.reason = RT_FINISH_ERROR, .error = error};
    rt_job_finish(job, &r);
}

bool rt_job_is_finished(rt_job *job) {
    pthread_mutex_lock(&job->mu);
    bool done = job->finish_queued;
    pthread_mutex_unlock(&job->mu);
    return done;
}

/* ---- consumer ---------------------------------------------------------------------------- */

static void deadline_after_ms(struct timespec *ts, int ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

bool rt_job_next(rt_job *job, int timeout_ms, rt_event *ev) {
    memset(ev, 0, sizeof *ev);
    pthread_mutex_lock(&job->mu);
    if (job->current != NULL && job->current != job->finished) free_node(job->current);
    job->current = NULL;
    if (job->finished != NULL) {
        *ev = job->finished->ev;
        pthread_mutex_unlock(&job->mu);
        return true;
    }
    struct timespec deadline;
    if (timeout_ms > 0) deadline_after_ms(&deadline, timeout_ms);
    while (job->head == NULL && timeout_ms != 0) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&job->cv, &job->mu)
                                : pthread_cond_timedwait(&job->cv, &job->mu, &deadline);
        if (rc != 0) break;
    }
    event_node *n = job->head;
    if (n != NULL) {
        job->head = n->next;
        if (job->head == NULL) job->tail = NULL;
        n->next = NULL;
        job->current = n;
        if (n->ev.type == RT_EVENT_FINISHED) job->finished = n;
        *ev = n->ev;
    }
    pthread_mutex_unlock(&job->mu);
    return n != NULL;
}

void rt_job_cancel(rt_job *job) {
    if (job != NULL) atomic_store(&job->cancel, true);
}

void rt_job_release(rt_job *job) {
    if (job == NULL) return;
    atomic_store(&job->cancel, true);
    if (atomic_fetch_sub(&job->refs, 1) == 1) job_free(job);
}

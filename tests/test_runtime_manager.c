/* The manager's state machine driven by a scripted engine: discovery, lazy and single-flight
 * loads, idle unload and reload, side-by-side types, switching under concurrent jobs, the memory
 * limit, failures and retries, cancellation, health, and Hub downloads through the manager. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/common.h"
#include "runtime/engine.h"
#include "runtime/runtime.h"
#include "support/fake_hub.h"
#include "support/files.h"
#include "support/rt_config.h"

#define MODEL_BYTES 4000
#define KV_BYTES 1000

/* ---- a scripted engine ------------------------------------------------------------------- */

typedef struct script {
    int load_ms, step_ms;
    uint64_t context_bytes; /* what the engine estimates a job's context takes */
    atomic_int loads, unloads, resident, max_resident_llm, resident_llm;
    atomic_int runs_in_parallel_max, running;
} script;

typedef struct fake_model {
    rt_model_type type;
} fake_model;

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void *fake_load(void *user, rt_model_type type, const char *path, uint64_t *bytes,
                       rt_error *err) {
    script *s = user;
    sleep_ms(s->load_ms);
    FILE *f = fopen(path, "rb");
    char head[4] = {0};
    size_t n = f != NULL ? fread(head, 1, 3, f) : 0;
    if (f != NULL) fclose(f);
    if (n < 3 || memcmp(head, "BAD", 3) == 0) {
        rt_set_error(err, RT_ERR_UNAVAILABLE, 0, "cannot load %s: corrupt model", path);
        return NULL;
    }
    struct stat st;
    stat(path, &st);
    *bytes = (uint64_t)st.st_size;
    fake_model *m = calloc(1, sizeof *m);
    m->type = type;
    atomic_fetch_add(&s->loads, 1);
    atomic_fetch_add(&s->resident, 1);
    if (type == RT_MODEL_LLM) {
        int r = atomic_fetch_add(&s->resident_llm, 1) + 1;
        int max = atomic_load(&s->max_resident_llm);
        while (r > max && !atomic_compare_exchange_weak(&s->max_resident_llm, &max, r)) {
        }
    }
    return m;
}

static void fake_unload(void *user, rt_model_type type, void *handle) {
    script *s = user;
    atomic_fetch_add(&s->unloads, 1);
    atomic_fetch_sub(&s->resident, 1);
    if (type == RT_MODEL_LLM) atomic_fetch_sub(&s->resident_llm, 1);
    free(handle);
}

static uint64_t fake_context_bytes(void *user, rt_model_type type, const char *path, int n_ctx) {
    (void)type, (void)path, (void)n_ctx;
    return ((script *)user)->context_bytes;
}

static void fake_run(void *user, rt_model_type type, void *handle, rt_job *job,
                     const rt_run_env *env) {
    script *s = user;
    (void)handle;
    rt_job_result r = {.reason = RT_FINISH_STOP};
    rt_error err = {0};
    if (env->reserve(env->reserve_user, KV_BYTES, &err) != RT_OK) {
        rt_job_fail(job, &err);
        return;
    }
    atomic_fetch_add(&s->running, 1);
    if (type == RT_MODEL_WHISPER) {
        rt_segment seg = {.id = 0, .start = 0, .end = 1.5, .text = " hello"};
        rt_job_emit_segment(job, &seg);
        r.full_text = " hello";
        r.language = "en";
        r.duration = 1.5;
    } else {
        int max = rt_job_chat(job)->max_tokens > 0 ? rt_job_chat(job)->max_tokens : 5;
        for (int i = 0; i < max; i++) {
            if (rt_job_cancelled(job)) {
                r.reason = RT_FINISH_CANCELLED;
                break;
            }
            sleep_ms(s->step_ms);
            char piece[16];
            snprintf(piece, sizeof piece, "t%d ", i);
            rt_job_emit_text(job, piece, strlen(piece), NULL, 0);
            r.usage.completion_tokens++;
            if (i + 1 == max) r.reason = RT_FINISH_LENGTH;
        }
    }
    atomic_fetch_sub(&s->running, 1);
    env->reserve(env->reserve_user, -KV_BYTES, NULL); /* as the real engine: memory first */
    rt_job_finish(job, &r);
}

/* ---- fixture ----------------------------------------------------------------------------- */

typedef struct fixture {
    char *root;
    script s;
    rt_engine engine;
    rt_config cfg;
    rt_manager *rt;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->root = fake_hub_temp_dir();
    test_make_file(f->root, "llm/a.gguf", "OK", MODEL_BYTES);
    test_make_file(f->root, "llm/b.gguf", "OK", MODEL_BYTES);
    test_make_file(f->root, "llm/sub/c.gguf", "OK", MODEL_BYTES);
    test_make_file(f->root, "whisper/ggml-tiny.bin", "OK", MODEL_BYTES);
    f->s.load_ms = 20;
    f->s.step_ms = 2;
    f->engine = (rt_engine){.user = &f->s,
                            .load = fake_load,
                            .unload = fake_unload,
                            .context_bytes = fake_context_bytes,
                            .run = fake_run};
    test_rt_config(&f->cfg, f->root);
    f->cfg.idle_timeout_s = 0;
    f->cfg.idle_check_interval_s = 0.02;
    f->cfg.load_wait_s = 10;
    f->cfg.download_retries = 0;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    rt_destroy(f->rt);
    fake_hub_rmtree(f->root);
    free(f->root);
    free(f);
    return 0;
}

static rt_manager *start(fixture *f) {
    rt_error err = {0};
    f->rt = rt_create_with_engine(&f->cfg, &f->engine, &err);
    if (f->rt == NULL) fail_msg("rt_create: %s", err.message);
    assert_int_equal(rt_start(f->rt, &err), RT_OK);
    return f->rt;
}

/* Runs a chat job to its end; returns the finished event (text appended to text if given). */
static rt_event run_chat(rt_manager *rt, const char *model, int max_tokens, char *text,
                         size_t size) {
    fluid_chat_message msg = {"user", "hi"};
    rt_chat_request req = {
        .model = model, .messages = &msg, .n_messages = 1, .max_tokens = max_tokens};
    fluid_sampling_defaults(&req.sampling);
    rt_job *job = NULL;
    rt_error err = {0};
    rt_event ev = {0};
    if (rt_submit_chat(rt, &req, &job, &err) != RT_OK) {
        ev.type = RT_EVENT_FINISHED;
        ev.finish_reason = RT_FINISH_ERROR;
        ev.error = err;
        return ev;
    }
    if (text != NULL) text[0] = '\0';
    while (rt_job_next(job, 10000, &ev) && ev.type != RT_EVENT_FINISHED)
        if (ev.type == RT_EVENT_TEXT && text != NULL)
            strncat(text, ev.text, size - strlen(text) - 1);
    assert_int_equal(ev.type, RT_EVENT_FINISHED);
    rt_event copy = ev;
    copy.model = NULL;
    rt_job_release(job);
    return copy;
}

/* Submits a chat job of max_tokens on model and waits for its first text: it is running. */
static rt_job *start_running_chat(rt_manager *rt, const char *model, int max_tokens) {
    fluid_chat_message msg = {"user", "hi"};
    rt_chat_request req = {
        .model = model, .messages = &msg, .n_messages = 1, .max_tokens = max_tokens};
    rt_job *job = NULL;
    rt_error err = {0};
    if (rt_submit_chat(rt, &req, &job, &err) != RT_OK) fail_msg("submit: %s", err.message);
    rt_event ev;
    assert_true(rt_job_next(job, 10000, &ev));
    assert_int_equal(ev.type, RT_EVENT_TEXT);
    return job;
}

/* Reads a job's events to its end, which must be a cancellation, and releases it; returns how
 * many events came before the end. */
static int finish_cancelled(rt_job *job) {
    rt_event ev;
    int events = 0;
    while (rt_job_next(job, 10000, &ev) && ev.type != RT_EVENT_FINISHED) events++;
    assert_int_equal(ev.type, RT_EVENT_FINISHED);
    assert_int_equal(ev.finish_reason, RT_FINISH_CANCELLED);
    rt_job_release(job);
    return events;
}

static rt_model_state state_of(rt_manager *rt, const char *id) {
    rt_model_info info;
    if (rt_get_model(rt, id, &info, NULL) != RT_OK) return (rt_model_state)-1;
    return info.state;
}

static bool wait_state(rt_manager *rt, const char *id, rt_model_state want, double timeout_s) {
    double end = rt_now() + timeout_s;
    while (rt_now() < end) {
        if (state_of(rt, id) == want) return true;
        sleep_ms(5);
    }
    return state_of(rt, id) == want;
}

static void assert_contains(const char *haystack, const char *needle) {
    if (strstr(haystack, needle) == NULL) fail_msg("'%s' does not contain '%s'", haystack, needle);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_listing_and_rescan(void **state) {
    fixture *f = *state;
    f->cfg.llm_model = "org/repo/missing.gguf";
    rt_manager *rt = start(f);
    rt_model_info *models = NULL;
    size_t n = 0;
    assert_int_equal(rt_list_models(rt, &models, &n, NULL), RT_OK);
    const char *want[] = {"a", "b", "org/repo/missing", "sub/c", "whisper-tiny"};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) assert_string_equal(models[i].id, want[i]);
    assert_int_equal(models[0].state, RT_STATE_ON_DISK);
    assert_int_equal(models[0].size_bytes, MODEL_BYTES);
    assert_true(models[0].created > 0);
    assert_int_equal(models[2].state, RT_STATE_ABSENT);
    assert_true(models[2].is_default);
    assert_int_equal(models[4].type, RT_MODEL_WHISPER);
    rt_free_models(models);
    /* Files added or removed while running. */
    test_make_file(f->root, "llm/new.gguf", "OK", 10);
    test_make_file(f->root, "llm/new2.gguf.part", "OK", 10);
    char path[1024];
    snprintf(path, sizeof path, "%s/llm/b.gguf", f->root);
    unlink(path);
    assert_int_equal(rt_rescan(rt, NULL), RT_OK);
    assert_int_equal(state_of(rt, "new"), RT_STATE_ON_DISK);
    assert_int_equal((int)state_of(rt, "new2"), -1);
    assert_int_equal((int)state_of(rt, "b"), -1);
    rt_model_info info;
    rt_error err = {0};
    assert_int_equal(rt_get_model(rt, "b", &info, &err), RT_ERR_MODEL_NOT_FOUND);
    /* Any name of a model finds it. */
    assert_int_equal(rt_get_model(rt, "a.gguf", &info, NULL), RT_OK);
    assert_string_equal(info.id, "a");
}

/* A model copied into <model-path> while running is found by the first request naming it: an
 * unknown name rescans the folder (at most once a second) before answering "not found". */
static void test_unknown_name_rescans(void **state) {
    fixture *f = *state;
    rt_manager *rt = start(f);
    rt_event ev = run_chat(rt, "late", 1, NULL, 0);
    assert_int_equal(ev.error.status, RT_ERR_MODEL_NOT_FOUND);
    test_make_file(f->root, "llm/late.gguf", "OK", MODEL_BYTES);
    sleep_ms(1100); /* past the rate limit of the rescan the miss above made */
    ev = run_chat(rt, "late", 2, NULL, 0);
    assert_int_equal(ev.error.status, RT_OK);
    assert_int_equal(ev.finish_reason, RT_FINISH_LENGTH);
}

static void test_lazy_load_and_job(void **state) {
    fixture *f = *state;
    rt_manager *rt = start(f);
    assert_int_equal(state_of(rt, "a"), RT_STATE_ON_DISK);
    char text[256];
    rt_event ev = run_chat(rt, "a", 3, text, sizeof text);
    assert_int_equal(ev.finish_reason, RT_FINISH_LENGTH);
    assert_string_equal(text, "t0 t1 t2 ");
    assert_int_equal(ev.usage.completion_tokens, 3);
    assert_int_equal(state_of(rt, "a"), RT_STATE_READY);
    rt_health_info h;
    rt_health(rt, &h);
    assert_true(h.llm.configured);
    assert_string_equal(h.llm.model, "a");
    assert_int_equal(h.llm.state, RT_STATE_READY);
    assert_int_equal(h.memory_bytes, MODEL_BYTES);
    assert_int_equal(h.status, RT_HEALTH_READY);
    assert_int_equal(atomic_load(&f->s.loads), 1);
}

typedef struct client {
    rt_manager *rt;
    const char *models[2];
    int jobs;
    int ok, failed;
    char last_error[RT_MESSAGE_MAX];
} client;

static void *client_main(void *arg) {
    client *c = arg;
    for (int i = 0; i < c->jobs; i++) {
        rt_event ev = run_chat(c->rt, c->models[i % 2], 4, NULL, 0);
        if (ev.finish_reason == RT_FINISH_LENGTH)
            c->ok++;
        else {
            c->failed++;
            snprintf(c->last_error, sizeof c->last_error, "%s", ev.error.message);
        }
    }
    return NULL;
}

static void run_clients(rt_manager *rt, const char *m0, const char *m1, int n_clients, int jobs,
                        client *clients) {
    pthread_t threads[8];
    for (int i = 0; i < n_clients; i++) {
        clients[i] = (client){.rt = rt, .models = {i % 2 ? m1 : m0, i % 2 ? m0 : m1}, .jobs = jobs};
        pthread_create(&threads[i], NULL, client_main, &clients[i]);
    }
    for (int i = 0; i < n_clients; i++) pthread_join(threads[i], NULL);
}

static void test_single_flight_load(void **state) {
    fixture *f = *state;
    f->s.load_ms = 150;
    rt_manager *rt = start(f);
    client clients[4];
    run_clients(rt, "a", "a", 4, 1, clients);
    for (int i = 0; i < 4; i++) assert_int_equal(clients[i].ok, 1);
    assert_int_equal(atomic_load(&f->s.loads), 1);
}

static void test_idle_unload_and_reload(void **state) {
    fixture *f = *state;
    f->cfg.idle_timeout_s = 0.2;
    rt_manager *rt = start(f);
    assert_int_equal(run_chat(rt, "a", 2, NULL, 0).finish_reason, RT_FINISH_LENGTH);
    assert_int_equal(state_of(rt, "a"), RT_STATE_READY);
    assert_true(wait_state(rt, "a", RT_STATE_ON_DISK, 5));
    assert_int_equal(atomic_load(&f->s.unloads), 1);
    rt_health_info h;
    rt_health(rt, &h);
    assert_int_equal(h.memory_bytes, 0);
    assert_int_equal(h.llm.loaded_count, 0);
    /* The next request loads it again. */
    assert_int_equal(run_chat(rt, "a", 2, NULL, 0).finish_reason, RT_FINISH_LENGTH);
    assert_int_equal(atomic_load(&f->s.loads), 2);
}

static void test_busy_model_is_not_unloaded(void **state) {
    fixture *f = *state;
    f->cfg.idle_timeout_s = 0.05;
    f->s.step_ms = 20;
    rt_manager *rt = start(f);
    /* A job far longer than the idle timeout runs to its end on a resident model. */
    assert_int_equal(run_chat(rt, "a", 20, NULL, 0).finish_reason, RT_FINISH_LENGTH);
    assert_int_equal(atomic_load(&f->s.loads), 1);
    assert_int_equal(atomic_load(&f->s.unloads), 0);
}

static rt_event run_transcription(rt_manager *rt, const char *model, int *segments) {
    rt_transcription_request req = {
        .model = model, .audio = "RIFF", .audio_len = 4, .segments = true};
    rt_job *job = NULL;
    rt_error err = {0};
    rt_event ev = {0};
    assert_int_equal(rt_submit_transcription(rt, &req, &job, &err), RT_OK);
    *segments = 0;
    while (rt_job_next(job, 10000, &ev) && ev.type != RT_EVENT_FINISHED)
        if (ev.type == RT_EVENT_SEGMENT) (*segments)++;
    assert_int_equal(ev.type, RT_EVENT_FINISHED);
    assert_string_equal(ev.full_text, " hello");
    assert_string_equal(ev.language, "en");
    rt_event copy = ev;
    copy.full_text = copy.language = copy.model = NULL;
    rt_job_release(job);
    return copy;
}

static void test_side_by_side_llm_and_whisper(void **state) {
    fixture *f = *state;
    f->cfg.whisper_model = "whisper-tiny";
    rt_manager *rt = start(f);
    assert_int_equal(run_chat(rt, "a", 2, NULL, 0).finish_reason, RT_FINISH_LENGTH);
    int segments = 0;
    rt_event ev = run_transcription(rt, NULL, &segments); /* the default Whisper model */
    assert_int_equal(ev.finish_reason, RT_FINISH_STOP);
    assert_int_equal(segments, 1);
    assert_int_equal(state_of(rt, "a"), RT_STATE_READY);
    assert_int_equal(state_of(rt, "whisper-tiny"), RT_STATE_READY);
    rt_health_info h;
    rt_health(rt, &h);
    assert_int_equal(h.llm.state, RT_STATE_READY);
    assert_int_equal(h.whisper.state, RT_STATE_READY);
    assert_string_equal(h.whisper.model, "whisper-tiny");
    assert_int_equal(h.memory_bytes, 2 * MODEL_BYTES);
    /* Naming the wrong type for an endpoint is a bad request. */
    fluid_chat_message msg = {"user", "hi"};
    rt_chat_request req = {.model = "whisper-tiny", .messages = &msg, .n_messages = 1};
    rt_job *job = NULL;
    rt_error err = {0};
    assert_int_equal(rt_submit_chat(rt, &req, &job, &err), RT_ERR_BAD_REQUEST);
    assert_contains(err.message, "whisper model");
}

static void test_switching_llms_under_concurrent_jobs(void **state) {
    fixture *f = *state;
    f->s.load_ms = 10;
    rt_manager *rt = start(f);
    client clients[4];
    run_clients(rt, "a", "b", 4, 6, clients);
    for (int i = 0; i < 4; i++) {
        if (clients[i].failed > 0) fail_msg("client %d: %s", i, clients[i].last_error);
        assert_int_equal(clients[i].ok, 6);
    }
    /* Once idle, no more than --max-models-per-type stay resident. */
    rt_health_info h;
    for (int i = 0; i < 200; i++) {
        rt_health(rt, &h);
        if (h.llm.loaded_count <= 1) break;
        sleep_ms(5);
    }
    assert_true(h.llm.loaded_count <= 1);
    assert_true(atomic_load(&f->s.loads) >= 2);
}

static void test_memory_limit_evicts_idle_models(void **state) {
    fixture *f = *state;
    /* Room for one model and its KV cache, not two. */
    f->cfg.max_memory_gb = (MODEL_BYTES + KV_BYTES + 100) / 1e9;
    f->cfg.max_models_per_type = 4;
    f->cfg.whisper_model = "whisper-tiny";
    rt_manager *rt = start(f);
    assert_int_equal(run_chat(rt, "a", 2, NULL, 0).finish_reason, RT_FINISH_LENGTH);
    assert_int_equal(run_chat(rt, "b", 2, NULL, 0).finish_reason, RT_FINISH_LENGTH);
    assert_int_equal(state_of(rt, "a"), RT_STATE_ON_DISK);
    assert_int_equal(state_of(rt, "b"), RT_STATE_READY);
    int segments;
    assert_int_equal(run_transcription(rt, "whisper-tiny", &segments).finish_reason,
                     RT_FINISH_STOP);
    assert_int_equal(state_of(rt, "b"), RT_STATE_ON_DISK);
    rt_health_info h;
    rt_health(rt, &h);
    assert_true(h.memory_bytes <= h.memory_limit_bytes);
    assert_int_equal(h.memory_limit_bytes, MODEL_BYTES + KV_BYTES + 100);
}

/* The context a job will need counts before a load: weights that fit with no room for the
 * context are refused without loading, and idle models make room for both first. */
static void test_memory_limit_counts_the_context(void **state) {
    fixture *f = *state;
    f->s.context_bytes = 3 * KV_BYTES;
    f->cfg.max_memory_gb = (MODEL_BYTES + 2 * KV_BYTES) / 1e9; /* weights fit, context not */
    rt_manager *rt = start(f);
    rt_event ev = run_chat(rt, "a", 2, NULL, 0);
    assert_int_equal(ev.error.status, RT_ERR_UNAVAILABLE);
    assert_contains(ev.error.message, "more than --max-memory");
    assert_int_equal(atomic_load(&f->s.loads), 0);
    rt_destroy(rt);
    f->rt = NULL;
    /* Room for two models' weights, not for two weights and a context. */
    f->cfg.max_memory_gb = (2 * MODEL_BYTES + 3 * KV_BYTES - 1) / 1e9;
    f->cfg.max_models_per_type = 4;
    rt = start(f);
    assert_int_equal(run_chat(rt, "a", 2, NULL, 0).finish_reason, RT_FINISH_LENGTH);
    assert_int_equal(state_of(rt, "a"), RT_STATE_READY);
    assert_int_equal(run_chat(rt, "b", 2, NULL, 0).finish_reason, RT_FINISH_LENGTH);
    assert_int_equal(state_of(rt, "a"), RT_STATE_ON_DISK); /* evicted before b loaded */
}

static void test_memory_limit_refuses_when_busy(void **state) {
    fixture *f = *state;
    f->cfg.max_memory_gb = (MODEL_BYTES + KV_BYTES + 100) / 1e9;
    f->cfg.max_models_per_type = 4;
    f->cfg.load_wait_s = 0.3;
    f->s.step_ms = 50;
    rt_manager *rt = start(f);
    /* A long job holds model a... */
    rt_job *job = start_running_chat(rt, "a", 40);
    /* ... so b cannot load within the limit: a clear error, not a wait forever. */
    rt_event b = run_chat(rt, "b", 2, NULL, 0);
    assert_int_equal(b.finish_reason, RT_FINISH_ERROR);
    assert_int_equal(b.error.status, RT_ERR_UNAVAILABLE);
    assert_true(b.error.retry_after_s > 0);
    assert_contains(b.error.message, "not enough memory");
    assert_int_equal(state_of(rt, "a"), RT_STATE_READY);
    rt_job_release(job);
    /* A model bigger than the whole limit is refused outright. */
    test_make_file(f->root, "llm/huge.gguf", "OK", 3 * MODEL_BYTES);
    rt_rescan(rt, NULL);
    rt_event huge = run_chat(rt, "huge", 2, NULL, 0);
    assert_int_equal(huge.error.status, RT_ERR_UNAVAILABLE);
    assert_contains(huge.error.message, "more than --max-memory");
}

static void test_failed_load_is_reported_and_retried(void **state) {
    fixture *f = *state;
    test_make_file(f->root, "llm/broken.gguf", "BAD", 100);
    rt_manager *rt = start(f);
    rt_event ev = run_chat(rt, "broken", 2, NULL, 0);
    assert_int_equal(ev.finish_reason, RT_FINISH_ERROR);
    assert_contains(ev.error.message, "corrupt model");
    rt_model_info info;
    assert_int_equal(rt_get_model(rt, "broken", &info, NULL), RT_OK);
    assert_int_equal(info.state, RT_STATE_FAILED);
    assert_contains(info.error, "corrupt model");
    /* Fixed on disk: the next request tries again and succeeds. */
    test_make_file(f->root, "llm/broken.gguf", "OK", 100);
    assert_int_equal(run_chat(rt, "broken", 2, NULL, 0).finish_reason, RT_FINISH_LENGTH);
    assert_int_equal(state_of(rt, "broken"), RT_STATE_READY);
}

static void test_cancel_stops_job(void **state) {
    fixture *f = *state;
    f->s.step_ms = 5;
    rt_manager *rt = start(f);
    rt_job *job = start_running_chat(rt, "a", 100000);
    rt_job_cancel(job);
    assert_true(finish_cancelled(job) < 100000);
    /* The model is free again for the next job. */
    assert_int_equal(run_chat(rt, "a", 1, NULL, 0).finish_reason, RT_FINISH_LENGTH);
}

static void test_errors_at_submit(void **state) {
    fixture *f = *state;
    f->cfg.queue_capacity = 1;
    f->s.load_ms = 300;
    rt_manager *rt = start(f);
    rt_error err = {0};
    rt_event ev = run_chat(rt, "nope", 1, NULL, 0);
    assert_int_equal(ev.error.status, RT_ERR_MODEL_NOT_FOUND);
    ev = run_chat(rt, "../etc/passwd", 1, NULL, 0);
    assert_int_equal(ev.error.status, RT_ERR_BAD_REQUEST);
    ev = run_chat(rt, NULL, 1, NULL, 0); /* no default LLM configured */
    assert_int_equal(ev.error.status, RT_ERR_BAD_REQUEST);
    /* A full queue answers BUSY with a retry delay. */
    fluid_chat_message msg = {"user", "hi"};
    rt_chat_request req = {.model = "a", .messages = &msg, .n_messages = 1, .max_tokens = 1};
    rt_job *first = NULL, *second = NULL;
    assert_int_equal(rt_submit_chat(rt, &req, &first, NULL), RT_OK);
    assert_int_equal(rt_submit_chat(rt, &req, &second, &err), RT_ERR_BUSY);
    assert_null(second);
    assert_true(err.retry_after_s > 0);
    rt_job_release(first);
    rt_chat_request empty = {.model = "a"};
    assert_int_equal(rt_submit_chat(rt, &empty, &second, &err), RT_ERR_BAD_REQUEST);
}

static void test_health_during_load(void **state) {
    fixture *f = *state;
    f->s.load_ms = 400;
    f->cfg.llm_model = "a";
    f->cfg.warm_up = true;
    rt_manager *rt = start(f);
    /* While the warm-up loads, health answers and says so. */
    rt_health_info h;
    bool saw_loading = false;
    for (int i = 0; i < 200 && !saw_loading; i++) {
        rt_health(rt, &h);
        saw_loading = h.llm.state == RT_STATE_LOADING;
        if (!saw_loading) sleep_ms(2);
    }
    assert_true(saw_loading);
    assert_int_equal(h.status, RT_HEALTH_STARTING);
    assert_true(h.warming_up);
    assert_contains(h.warmup_task, "loading a");
    rt_model_info *models;
    size_t n;
    assert_int_equal(rt_list_models(rt, &models, &n, NULL), RT_OK);
    rt_free_models(models);
    assert_true(wait_state(rt, "a", RT_STATE_READY, 5));
    rt_health(rt, &h);
    assert_int_equal(h.status, RT_HEALTH_READY);
    assert_false(h.warming_up);
}

static void test_device_fallback(void **state) {
    fixture *f = *state;
    f->cfg.device = "npu";
    rt_manager *rt = start(f);
    rt_health_info h;
    rt_health(rt, &h);
    assert_string_equal(h.device_requested, "NPU");
    assert_string_equal(h.device_used, "CPU");
    assert_contains(h.device_note, "CPU");
    f->cfg.device = "TPU";
    rt_error err = {0};
    assert_null(rt_create_with_engine(&f->cfg, &f->engine, &err));
    assert_int_equal(err.status, RT_ERR_BAD_REQUEST);
}

static void test_offline_default_degrades(void **state) {
    fixture *f = *state;
    f->cfg.llm_model = "org/repo/model.gguf"; /* the Hub is unreachable (port 1) */
    f->cfg.warm_up = true;
    rt_manager *rt = start(f);
    assert_true(wait_state(rt, "org/repo/model", RT_STATE_FAILED, 10));
    rt_health_info h;
    rt_health(rt, &h);
    assert_int_equal(h.status, RT_HEALTH_DEGRADED);
    assert_int_equal(h.llm.state, RT_STATE_FAILED);
    assert_contains(h.llm.error, "network error");
    /* Local models still serve. */
    assert_int_equal(run_chat(rt, "a", 1, NULL, 0).finish_reason, RT_FINISH_LENGTH);
}

static void test_destroy_with_running_job(void **state) {
    fixture *f = *state;
    f->s.step_ms = 5;
    rt_manager *rt = start(f);
    rt_job *job = start_running_chat(rt, "a", 100000);
    rt_destroy(rt);
    f->rt = NULL;
    finish_cancelled(job);
}

/* ---- downloads through the manager ------------------------------------------------------- */

/* Starts a fake Hub serving rel (size bytes the fake engine accepts) at `rate` bytes per
 * second, and points the fixture's configuration at it. */
static void serve_slowly(fixture *f, fake_hub *hub, const char *rel, size_t size, int rate) {
    assert_true(fake_hub_start(hub));
    test_make_file(hub->root, rel, "OK", size);
    assert_true(fake_hub_fault(hub, rel, "slow", -1, rate));
    f->cfg.hf_endpoint = hub->url;
}

/* The manager goes first: its downloads still talk to the Hub. */
static void stop_with_hub(fixture *f, fake_hub *hub) {
    rt_destroy(f->rt);
    f->rt = NULL;
    fake_hub_stop(hub);
}

static rt_download_progress wait_download(rt_download *d) {
    rt_download_progress p;
    while (!rt_download_poll(d, 5000, &p)) {
    }
    return p;
}

static void test_downloads_are_shared_and_listed(void **state) {
    fixture *f = *state;
    enum { SIZE = 200000 };
    fake_hub hub;
    serve_slowly(f, &hub, "org/repo/m.gguf", SIZE, 400000);
    rt_manager *rt = start(f);
    rt_download *d1 = NULL, *d2 = NULL;
    assert_int_equal(rt_download_start(rt, "org/repo/m.gguf", &d1, NULL), RT_OK);
    assert_int_equal(rt_download_start(rt, "org/repo/m", &d2, NULL), RT_OK);
    /* While it runs, it is listed as downloading. */
    assert_int_equal(state_of(rt, "org/repo/m"), RT_STATE_DOWNLOADING);
    /* A chat for it waits for the download and the load, then runs. */
    rt_event ev = run_chat(rt, "org/repo/m.gguf", 2, NULL, 0);
    assert_int_equal(ev.finish_reason, RT_FINISH_LENGTH);
    rt_download_progress p = wait_download(d1);
    assert_int_equal(p.state, RT_DOWNLOAD_DONE);
    assert_int_equal(p.bytes, SIZE);
    assert_int_equal(wait_download(d2).state, RT_DOWNLOAD_DONE);
    rt_download_release(d1);
    rt_download_release(d2);
    assert_int_equal(fake_hub_count(&hub, "resolve_gets", "org/repo/m.gguf"), 1);
    rt_model_info info;
    assert_int_equal(rt_get_model(rt, "org/repo/m", &info, NULL), RT_OK);
    assert_int_equal(info.size_bytes, SIZE);
    /* A model already here is done at once; a missing one reports the Hub's 404. */
    assert_int_equal(rt_download_start(rt, "org/repo/m.gguf", &d1, NULL), RT_OK);
    assert_true(rt_download_poll(d1, 0, &p));
    assert_int_equal(p.state, RT_DOWNLOAD_DONE);
    rt_download_release(d1);
    ev = run_chat(rt, "org/repo/absent.gguf", 2, NULL, 0);
    assert_int_equal(ev.error.status, RT_ERR_MODEL_NOT_FOUND);
    assert_contains(ev.error.message, "404");
    assert_int_equal(state_of(rt, "org/repo/absent"), RT_STATE_FAILED);
    stop_with_hub(f, &hub);
}

/* Workers waiting for a long download sleep: the process uses little CPU meanwhile (a worker
 * spinning on an expired deadline would use a whole core). */
static void test_waiting_does_not_spin(void **state) {
    fixture *f = *state;
    fake_hub hub;
    serve_slowly(f, &hub, "org/repo/slow.gguf", 300000, 300000);
    f->cfg.llm_model = "org/repo/slow.gguf";
    f->cfg.warm_up = true;
    f->cfg.load_wait_s = 0.05; /* expires long before the download ends */
    rt_manager *rt = start(f);
    /* A queued job that gives up early, too. */
    rt_event ev = run_chat(rt, "org/repo/slow", 1, NULL, 0);
    assert_int_equal(ev.error.status, RT_ERR_LOADING);
    assert_true(ev.error.retry_after_s > 0);
    assert_non_null(strstr(ev.error.message, "downloading"));
    clock_t cpu0 = clock();
    assert_true(wait_state(rt, "org/repo/slow", RT_STATE_READY, 20));
    double cpu_s = (double)(clock() - cpu0) / CLOCKS_PER_SEC;
    if (cpu_s > 0.5) fail_msg("%.2f s of CPU while waiting for a download", cpu_s);
    stop_with_hub(f, &hub);
}

int main(void) {
#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_listing_and_rescan),
        TEST(test_unknown_name_rescans),
        TEST(test_lazy_load_and_job),
        TEST(test_single_flight_load),
        TEST(test_idle_unload_and_reload),
        TEST(test_busy_model_is_not_unloaded),
        TEST(test_side_by_side_llm_and_whisper),
        TEST(test_switching_llms_under_concurrent_jobs),
        TEST(test_memory_limit_evicts_idle_models),
        TEST(test_memory_limit_counts_the_context),
        TEST(test_memory_limit_refuses_when_busy),
        TEST(test_failed_load_is_reported_and_retried),
        TEST(test_cancel_stops_job),
        TEST(test_errors_at_submit),
        TEST(test_health_during_load),
        TEST(test_device_fallback),
        TEST(test_offline_default_degrades),
        TEST(test_destroy_with_running_job),
        TEST(test_downloads_are_shared_and_listed),
        TEST(test_waiting_does_not_spin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* fluid-server: reads the settings, starts the model runtime and the HTTP server, and serves
 * until SIGINT or SIGTERM; then drains: new clients are refused, requests in flight get
 * --shutdown-timeout seconds to finish, the rest are cancelled (streams end with an error
 * event), everything is freed and the process exits 0. A second signal exits at once. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "fluid/fluid.h"
#include "fluid/whisper.h"
#include "runtime/runtime.h"
#include "server/config.h"
#include "server/http.h"
#include "util/log.h"

/* "" = the runtime's built-in default (NULL), "none" = no default (""). */
static const char *model_setting(const char *value) {
    if (value[0] == '\0') return NULL;
    return strcasecmp(value, "none") == 0 ? "" : value;
}

static void runtime_config(const fs_config *cfg, rt_config *rc) {
    rt_config_defaults(rc);
    rc->model_path = cfg->model_path;
    rc->cache_dir = cfg->cache_dir[0] ? cfg->cache_dir : NULL;
    rc->llm_model = model_setting(cfg->llm_model);
    rc->whisper_model = model_setting(cfg->whisper_model);
    rc->device = cfg->device;
    rc->warm_up = !cfg->no_warm_up;
    rc->auto_download = !cfg->no_download;
    rc->idle_timeout_s = cfg->idle_timeout_min * 60.0;
    rc->idle_check_interval_s = cfg->idle_check_interval_s;
    rc->max_memory_gb = cfg->max_memory_gb;
    rc->max_models_per_type = cfg->max_models_per_type;
    rc->n_threads = cfg->threads;
    rc->n_ctx = cfg->ctx_size;
    rc->queue_capacity = cfg->queue_size;
}

typedef struct drain {
    http_server *http;
    rt_manager *rt;
    atomic_bool done;
} drain;

static void *drain_thread(void *arg) {
    drain *d = arg;
    http_stop(d->http); /* waits for the requests in flight */
    rt_destroy(d->rt);
    atomic_store(&d->done, true);
    return NULL;
}

/* How long cancelled requests get to end their responses before the connections are cut. */
#define CANCEL_GRACE_S 5.0

static double monotonic_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Sleeps up to 100 ms; a signal arriving meanwhile ends the process at once. */
static void nap_unless_signalled(const sigset_t *signals) {
    const struct timespec tick = {0, 100 * 1000 * 1000};
    if (sigtimedwait(signals, NULL, &tick) > 0) {
        fl_log(FL_LOG_WARN, "second signal: exiting without waiting");
        _exit(130);
    }
}

/* Waits up to seconds for the requests in flight to end; returns whether they did. */
static bool wait_for_requests(const sigset_t *signals, http_server *http, double seconds) {
    double deadline = monotonic_s() + seconds;
    while (http_active_requests(http) > 0) {
        if (monotonic_s() >= deadline) return false;
        nap_unless_signalled(signals);
    }
    return true;
}

/* Blocks until SIGINT/SIGTERM, drains, and returns the exit code. */
static int serve_until_signal(const sigset_t *signals, http_server *http, rt_manager *rt,
                              int grace_s) {
    int sig = 0;
    while (sigwait(signals, &sig) != 0) {
    }
    fl_log(FL_LOG_INFO,
           "received %s: finishing %d request(s) in flight within %d s (signal again to quit now)",
           sig == SIGINT ? "SIGINT" : "SIGTERM", http_active_requests(http), grace_s);
    http_begin_drain(http);
    if (!wait_for_requests(signals, http, grace_s)) {
        fl_log(FL_LOG_WARN, "grace period over: cancelling %d request(s)",
               http_active_requests(http));
        rt_cancel_jobs(rt);
        wait_for_requests(signals, http, CANCEL_GRACE_S);
    }
    drain d = {.http = http, .rt = rt};
    atomic_init(&d.done, false);
    pthread_t thread;
    if (pthread_create(&thread, NULL, drain_thread, &d) != 0) {
        drain_thread(&d);
        return 0;
    }
    while (!atomic_load(&d.done)) nap_unless_signalled(signals);
    pthread_join(thread, NULL);
    fl_log(FL_LOG_INFO, "stopped");
    return 0;
}

int main(int argc, char **argv) {
    fs_config cfg;
    fs_config_defaults(&cfg);
    switch (
        fs_config_parse(&cfg, argc, argv, (const char *(*)(const char *))getenv, stdout, stderr)) {
    case FS_CONFIG_EXIT:
        return 0;
    case FS_CONFIG_ERROR:
        return 2;
    case FS_CONFIG_RUN:
        break;
    }
    fl_log_level level = FL_LOG_INFO;
    fl_log_parse_level(cfg.log_level, &level);
    fl_log_set_level(level);
    fluid_audio_log_to_fluid();

    /* Signals are taken by sigwait in main only: block them before any thread starts. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A write past a file-size limit must fail with EFBIG (a download reports it), not kill. */
    signal(SIGXFSZ, SIG_IGN);

    rt_config rc;
    runtime_config(&cfg, &rc);
    rt_error rerr = {0};
    rt_manager *rt = rt_create(&rc, &rerr);
    if (rt == NULL) {
        fprintf(stderr, "fluid-server: %s\n", rerr.message);
        return 2;
    }
    if (rt_start(rt, &rerr) != RT_OK) {
        fprintf(stderr, "fluid-server: cannot start the model runtime: %s\n", rerr.message);
        rt_destroy(rt);
        return 1;
    }
    api_ctx ctx = {.rt = rt,
                   .version = fluid_version(),
                   .started_at = (int64_t)time(NULL),
                   .auth_required = cfg.api_key[0] != '\0',
                   .keepalive_ms = cfg.keepalive_s * 1000,
                   .limits = {.max_tokens = cfg.max_tokens_limit,
                              .max_messages = cfg.max_messages,
                              .max_input_bytes = (size_t)cfg.max_input_kb * 1024,
                              .max_audio_s = cfg.max_audio_seconds}};
    http_options opts = {.host = cfg.host,
                         .port = cfg.port,
                         .api_key = cfg.api_key,
                         .cors_origin = cfg.cors_origin,
                         .max_body_bytes = (int64_t)cfg.max_body_mb * 1024 * 1024,
                         .max_connections = cfg.max_connections,
                         .connection_timeout_s = cfg.client_timeout_s};
    fluid_error herr = {0};
    http_server *http = http_start(&opts, &ctx, &herr);
    if (http == NULL) {
        fprintf(stderr, "fluid-server: %s\n", herr.message);
        rt_destroy(rt);
        return 1;
    }
    bool v6 = strchr(cfg.host, ':') != NULL;
    printf("fluid-server %s listening on http://%s%s%s:%d\n", fluid_version(), v6 ? "[" : "",
           cfg.host, v6 ? "]" : "", http_port(http));
    fflush(stdout);
    fl_log(FL_LOG_INFO, "models in %s; API key %s; CORS origin %s", cfg.model_path,
           cfg.api_key[0] ? "required" : "not required", cfg.cors_origin);
    return serve_until_signal(&signals, http, rt, cfg.shutdown_timeout_s);
}

/* Placeholders so the server links while the runtime is written; removed piece by piece. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

static rt_status not_yet(rt_error *err, const char *what) {
    if (err != NULL) {
        err->status = RT_ERR_INTERNAL;
        err->retry_after_s = 0;
        snprintf(err->message, sizeof err->message, "%s: not implemented yet", what);
    }
    return RT_ERR_INTERNAL;
}

const char *rt_status_name(rt_status status) {
    static const char *const names[] = {"ok",      "bad_request", "model_not_found", "busy",
                                        "loading", "unavailable", "internal"};
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

struct rt_manager {
    int unused;
};

rt_manager *rt_create(const rt_config *cfg, rt_error *err) {
    (void)cfg;
    (void)err;
    return calloc(1, sizeof(rt_manager));
}
rt_status rt_start(rt_manager *rt, rt_error *err) {
    (void)rt;
    (void)err;
    return RT_OK;
}
void rt_destroy(rt_manager *rt) {
    free(rt);
}
rt_status rt_rescan(rt_manager *rt, rt_error *err) {
    (void)rt;
    (void)err;
    return RT_OK;
}
const char *rt_model_type_name(rt_model_type type) {
    return type == RT_MODEL_WHISPER ? "whisper" : "llm";
}
const char *rt_model_state_name(rt_model_state state) {
    static const char *const names[] = {"absent", "downloading", "on_disk", "loading",
                                        "ready",  "unloading",   "failed"};
    return (unsigned)state < sizeof names / sizeof names[0] ? names[state] : "failed";
}
rt_status rt_list_models(rt_manager *rt, rt_model_info **out, size_t *n, rt_error *err) {
    (void)rt;
    (void)err;
    *out = NULL;
    *n = 0;
    return RT_OK;
}
void rt_free_models(rt_model_info *models) {
    free(models);
}
rt_status rt_get_model(rt_manager *rt, const char *name, rt_model_info *out, rt_error *err) {
    (void)rt;
    (void)name;
    (void)out;
    return not_yet(err, "rt_get_model");
}
const char *rt_overall_name(rt_overall overall) {
    return overall == RT_HEALTH_READY      ? "ready"
           : overall == RT_HEALTH_DEGRADED ? "degraded"
                                           : "starting";
}
void rt_health(rt_manager *rt, rt_health_info *out) {
    (void)rt;
    memset(out, 0, sizeof *out);
    out->status = RT_HEALTH_READY;
    strcpy(out->device_requested, "AUTO");
    strcpy(out->device_used, "CPU");
}
rt_status rt_load_model(rt_manager *rt, const char *name, double wait_s, rt_error *err) {
    (void)rt;
    (void)name;
    (void)wait_s;
    return not_yet(err, "rt_load_model");
}
rt_status rt_unload_model(rt_manager *rt, const char *name, rt_error *err) {
    (void)rt;
    (void)name;
    return not_yet(err, "rt_unload_model");
}
rt_status rt_submit_chat(rt_manager *rt, const rt_chat_request *req, rt_job **out, rt_error *err) {
    (void)rt;
    (void)req;
    *out = NULL;
    return not_yet(err, "rt_submit_chat");
}
rt_status rt_submit_transcription(rt_manager *rt, const rt_transcription_request *req, rt_job **out,
                                  rt_error *err) {
    (void)rt;
    (void)req;
    *out = NULL;
    return not_yet(err, "rt_submit_transcription");
}
const char *rt_finish_reason_name(rt_finish_reason reason) {
    static const char *const names[] = {"stop", "length", "cancelled", "error"};
    return (unsigned)reason < 4 ? names[reason] : "error";
}
bool rt_job_next(rt_job *job, int timeout_ms, rt_event *ev) {
    (void)job;
    (void)timeout_ms;
    memset(ev, 0, sizeof *ev);
    return false;
}
void rt_job_cancel(rt_job *job) {
    (void)job;
}
void rt_job_release(rt_job *job) {
    (void)job;
}
const char *rt_download_state_name(rt_download_state state) {
    static const char *const names[] = {"queued", "running", "verifying", "done", "failed"};
    return (unsigned)state < 5 ? names[state] : "failed";
}
rt_status rt_download_start(rt_manager *rt, const char *name, rt_download **out, rt_error *err) {
    (void)rt;
    (void)name;
    *out = NULL;
    return not_yet(err, "rt_download_start");
}
bool rt_download_poll(rt_download *d, int timeout_ms, rt_download_progress *p) {
    (void)d;
    (void)timeout_ms;
    memset(p, 0, sizeof *p);
    return true;
}
void rt_download_release(rt_download *d) {
    (void)d;
}

/* GET / and GET /health */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/json.h"

void api_root(const api_ctx *ctx, const api_request *req, api_response *res) {
    (void)req;
    json_t *doc =
        json_pack("{s:s, s:s, s:s, s:b, s:{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}}",
                  "name", "Fluid Server", "message", "Fluid Server - OpenAI-compatible API",
                  "version", ctx->version, "auth_required", ctx->auth_required, "endpoints",
                  "health", "/health", "models", "/v1/models", "model", "/v1/models/{model}",
                  "download", "/v1/models/download", "chat", "/v1/chat/completions", "completions",
                  "/v1/completions", "transcription", "/v1/audio/transcriptions", "translation",
                  "/v1/audio/translations", "openapi", "/openapi.json", "docs", "/docs");
    api_set_json(res, 200, doc);
}

/* Resident memory of this process, from /proc (0 when unknown). */
static uint64_t process_rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? resident * (uint64_t)page : 0;
}

static json_t *runtime_json(const rt_runtime_health *r) {
    json_t *doc =
        json_pack("{s:b, s:s?, s:s, s:s?, s:i}", "configured", r->configured, "model",
                  r->model[0] ? r->model : NULL, "state", rt_model_state_name(r->state), "error",
                  r->error[0] ? r->error : NULL, "loaded_count", r->loaded_count);
    if (doc != NULL && r->state == RT_STATE_DOWNLOADING)
        json_object_set_new(doc, "download",
                            json_pack("{s:I, s:I, s:f}", "bytes", (json_int_t)r->download_bytes,
                                      "total", (json_int_t)r->download_total, "rate",
                                      r->download_rate));
    return doc;
}

void api_health(const api_ctx *ctx, const api_request *req, api_response *res) {
    (void)req;
    rt_health_info h;
    rt_health(ctx->rt, &h);
    json_t *doc = json_pack(
        "{s:s, s:s, s:f, s:b, s:s?, s:{s:o, s:o}, s:{s:I, s:I, s:I}, s:{s:s, s:s, s:s?}, s:i, "
        "s:{s:i, s:i}}",
        "status", rt_overall_name(h.status), "version", ctx->version, "uptime_s", h.uptime_s,
        "warming_up", h.warming_up, "warmup_task", h.warmup_task[0] ? h.warmup_task : NULL,
        "runtimes", "llm", runtime_json(&h.llm), "whisper", runtime_json(&h.whisper), "memory",
        "models_bytes", (json_int_t)h.memory_bytes, "limit_bytes", (json_int_t)h.memory_limit_bytes,
        "process_rss_bytes", (json_int_t)process_rss_bytes(), "device", "requested",
        h.device_requested, "used", h.device_used, "note", h.device_note[0] ? h.device_note : NULL,
        "threads", h.n_threads, "jobs", "running", h.jobs_running, "queued", h.jobs_queued);
    api_set_json(res, 200, doc);
}

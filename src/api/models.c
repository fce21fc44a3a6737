/* GET /v1/models, GET /v1/models/{id}, POST /v1/models/download, POST /v1/embeddings */
#include <stdlib.h>
#include <string.h>

#include "api/gen.h"
#include "api/json.h"
#include "api/sse.h"

/* "owner" of a Hub id "owner/repo/file", else "local". */
static json_t *owner_json(const char *id) {
    const char *slash = strchr(id, '/');
    const char *second = slash ? strchr(slash + 1, '/') : NULL;
    if (second == NULL) return json_string("local");
    return json_stringn(id, (size_t)(slash - id));
}

static json_t *model_json(const rt_model_info *m) {
    json_t *doc =
        json_pack("{s:s, s:s, s:I, s:o, s:s, s:s, s:I, s:b}", "id", m->id, "object", "model",
                  "created", (json_int_t)m->created, "owned_by", owner_json(m->id), "type",
                  rt_model_type_name(m->type), "state", rt_model_state_name(m->state), "size_bytes",
                  (json_int_t)m->size_bytes, "default", m->is_default);
    if (doc == NULL) return NULL;
    if (m->error[0] != '\0') json_object_set_new(doc, "error", json_string(m->error));
    if (m->state == RT_STATE_DOWNLOADING)
        json_object_set_new(doc, "download",
                            json_pack("{s:I, s:I, s:f}", "bytes", (json_int_t)m->download_bytes,
                                      "total", (json_int_t)m->download_total, "rate",
                                      m->download_rate));
    if (m->state == RT_STATE_READY)
        json_object_set_new(doc, "memory_bytes", json_integer((json_int_t)m->memory_bytes));
    return doc;
}

void api_models_list(const api_ctx *ctx, const api_request *req, api_response *res) {
    (void)req;
    rt_model_info *models = NULL;
    size_t n = 0;
    rt_error err = {0};
    if (rt_list_models(ctx->rt, &models, &n, &err) != RT_OK) {
        api_rt_error(res, &err);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; data != NULL && i < n; i++)
        json_array_append_new(data, model_json(&models[i]));
    rt_free_models(models);
    api_set_json(res, 200, json_pack("{s:s, s:o}", "object", "list", "data", data));
}

void api_models_get(const api_ctx *ctx, const api_request *req, api_response *res) {
    const char *id = req->route_param;
    rt_model_info m;
    rt_error err = {0};
    rt_status st = rt_get_model(ctx->rt, id, &m, &err);
    if (st == RT_ERR_BAD_REQUEST) {
        /* A name that cannot be a model (a path that leaves the model folder, ...) names none. */
        api_error(res, 404, "model", "model_not_found", "The model '%.200s' does not exist: %s", id,
                  err.message);
        return;
    }
    if (st != RT_OK) {
        api_rt_error(res, &err);
        return;
    }
    api_set_json(res, 200, model_json(&m));
}

/* ---- downloads ---- */

static json_t *progress_json(const rt_download_progress *p) {
    json_t *doc = json_pack("{s:s, s:s, s:s, s:I, s:I, s:f, s:i}", "object", "model.download",
                            "model", p->model, "state", rt_download_state_name(p->state), "bytes",
                            (json_int_t)p->bytes, "total", (json_int_t)p->total, "rate", p->rate,
                            "attempt", p->attempt);
    if (doc != NULL && p->eta_s >= 0) json_object_set_new(doc, "eta_s", json_real(p->eta_s));
    if (doc != NULL && p->state == RT_DOWNLOAD_FAILED)
        json_object_set_new(doc, "error", json_string(p->error.message));
    return doc;
}

typedef struct download_stream {
    sse_stream sse;
    rt_download *dl;
} download_stream;

static sse_pump download_pump(sse_stream *s, int timeout_ms) {
    download_stream *ds = (download_stream *)s;
    rt_download_progress p;
    bool ended = rt_download_poll(ds->dl, timeout_ms, &p);
    if (!sse_data(&s->out, progress_json(&p))) return SSE_PUMP_FAIL;
    if (!ended) return SSE_PUMP_DATA;
    return fl_buf_puts(&s->out, "data: [DONE]\n\n") ? SSE_PUMP_END : SSE_PUMP_FAIL;
}

static void download_finish(sse_stream *s, bool completed) {
    (void)completed; /* the download goes on without the client: the model needs it */
    rt_download_release(((download_stream *)s)->dl);
}

void api_models_download(const api_ctx *ctx, const api_request *req, api_response *res) {
    json_t *body = api_parse_object(req, res);
    if (body == NULL) return;
    const char *name = NULL, *repo_id = NULL;
    bool stream = false;
    if (!api_get_string(body, "model", RT_ID_MAX - 1, &name, NULL, res) ||
        !api_get_string(body, "repo_id", RT_ID_MAX - 1, &repo_id, NULL, res) ||
        !api_get_bool(body, "stream", &stream, NULL, res))
        goto out;
    if (name == NULL) name = repo_id;
    if (name == NULL) {
        api_error(res, 400, "model", "missing_required_parameter",
                  "'model' must name a model to download, e.g. 'owner/repo/file.gguf' or "
                  "'whisper-base'.");
        goto out;
    }
    snprintf(res->model, sizeof res->model, "%s", name);
    rt_download *dl = NULL;
    rt_error err = {0};
    if (rt_download_start(ctx->rt, name, &dl, &err) != RT_OK) {
        api_rt_error(res, &err);
        goto out;
    }
    if (stream) {
        download_stream *ds = calloc(1, sizeof *ds);
        if (ds == NULL) {
            rt_download_release(dl);
            api_error(res, 500, NULL, "out_of_memory", "out of memory");
            goto out;
        }
        sse_init(&ds->sse, ctx, req, download_pump, download_finish);
        ds->dl = dl;
        sse_respond(res, &ds->sse);
        goto out;
    }
    rt_download_progress p;
    bool ended = rt_download_poll(dl, 0, &p);
    rt_download_release(dl);
    if (ended && p.state == RT_DOWNLOAD_FAILED)
        api_rt_error(res, &p.error);
    else
        api_set_json(res, ended ? 200 : 202, progress_json(&p));
out:
    json_decref(body);
}

void api_embeddings(const api_ctx *ctx, const api_request *req, api_response *res) {
    (void)ctx;
    (void)req;
    api_error(res, 404, "model", "embeddings_not_available",
              "Embeddings are not available in this build of Fluid Server: it serves chat, "
              "completions and audio only.");
}

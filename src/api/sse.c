#include "api/sse.h"

#include <stdlib.h>
#include <string.h>

/* How long one wait for the source lasts before the client is checked again. */
#define SSE_SLICE_MS 100

static ssize_t sse_read(api_stream *base, char *buf, size_t max) {
    sse_stream *s = (sse_stream *)base;
    int idle_ms = 0;
    while (s->out.len == 0) {
        if (s->ended) return 0;
        if (s->client_gone != NULL && s->client_gone(s->conn)) return -1;
        switch (s->pump(s, SSE_SLICE_MS)) {
        case SSE_PUMP_DATA:
            idle_ms = 0;
            break;
        case SSE_PUMP_END:
            s->ended = true;
            break;
        case SSE_PUMP_FAIL:
            return -1;
        case SSE_PUMP_IDLE:
            idle_ms += SSE_SLICE_MS;
            if (idle_ms >= s->keepalive_ms) {
                if (!fl_buf_puts(&s->out, ": keep-alive\n\n")) return -1;
                idle_ms = 0;
            }
            break;
        }
    }
    size_t n = s->out.len < max ? s->out.len : max;
    memcpy(buf, s->out.data, n);
    fl_buf_consume(&s->out, n);
    return (ssize_t)n;
}

static void sse_close(api_stream *base, bool completed) {
    sse_stream *s = (sse_stream *)base;
    s->finish(s, completed && s->ended);
    fl_buf_free(&s->out);
    free(s);
}

void sse_init(sse_stream *s, const api_ctx *ctx, const api_request *req,
              sse_pump (*pump)(sse_stream *, int), void (*finish)(sse_stream *, bool)) {
    s->base.read = sse_read;
    s->base.close = sse_close;
    s->keepalive_ms = ctx->keepalive_ms > 0 ? ctx->keepalive_ms : 10000;
    s->client_gone = req->client_gone;
    s->conn = req->conn;
    s->pump = pump;
    s->finish = finish;
}

static bool append_json(fl_buf *out, json_t *doc) {
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) return false;
    bool ok = fl_buf_puts(out, text) && fl_buf_puts(out, "\n\n");
    free(text);
    return ok;
}

bool sse_data(fl_buf *out, json_t *doc) {
    if (!fl_buf_puts(out, "data: ")) {
        json_decref(doc);
        return false;
    }
    return append_json(out, doc);
}

bool sse_event(fl_buf *out, const char *name, json_t *doc) {
    if (!fl_buf_printf(out, "event: %s\ndata: ", name)) {
        json_decref(doc);
        return false;
    }
    return append_json(out, doc);
}

void sse_respond(api_response *res, sse_stream *s) {
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
    res->status = 200;
    res->content_type = "text/event-stream; charset=utf-8";
    res->stream = &s->base;
}

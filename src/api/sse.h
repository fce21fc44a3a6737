/* Server-Sent Events fed by a runtime job or download: the HTTP layer reads bytes, the stream
 * pulls events from its source, formats them, and adds keep-alive comments while it waits. */
#ifndef FLUID_API_SSE_H
#define FLUID_API_SSE_H

#include <jansson.h>

#include "api/api.h"
#include "util/buf.h"

typedef enum sse_pump {
    SSE_PUMP_DATA, /* something was formatted into out (or the event needed no output) */
    SSE_PUMP_IDLE, /* nothing arrived within the wait */
    SSE_PUMP_END,  /* the source ended; out holds the last bytes */
    SSE_PUMP_FAIL, /* out of memory: abort the response */
} sse_pump;

typedef struct sse_stream sse_stream;
struct sse_stream {
    api_stream base; /* first: the HTTP layer sees an api_stream */
    fl_buf out;      /* formatted bytes not yet read */
    bool ended;
    int keepalive_ms;
    bool (*client_gone)(void *conn);
    void *conn;
    /* Waits up to timeout_ms for the source's next event and formats it into out. */
    sse_pump (*pump)(sse_stream *s, int timeout_ms);
    /* Stops the source when the client left early (completed false), then frees everything
     * but the sse_stream itself. */
    void (*finish)(sse_stream *s, bool completed);
};

/* Sets up the generic parts of s (which the caller allocated, usually inside a larger struct). */
void sse_init(sse_stream *s, const api_ctx *ctx, const api_request *req,
              sse_pump (*pump)(sse_stream *, int), void (*finish)(sse_stream *, bool));

/* Appends "data: <json>\n\n" (steals doc). */
bool sse_data(fl_buf *out, json_t *doc);
/* Appends "event: <name>\ndata: <json>\n\n" (steals doc). */
bool sse_event(fl_buf *out, const char *name, json_t *doc);

/* Puts the stream into res as a text/event-stream body. */
void sse_respond(api_response *res, sse_stream *s);

#endif

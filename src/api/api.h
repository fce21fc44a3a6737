/* The API layer: one handler per route. A handler reads a parsed HTTP request (api_request),
 * validates it, calls the runtime and fills an api_response with the OpenAI-shaped answer.
 * It knows nothing of sockets, so tests drive it directly. */
#ifndef FLUID_API_API_H
#define FLUID_API_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/buf.h"

#include "runtime/runtime.h"

/* What one request may ask for (fluid-server's limit flags). 0 = only the built-in caps. */
typedef struct api_limits {
    int max_tokens;         /* largest max_tokens, and the value when a request omits it */
    int max_messages;       /* messages in one chat request */
    size_t max_input_bytes; /* text of all messages, or the prompt, in bytes */
    double max_audio_s;     /* seconds of audio in one transcription or translation */
} api_limits;

/* What every handler may need besides the request. */
typedef struct api_ctx {
    rt_manager *rt;      /* the model manager */
    const char *version; /* e.g. "0.1.0" */
    int64_t started_at;  /* unix seconds */
    bool auth_required;  /* for the route list */
    int keepalive_ms;    /* an SSE comment after this long without events */
    api_limits limits;
} api_ctx;

/* One field of a multipart/form-data body. Names and values point into the request body. */
typedef struct api_form_part {
    char name[64];
    char filename[256];
    bool has_filename;
    char content_type[128];
    const char *data;
    size_t len;
} api_form_part;

#define API_FORM_MAX_PARTS 64

typedef struct api_form {
    api_form_part parts[API_FORM_MAX_PARTS];
    size_t n;
} api_form;

/* The first part called name, or NULL. */
const api_form_part *api_form_get(const api_form *form, const char *name);

typedef struct api_request {
    const char *method;
    const char *path;
    const char *route_param;  /* the rest of the path after a prefix route, e.g. a model id */
    const char *content_type; /* the media type only, lower-case, without parameters; may be "" */
    const char *body;         /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    const api_form *form; /* set for multipart/form-data bodies */
    const char *request_id;
    /* Polled while waiting for work: true when the client has gone away. May be NULL. */
    bool (*client_gone)(void *conn);
    void *conn;
} api_request;

/* A streamed body: the HTTP layer calls read until it returns 0 (end) or -1 (abort), then
 * close (always, once). read may block for a bounded time (it waits on the job's events). */
typedef struct api_stream api_stream;
struct api_stream {
    ssize_t (*read)(api_stream *s, char *buf, size_t max);
    /* completed: the whole stream reached the client; otherwise the job must be cancelled. */
    void (*close)(api_stream *s, bool completed);
};

typedef struct api_response {
    int status;
    const char *content_type; /* static string */
    char *body;               /* malloc'd; owned by the response */
    size_t body_len;
    int retry_after;    /* seconds; 0 = no Retry-After header */
    const char *allow;  /* static string for 405s */
    api_stream *stream; /* when set, the body is streamed (body is ignored) */
    /* For the access log: the model the request named, if any. */
    char model[256];
} api_response;

void api_response_free(api_response *res);

/* Sets res to the OpenAI error object {"error":{"message","type","param","code"}}.
 * type is derived from status when NULL. param and code may be NULL. */
void api_error(api_response *res, int status, const char *param, const char *code, const char *fmt,
               ...) __attribute__((format(printf, 5, 6)));
/* The error type OpenAI uses for a status, e.g. 400 -> "invalid_request_error". */
const char *api_error_type(int status);

/* Sets res to a body of the given type (copied). */
void api_set_body(api_response *res, int status, const char *content_type, const char *bytes,
                  size_t len);
/* Moves a finished buffer into res as its body. */
void api_take_buf(api_response *res, int status, const char *content_type, fl_buf *b);

/* ---- handlers (one family per file) ---- */
typedef void (*api_handler)(const api_ctx *ctx, const api_request *req, api_response *res);

void api_root(const api_ctx *ctx, const api_request *req, api_response *res);
void api_health(const api_ctx *ctx, const api_request *req, api_response *res);
void api_models_list(const api_ctx *ctx, const api_request *req, api_response *res);
void api_models_get(const api_ctx *ctx, const api_request *req, api_response *res);
void api_models_download(const api_ctx *ctx, const api_request *req, api_response *res);
void api_chat_completions(const api_ctx *ctx, const api_request *req, api_response *res);
void api_completions(const api_ctx *ctx, const api_request *req, api_response *res);
void api_audio_transcriptions(const api_ctx *ctx, const api_request *req, api_response *res);
void api_audio_translations(const api_ctx *ctx, const api_request *req, api_response *res);
void api_embeddings(const api_ctx *ctx, const api_request *req, api_response *res);
void api_openapi_json(const api_ctx *ctx, const api_request *req, api_response *res);
void api_docs(const api_ctx *ctx, const api_request *req, api_response *res);

#endif

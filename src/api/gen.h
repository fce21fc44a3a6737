/* What chat and legacy completions share: sampling fields, runtime errors, waiting on a job. */
#ifndef FLUID_API_GEN_H
#define FLUID_API_GEN_H

#include <jansson.h>

#include "api/api.h"
#include "runtime/runtime.h"

#define API_MAX_TOKENS_LIMIT 131072 /* larger max_tokens are rejected outright */
#define API_MAX_LOGIT_BIAS 1024     /* entries in logit_bias */
#define API_MAX_STOP_LEN 256        /* bytes of one stop string */

/* Sampling fields of a request and what they become. */
typedef struct api_gen_params {
    rt_chat_request rq;                        /* sampling, max_tokens, stop, logprobs */
    fluid_logit_bias bias[API_MAX_LOGIT_BIAS]; /* rq.sampling.logit_bias points here */
    bool stream;
    bool include_usage;
} api_gen_params;

/* Reads model, max_tokens / max_completion_tokens (at most lim->max_tokens, which is also the
 * value when neither is given), temperature, top_p, top_k, min_p, repeat_penalty,
 * presence/frequency_penalty, seed, stop, logit_bias, n, stream, stream_options, user.
 * Strings point into body. False with res filled on a bad field. */
bool api_parse_gen_params(json_t *body, const api_limits *lim, api_gen_params *p,
                          api_response *res);

/* False with a 400 naming param when bytes of request text pass lim->max_input_bytes. */
bool api_check_input_size(size_t bytes, const char *param, const api_limits *lim,
                          api_response *res);

/* Maps a runtime error to its HTTP status and OpenAI error (with Retry-After when apt). */
void api_rt_error(api_response *res, const rt_error *err);

/* Writes prefix + 24 random hex digits, e.g. "chatcmpl-3f2a...". */
void api_random_id(const char *prefix, char *out, size_t size);

/* Waits for the job's next event for up to timeout_ms (< 0 = until it comes), checking the
 * client between short waits. Returns false (job cancelled) when the client went away. */
bool api_job_next(rt_job *job, const api_request *req, int timeout_ms, rt_event *ev);

/* The "logprobs" content entries of a chat choice for n entries. */
json_t *api_chat_logprobs_content(const rt_token_logprob *lp, size_t n);
/* Byte values of s as a JSON array (OpenAI's "bytes"). */
json_t *api_bytes_array(const char *s, size_t n);

#endif

/* ---- running a generation job: shared by chat and completions ---- */

typedef struct gen_job gen_job;

/* The response shapes of one endpoint family. */
typedef struct gen_shape {
    const char *id_prefix; /* "chatcmpl-", "cmpl-" */
    /* Streaming: the first bytes (chat: the role chunk), one TEXT event, the end. */
    bool (*stream_open)(gen_job *g, fl_buf *out);
    bool (*stream_text)(gen_job *g, const rt_event *ev, fl_buf *out);
    bool (*stream_finish)(gen_job *g, const rt_event *ev, fl_buf *out);
    /* Non-streaming: logprobs of one TEXT event added to g->logprobs, then the whole body. */
    void (*collect_logprobs)(gen_job *g, const rt_event *ev);
    json_t *(*whole)(gen_job *g, const char *text, size_t len, const rt_event *fin);
} gen_shape;

struct gen_job {
    const gen_shape *shape;
    const api_gen_params *params; /* valid only inside gen_run (not in the stream) */
    rt_job *job;
    char id[64];
    int64_t created;
    char model[RT_ID_MAX];
    bool include_usage;
    bool logprobs;
    int top_logprobs;
    json_t *logprobs_acc; /* non-streaming: collected logprobs (shape-specific) */
    size_t text_offset;   /* legacy completions: bytes emitted so far */
};

/* Submits p->rq and answers: a JSON body, or an SSE stream when p->stream. */
void gen_run(const api_ctx *ctx, const api_request *req, api_response *res, const api_gen_params *p,
             const gen_shape *shape);

/* "usage" of a finished job. */
json_t *gen_usage(const rt_usage *u);
/* The OpenAI error object of a failed job, for a stream that already began. */
json_t *gen_error_json(const rt_event *fin);

#include "api/gen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "api/json.h"
#include "api/sse.h"

void api_rt_error(api_response *res, const rt_error *err) {
    int status = 500, retry = 0;
    const char *code = rt_status_name(err->status), *param = NULL;
    switch (err->status) {
    case RT_OK:
    case RT_ERR_INTERNAL:
        status = 500;
        break;
    case RT_ERR_BAD_REQUEST:
        status = 400;
        break;
    case RT_ERR_MODEL_NOT_FOUND:
        status = 404;
        param = "model";
        code = "model_not_found";
        break;
    case RT_ERR_BUSY:
        status = 429;
        retry = err->retry_after_s > 0 ? err->retry_after_s : 1;
        code = "server_busy";
        break;
    case RT_ERR_LOADING:
        status = 503;
        retry = err->retry_after_s > 0 ? err->retry_after_s : 5;
        code = "model_loading";
        break;
    case RT_ERR_UNAVAILABLE:
        status = 503;
        retry = err->retry_after_s;
        code = "model_unavailable";
        break;
    case RT_ERR_NO_SPACE:
        status = 507;
        code = "insufficient_storage";
        break;
    }
    if (err->code[0] != '\0') code = err->code;
    if (err->param[0] != '\0') param = err->param;
    api_error(res, status, param, code, "%s",
              err->message[0] ? err->message : "internal error in the model runtime");
    res->retry_after = retry;
}

void api_random_id(const char *prefix, char *out, size_t size) {
    unsigned char bytes[12];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
        /* Without the kernel's random bytes, ids need only be unlikely to repeat. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uintptr_t)out;
        for (size_t i = 0; i < sizeof bytes; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            bytes[i] = (unsigned char)(x >> 56);
        }
    }
    int n = snprintf(out, size, "%s", prefix);
    for (size_t i = 0; i < sizeof bytes && n > 0 && (size_t)n + 2 < size; i++, n += 2)
        snprintf(out + n, size - (size_t)n, "%02x", bytes[i]);
}

bool api_job_next(rt_job *job, const api_request *req, int timeout_ms, rt_event *ev) {
    const int slice = 100;
    for (int waited = 0; timeout_ms < 0 || waited < timeout_ms; waited += slice) {
        if (req->client_gone != NULL && req->client_gone(req->conn)) {
            rt_job_cancel(job);
            return false;
        }
        int wait = timeout_ms < 0 || timeout_ms - waited > slice ? slice : timeout_ms - waited;
        if (rt_job_next(job, wait, ev)) return true;
    }
    ev->type = RT_EVENT_NONE;
    return true;
}

json_t *api_bytes_array(const char *s, size_t n) {
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        json_array_append_new(a, json_integer((unsigned char)s[i]));
    return a;
}

json_t *api_chat_logprobs_content(const rt_token_logprob *lp, size_t n) {
    json_t *content = json_array();
    for (size_t i = 0; content != NULL && i < n; i++) {
        json_t *top = json_array();
        for (int k = 0; top != NULL && k < lp[i].n_top && k < RT_MAX_TOP_LOGPROBS; k++) {
            const rt_logprob_alt *alt = &lp[i].top[k];
            size_t len = alt->text_len < RT_TOKEN_TEXT_MAX ? alt->text_len : RT_TOKEN_TEXT_MAX;
            json_array_append_new(
                top, json_pack("{s:o, s:o, s:f}", "token", api_json_text(alt->text, len), "bytes",
                               api_bytes_array(alt->text, len), "logprob", (double)alt->logprob));
        }
        size_t len = lp[i].text_len < RT_TOKEN_TEXT_MAX ? lp[i].text_len : RT_TOKEN_TEXT_MAX;
        json_array_append_new(
            content, json_pack("{s:o, s:o, s:f, s:o}", "token", api_json_text(lp[i].text, len),
                               "bytes", api_bytes_array(lp[i].text, len), "logprob",
                               (double)lp[i].logprob, "top_logprobs", top ? top : json_array()));
    }
    return content;
}

/* ---- request fields ---- */

/* A seed for requests that give none: each such request samples differently. */
static uint64_t random_seed(void) {
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) == (ssize_t)sizeof seed) return seed;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_nsec * 2654435761u ^ (uint64_t)ts.tv_sec;
}

static bool parse_stop(json_t *body, api_gen_params *p, api_response *res) {
    json_t *stop = json_object_get(body, "stop");
    if (stop == NULL || json_is_null(stop)) return true;
    json_t *one[1] = {stop};
    size_t n = 1;
    if (json_is_array(stop)) {
        n = json_array_size(stop);
        if (n > RT_MAX_STOP) {
            api_error(res, 400, "stop", "array_above_max_length",
                      "Invalid 'stop': array too long. Expected an array with maximum length %d, "
                      "but got an array with length %zu instead.",
                      RT_MAX_STOP, n);
            return false;
        }
    }
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_is_array(stop) ? json_array_get(stop, i) : one[0];
        if (!json_is_string(s)) {
            api_error(res, 400, "stop", "invalid_type",
                      "'stop' must be a string or an array of strings.");
            return false;
        }
        size_t len = json_string_length(s);
        if (len == 0 || len > API_MAX_STOP_LEN || strlen(json_string_value(s)) != len) {
            api_error(res, 400, "stop",
                      len > API_MAX_STOP_LEN ? "string_above_max_length" : "invalid_value",
                      "Each stop string must hold 1 to %d bytes (no NUL).", API_MAX_STOP_LEN);
            return false;
        }
        p->rq.stop[p->rq.n_stop++] = json_string_value(s);
    }
    return true;
}

static bool parse_logit_bias(json_t *body, api_gen_params *p, api_response *res) {
    json_t *bias = json_object_get(body, "logit_bias");
    if (bias == NULL || json_is_null(bias)) return true;
    if (!json_is_object(bias)) {
        api_error(res, 400, "logit_bias", "invalid_type",
                  "'logit_bias' must be an object mapping token ids to numbers.");
        return false;
    }
    if (json_object_size(bias) > API_MAX_LOGIT_BIAS) {
        api_error(res, 400, "logit_bias", "object_above_max_size",
                  "'logit_bias' may hold at most %d entries.", API_MAX_LOGIT_BIAS);
        return false;
    }
    const char *key;
    json_t *value;
    size_t n = 0;
    json_object_foreach(bias, key, value) {
        char *end = NULL;
        errno = 0;
        long long id = strtoll(key, &end, 10);
        if (errno != 0 || end == key || *end != '\0' || id < 0 || id > INT32_MAX) {
            api_error(res, 400, "logit_bias", "invalid_value",
                      "'logit_bias' keys must be token ids (whole numbers >= 0); got '%s'.", key);
            return false;
        }
        if (!json_is_number(value) || json_number_value(value) < -100 ||
            json_number_value(value) > 100) {
            api_error(res, 400, "logit_bias", "invalid_value",
                      "'logit_bias' values must be numbers from -100 to 100 (token %lld).", id);
            return false;
        }
        p->bias[n].token = (int32_t)id;
        p->bias[n].bias = (float)json_number_value(value);
        n++;
    }
    p->rq.sampling.logit_bias = p->bias;
    p->rq.sampling.n_logit_bias = n;
    return true;
}

static bool parse_sampling_numbers(json_t *body, fluid_sampling *s, api_response *res) {
    double temperature = s->temperature, top_p = s->top_p, min_p = s->min_p;
    double presence = s->presence_penalty, frequency = s->frequency_penalty;
    double repeat = s->repeat_penalty;
    int64_t top_k = s->top_k, seed = 0;
    bool has_seed = false;
    if (!api_get_number(body, "temperature", 0, 2, &temperature, NULL, res) ||
        !api_get_number(body, "top_p", 0, 1, &top_p, NULL, res) ||
        !api_get_number(body, "min_p", 0, 1, &min_p, NULL, res) ||
        !api_get_number(body, "presence_penalty", -2, 2, &presence, NULL, res) ||
        !api_get_number(body, "frequency_penalty", -2, 2, &frequency, NULL, res) ||
        !api_get_number(body, "repeat_penalty", 0.01, 10, &repeat, NULL, res) ||
        !api_get_int(body, "top_k", 0, 100000, &top_k, NULL, res) ||
        !api_get_int(body, "seed", INT64_MIN, INT64_MAX, &seed, &has_seed, res))
        return false;
    s->temperature = (float)temperature;
    s->top_p = (float)top_p;
    s->min_p = (float)min_p;
    s->presence_penalty = (float)presence;
    s->frequency_penalty = (float)frequency;
    s->repeat_penalty = (float)repeat;
    s->top_k = (int32_t)top_k;
    if (has_seed)
        s->seed = (uint64_t)seed;
    else
        s->seed = random_seed();
    return true;
}

/* max_completion_tokens (or the older max_tokens): at most the server's limit, which is also
 * the value when the request gives none. */
static bool parse_max_tokens(json_t *body, const api_limits *lim, api_gen_params *p,
                             api_response *res) {
    int64_t max_tokens = 0, max_completion = 0;
    bool has_max = false, has_completion = false;
    if (!api_get_int(body, "max_tokens", 1, API_MAX_TOKENS_LIMIT, &max_tokens, &has_max, res) ||
        !api_get_int(body, "max_completion_tokens", 1, API_MAX_TOKENS_LIMIT, &max_completion,
                     &has_completion, res))
        return false;
    const char *field = has_completion ? "max_completion_tokens" : "max_tokens";
    int64_t asked = has_completion ? max_completion : has_max ? max_tokens : 0;
    if (lim->max_tokens > 0 && asked > lim->max_tokens) {
        api_error(res, 400, field, "invalid_value",
                  "%s is too large: %lld. This server generates at most %d tokens per request "
                  "(--max-tokens-limit).",
                  field, (long long)asked, lim->max_tokens);
        return false;
    }
    p->rq.max_tokens = (int32_t)(asked > 0 ? asked : lim->max_tokens);
    p->rq.max_tokens_explicit = asked > 0;
    return true;
}

bool api_check_input_size(size_t bytes, const char *param, const api_limits *lim,
                          api_response *res) {
    if (lim->max_input_bytes == 0 || bytes <= lim->max_input_bytes) return true;
    api_error(res, 400, param, "string_above_max_length",
              "Invalid '%s': the text is %zu bytes long; this server accepts at most %zu bytes "
              "per request (--max-input-kb).",
              param, bytes, lim->max_input_bytes);
    return false;
}

bool api_parse_gen_params(json_t *body, const api_limits *lim, api_gen_params *p,
                          api_response *res) {
    memset(p, 0, sizeof *p);
    fluid_sampling_defaults(&p->rq.sampling);
    const char *user = NULL;
    int64_t n = 1;
    if (!api_get_string(body, "model", RT_ID_MAX - 1, &p->rq.model, NULL, res) ||
        !api_get_string(body, "user", 4096, &user, NULL, res) ||
        !api_get_int(body, "n", 1, 128, &n, NULL, res) || !parse_max_tokens(body, lim, p, res) ||
        !api_get_bool(body, "stream", &p->stream, NULL, res) ||
        !parse_sampling_numbers(body, &p->rq.sampling, res) || !parse_stop(body, p, res) ||
        !parse_logit_bias(body, p, res))
        return false;
    if (n != 1) {
        api_error(res, 400, "n", "unsupported_value",
                  "Only n=1 is supported: this server returns one choice per request.");
        return false;
    }

    json_t *options = json_object_get(body, "stream_options");
    if (options != NULL && !json_is_null(options)) {
        if (!json_is_object(options)) {
            api_error(res, 400, "stream_options", "invalid_type",
                      "'stream_options' must be an object.");
            return false;
        }
        if (!p->stream) {
            api_error(res, 400, "stream_options", "invalid_value",
                      "'stream_options' is only allowed when 'stream' is true.");
            return false;
        }
        json_t *usage = json_object_get(options, "include_usage");
        if (usage != NULL && !json_is_null(usage) && !json_is_boolean(usage)) {
            api_error(res, 400, "stream_options.include_usage", "invalid_type",
                      "'stream_options.include_usage' must be a boolean.");
            return false;
        }
        p->include_usage = json_is_true(usage);
    }
    return true;
}

/* ---- running a generation job ---- */

typedef struct gen_stream {
    sse_stream sse;
    gen_job g;
} gen_stream;

json_t *gen_usage(const rt_usage *u) {
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", u->prompt_tokens, "completion_tokens",
                     u->completion_tokens, "total_tokens", u->prompt_tokens + u->completion_tokens);
}

json_t *gen_error_json(const rt_event *fin) {
    api_response tmp = {0};
    if (fin->finish_reason == RT_FINISH_CANCELLED)
        api_error(&tmp, 503, NULL, "cancelled", "The request was cancelled (server stopping).");
    else
        api_rt_error(&tmp, &fin->error);
    json_t *doc = json_loadb(tmp.body ? tmp.body : "{}", tmp.body_len, 0, NULL);
    api_response_free(&tmp);
    return doc;
}

/* Formats one event into out. Returns the pump result. */
static sse_pump gen_format(gen_job *g, const rt_event *ev, fl_buf *out) {
    switch (ev->type) {
    case RT_EVENT_NONE:
        return SSE_PUMP_IDLE;
    case RT_EVENT_SEGMENT:
        return SSE_PUMP_DATA;
    case RT_EVENT_TEXT:
        return g->shape->stream_text(g, ev, out) ? SSE_PUMP_DATA : SSE_PUMP_FAIL;
    case RT_EVENT_FINISHED:
        if (ev->finish_reason == RT_FINISH_ERROR || ev->finish_reason == RT_FINISH_CANCELLED) {
            /* The status line is sent: report the failure as an error object in the stream
             * (SDKs raise it) and end without [DONE]. */
            json_t *err = gen_error_json(ev);
            return sse_data(out, err) ? SSE_PUMP_END : SSE_PUMP_FAIL;
        }
        return g->shape->stream_finish(g, ev, out) && fl_buf_puts(out, "data: [DONE]\n\n")
                   ? SSE_PUMP_END
                   : SSE_PUMP_FAIL;
    }
    return SSE_PUMP_FAIL;
}

static sse_pump gen_pump(sse_stream *s, int timeout_ms) {
    gen_stream *gs = (gen_stream *)s;
    rt_event ev;
    if (!rt_job_next(gs->g.job, timeout_ms, &ev)) return SSE_PUMP_IDLE;
    return gen_format(&gs->g, &ev, &s->out);
}

static void gen_finish(sse_stream *s, bool completed) {
    gen_stream *gs = (gen_stream *)s;
    if (!completed) rt_job_cancel(gs->g.job);
    rt_job_release(gs->g.job);
}

/* The model id shown in responses before the runtime names the one that ran. */
static void display_model(const api_ctx *ctx, const char *requested, char *out, size_t size) {
    if (requested != NULL && requested[0] != '\0') {
        snprintf(out, size, "%s", requested);
        return;
    }
    rt_health_info h;
    rt_health(ctx->rt, &h);
    snprintf(out, size, "%s", h.llm.model);
}

static void gen_stream_start(const api_ctx *ctx, const api_request *req, api_response *res,
                             gen_job *g, const rt_event *first) {
    gen_stream *gs = calloc(1, sizeof *gs);
    if (gs == NULL) {
        rt_job_release(g->job);
        api_error(res, 500, NULL, "out_of_memory", "out of memory");
        return;
    }
    sse_init(&gs->sse, ctx, req, gen_pump, gen_finish);
    gs->g = *g;
    gs->g.params = NULL;
    sse_pump r = gs->g.shape->stream_open(&gs->g, &gs->sse.out)
                     ? gen_format(&gs->g, first, &gs->sse.out)
                     : SSE_PUMP_FAIL;
    if (r == SSE_PUMP_FAIL) {
        rt_job_release(g->job);
        fl_buf_free(&gs->sse.out);
        free(gs);
        api_error(res, 500, NULL, "out_of_memory", "out of memory");
        return;
    }
    gs->sse.ended = r == SSE_PUMP_END;
    sse_respond(res, &gs->sse);
}

static void gen_collect(const api_request *req, api_response *res, gen_job *g) {
    fl_buf text = {0};
    rt_event ev;
    for (;;) {
        if (!api_job_next(g->job, req, -1, &ev)) {
            api_error(res, 499, NULL, "client_closed_request", "The client closed the request.");
            break;
        }
        if (ev.type == RT_EVENT_TEXT) {
            if (!fl_buf_append(&text, ev.text, ev.text_len)) {
                api_error(res, 500, NULL, "out_of_memory", "out of memory");
                break;
            }
            if (g->logprobs) g->shape->collect_logprobs(g, &ev);
            g->text_offset += ev.text_len;
        } else if (ev.type == RT_EVENT_FINISHED) {
            if (ev.finish_reason == RT_FINISH_ERROR)
                api_rt_error(res, &ev.error);
            else if (ev.finish_reason == RT_FINISH_CANCELLED)
                api_error(res, 503, NULL, "cancelled", "The request was cancelled.");
            else {
                if (ev.model != NULL) snprintf(g->model, sizeof g->model, "%s", ev.model);
                api_set_json(res, 200,
                             g->shape->whole(g, text.data ? text.data : "", text.len, &ev));
            }
            break;
        }
    }
    fl_buf_free(&text);
    json_decref(g->logprobs_acc);
    rt_job_release(g->job);
}

void gen_run(const api_ctx *ctx, const api_request *req, api_response *res, const api_gen_params *p,
             const gen_shape *shape) {
    gen_job g = {.shape = shape,
                 .params = p,
                 .created = (int64_t)time(NULL),
                 .include_usage = p->include_usage,
                 .logprobs = p->rq.logprobs,
                 .top_logprobs = p->rq.top_logprobs};
    api_random_id(shape->id_prefix, g.id, sizeof g.id);
    display_model(ctx, p->rq.model, g.model, sizeof g.model);
    snprintf(res->model, sizeof res->model, "%s", g.model);
    rt_error err = {0};
    if (rt_submit_chat(ctx->rt, &p->rq, &g.job, &err) != RT_OK) {
        api_rt_error(res, &err);
        return;
    }
    if (!p->stream) {
        gen_collect(req, res, &g);
        return;
    }
    /* Wait briefly for the first event so that a model that cannot load still gets a proper
     * HTTP status; past that, the stream starts and keep-alive comments cover the wait. */
    rt_event first;
    if (!api_job_next(g.job, req, ctx->keepalive_ms > 0 ? ctx->keepalive_ms : 10000, &first)) {
        rt_job_release(g.job);
        api_error(res, 499, NULL, "client_closed_request", "The client closed the request.");
        return;
    }
    if (first.type == RT_EVENT_FINISHED && first.finish_reason == RT_FINISH_ERROR) {
        api_rt_error(res, &first.error);
        rt_job_release(g.job);
        return;
    }
    gen_stream_start(ctx, req, res, &g, &first);
}

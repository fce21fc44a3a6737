/* POST /v1/completions (legacy text completions) */
#include <stdlib.h>
#include <string.h>

#include "api/gen.h"
#include "api/json.h"
#include "api/sse.h"

#define LEGACY_MAX_LOGPROBS 5

/* prompt: a string, or an array holding one string. */
static bool parse_prompt(json_t *body, const api_limits *lim, api_gen_params *p,
                         api_response *res) {
    json_t *prompt = json_object_get(body, "prompt");
    if (json_is_array(prompt)) {
        if (json_array_size(prompt) != 1 || !json_is_string(json_array_get(prompt, 0))) {
            bool tokens =
                json_array_size(prompt) > 0 && (json_is_integer(json_array_get(prompt, 0)) ||
                                                json_is_array(json_array_get(prompt, 0)));
            api_error(res, 400, "prompt", "unsupported_value",
                      tokens ? "Token-id prompts are not supported; send the prompt as text."
                             : "Send one prompt per request (a string or an array of one string).");
            return false;
        }
        prompt = json_array_get(prompt, 0);
    }
    if (!json_is_string(prompt)) {
        api_error(res, 400, "prompt", prompt ? "invalid_type" : "missing_required_parameter",
                  "'prompt' must be a string.");
        return false;
    }
    if (strlen(json_string_value(prompt)) != json_string_length(prompt)) {
        api_error(res, 400, "prompt", "invalid_value", "'prompt' must not contain NUL.");
        return false;
    }
    p->rq.prompt = json_string_value(prompt);
    return api_check_input_size(json_string_length(prompt), "prompt", lim, res);
}

static bool parse_completion(json_t *body, const api_limits *lim, api_gen_params *p,
                             api_response *res) {
    if (!api_parse_gen_params(body, lim, p, res) || !parse_prompt(body, lim, p, res)) return false;
    const char *suffix = NULL;
    int64_t logprobs = 0, best_of = 1;
    bool has_logprobs = false;
    if (!api_get_string(body, "suffix", 1 << 20, &suffix, NULL, res) ||
        !api_get_bool(body, "echo", &p->rq.echo, NULL, res) ||
        !api_get_int(body, "logprobs", 0, LEGACY_MAX_LOGPROBS, &logprobs, &has_logprobs, res) ||
        !api_get_int(body, "best_of", 1, 128, &best_of, NULL, res))
        return false;
    if (suffix != NULL && suffix[0] != '\0') {
        api_error(res, 400, "suffix", "unsupported_value",
                  "'suffix' (fill-in-the-middle) is not supported by this server.");
        return false;
    }
    if (best_of != 1) {
        api_error(res, 400, "best_of", "unsupported_value", "Only best_of=1 is supported.");
        return false;
    }
    p->rq.logprobs = has_logprobs;
    p->rq.top_logprobs = (int32_t)logprobs;
    return true;
}

/* ---- response shapes ---- */

/* Appends the tokens of one TEXT event to the four parallel arrays of legacy logprobs. */
static void legacy_logprobs_add(json_t *acc, const rt_event *ev, size_t *offset) {
    json_t *tokens = json_object_get(acc, "tokens");
    json_t *lps = json_object_get(acc, "token_logprobs");
    json_t *tops = json_object_get(acc, "top_logprobs");
    json_t *offsets = json_object_get(acc, "text_offset");
    for (size_t i = 0; i < ev->n_logprobs; i++) {
        const rt_token_logprob *lp = &ev->logprobs[i];
        size_t len = lp->text_len < RT_TOKEN_TEXT_MAX ? lp->text_len : RT_TOKEN_TEXT_MAX;
        json_array_append_new(tokens, api_json_text(lp->text, len));
        json_array_append_new(lps, json_real(lp->logprob));
        json_t *top = json_object();
        for (int k = 0; top != NULL && k < lp->n_top && k < RT_MAX_TOP_LOGPROBS; k++) {
            size_t alen =
                lp->top[k].text_len < RT_TOKEN_TEXT_MAX ? lp->top[k].text_len : RT_TOKEN_TEXT_MAX;
            json_t *key = api_json_text(lp->top[k].text, alen);
            if (key != NULL)
                json_object_set_new(top, json_string_value(key), json_real(lp->top[k].logprob));
            json_decref(key);
        }
        json_array_append_new(tops, top);
        json_array_append_new(offsets, json_integer((json_int_t)*offset));
        *offset += len;
    }
}

static json_t *legacy_logprobs_new(void) {
    return json_pack("{s:[], s:[], s:[], s:[]}", "tokens", "token_logprobs", "top_logprobs",
                     "text_offset");
}

static json_t *completion_object(gen_job *g, json_t *choices) {
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "id", g->id, "object", "text_completion",
                     "created", (json_int_t)g->created, "model", g->model, "system_fingerprint",
                     "fp_fluid", "choices", choices);
}

static json_t *completion_chunk(gen_job *g, json_t *text, json_t *logprobs, const char *finish) {
    json_t *chunk = completion_object(g, json_pack("[{s:o, s:i, s:o, s:s?}]", "text", text, "index",
                                                   0, "logprobs", logprobs ? logprobs : json_null(),
                                                   "finish_reason", finish));
    if (chunk != NULL && g->include_usage) json_object_set_new(chunk, "usage", json_null());
    return chunk;
}

static bool completion_open(gen_job *g, fl_buf *out) {
    (void)g;
    (void)out;
    return true;
}

static bool completion_text(gen_job *g, const rt_event *ev, fl_buf *out) {
    json_t *logprobs = NULL;
    if (g->logprobs) {
        logprobs = legacy_logprobs_new();
        if (logprobs != NULL) legacy_logprobs_add(logprobs, ev, &g->text_offset);
    }
    return sse_data(out,
                    completion_chunk(g, api_json_text(ev->text, ev->text_len), logprobs, NULL));
}

static bool completion_finish(gen_job *g, const rt_event *ev, fl_buf *out) {
    if (ev->model != NULL) snprintf(g->model, sizeof g->model, "%s", ev->model);
    if (!sse_data(out, completion_chunk(g, json_string(""), NULL,
                                        rt_finish_reason_name(ev->finish_reason))))
        return false;
    if (!g->include_usage) return true;
    json_t *chunk = completion_object(g, json_array());
    if (chunk != NULL) json_object_set_new(chunk, "usage", gen_usage(&ev->usage));
    return sse_data(out, chunk);
}

static void completion_collect_logprobs(gen_job *g, const rt_event *ev) {
    if (g->logprobs_acc == NULL) g->logprobs_acc = legacy_logprobs_new();
    size_t offset = g->text_offset; /* gen_collect advances text_offset after this call */
    if (g->logprobs_acc != NULL) legacy_logprobs_add(g->logprobs_acc, ev, &offset);
}

static json_t *completion_whole(gen_job *g, const char *text, size_t len, const rt_event *fin) {
    json_t *logprobs = g->logprobs && g->logprobs_acc ? json_incref(g->logprobs_acc) : json_null();
    json_t *doc =
        completion_object(g, json_pack("[{s:o, s:i, s:o, s:s}]", "text", api_json_text(text, len),
                                       "index", 0, "logprobs", logprobs, "finish_reason",
                                       rt_finish_reason_name(fin->finish_reason)));
    if (doc != NULL) json_object_set_new(doc, "usage", gen_usage(&fin->usage));
    return doc;
}

static const gen_shape completion_shape = {
    .id_prefix = "cmpl-",
    .stream_open = completion_open,
    .stream_text = completion_text,
    .stream_finish = completion_finish,
    .collect_logprobs = completion_collect_logprobs,
    .whole = completion_whole,
};

void api_completions(const api_ctx *ctx, const api_request *req, api_response *res) {
    json_t *body = api_parse_object(req, res);
    if (body == NULL) return;
    api_gen_params *p = malloc(sizeof *p);
    if (p == NULL)
        api_error(res, 500, NULL, "out_of_memory", "out of memory");
    else if (parse_completion(body, &ctx->limits, p, res))
        gen_run(ctx, req, res, p, &completion_shape);
    free(p);
    json_decref(body);
}

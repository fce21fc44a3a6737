/* POST /v1/chat/completions */
#include <stdlib.h>
#include <string.h>

#include "api/gen.h"
#include "api/json.h"
#include "api/sse.h"

#define CHAT_MAX_MESSAGES 4096 /* when the server sets no limit */

typedef struct chat_input {
    api_gen_params gp;
    fluid_chat_message *messages;
    char **joined; /* contents built from part arrays (freed with the input) */
    size_t n;
} chat_input;

static void chat_input_free(chat_input *in) {
    for (size_t i = 0; in->joined != NULL && i < in->n; i++) free(in->joined[i]);
    free(in->joined);
    free(in->messages);
}

static bool role_allowed(const char *role) {
    static const char *const roles[] = {"system", "developer", "user", "assistant"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (strcmp(role, roles[i]) == 0) return true;
    return false;
}

/* Joins the text parts of a content array into one malloc'd string. */
static char *join_parts(json_t *parts, size_t msg, api_response *res) {
    char param[64];
    fl_buf b = {0};
    if (json_array_size(parts) == 0) {
        snprintf(param, sizeof param, "messages[%zu].content", msg);
        api_error(res, 400, param, "invalid_value", "A content array must not be empty.");
        return NULL;
    }
    for (size_t j = 0; j < json_array_size(parts); j++) {
        json_t *part = json_array_get(parts, j);
        json_t *type = json_object_get(part, "type");
        json_t *text = json_object_get(part, "text");
        snprintf(param, sizeof param, "messages[%zu].content[%zu]", msg, j);
        if (!json_is_object(part) || !json_is_string(type)) {
            api_error(res, 400, param, "invalid_type",
                      "Each content part must be an object with a 'type'.");
            goto fail;
        }
        if (strcmp(json_string_value(type), "text") != 0) {
            api_error(res, 400, param, "unsupported_content",
                      "Content parts of type '%s' are not supported; this server reads text "
                      "only.",
                      json_string_value(type));
            goto fail;
        }
        if (!json_is_string(text) || strlen(json_string_value(text)) != json_string_length(text)) {
            api_error(res, 400, param, "invalid_type", "A text part needs a string 'text'.");
            goto fail;
        }
        if ((j > 0 && !fl_buf_puts(&b, "\n")) ||
            !fl_buf_append(&b, json_string_value(text), json_string_length(text))) {
            api_error(res, 500, NULL, "out_of_memory", "out of memory");
            goto fail;
        }
    }
    return fl_buf_take(&b, NULL);
fail:
    fl_buf_free(&b);
    return NULL;
}

static bool parse_message(json_t *m, size_t i, chat_input *in, api_response *res) {
    char param[64];
    snprintf(param, sizeof param, "messages[%zu]", i);
    if (!json_is_object(m)) {
        api_error(res, 400, param, "invalid_type", "Each message must be an object.");
        return false;
    }
    json_t *role = json_object_get(m, "role");
    snprintf(param, sizeof param, "messages[%zu].role", i);
    if (!json_is_string(role)) {
        api_error(res, 400, param, "invalid_type", "Each message needs a string 'role'.");
        return false;
    }
    if (!role_allowed(json_string_value(role))) {
        api_error(res, 400, param, "unsupported_value",
                  "Role '%.40s' is not supported: use system, developer, user or assistant "
                  "(this server has no tool calling).",
                  json_string_value(role));
        return false;
    }
    json_t *calls = json_object_get(m, "tool_calls");
    if (calls != NULL && !json_is_null(calls)) {
        snprintf(param, sizeof param, "messages[%zu].tool_calls", i);
        api_error(res, 400, param, "unsupported_value", "Tool calls are not supported.");
        return false;
    }
    json_t *content = json_object_get(m, "content");
    snprintf(param, sizeof param, "messages[%zu].content", i);
    in->messages[i].role = json_string_value(role);
    if (json_is_string(content)) {
        if (strlen(json_string_value(content)) != json_string_length(content)) {
            api_error(res, 400, param, "invalid_value", "Content must not contain NUL.");
            return false;
        }
        in->messages[i].content = json_string_value(content);
        return true;
    }
    if (json_is_array(content)) {
        in->joined[i] = join_parts(content, i, res);
        in->messages[i].content = in->joined[i];
        return in->joined[i] != NULL;
    }
    api_error(res, 400, param, "invalid_type",
              "'content' must be a string or an array of text parts.");
    return false;
}

static bool parse_unsupported(json_t *body, api_response *res) {
    json_t *tools = json_object_get(body, "tools");
    json_t *functions = json_object_get(body, "functions");
    if ((json_is_array(tools) && json_array_size(tools) > 0) ||
        (json_is_array(functions) && json_array_size(functions) > 0)) {
        api_error(res, 400, tools ? "tools" : "functions", "unsupported_value",
                  "Tools and function calling are not supported by this server.");
        return false;
    }
    json_t *format = json_object_get(body, "response_format");
    if (format != NULL && !json_is_null(format)) {
        json_t *type = json_object_get(format, "type");
        if (!json_is_object(format) || !json_is_string(type)) {
            api_error(res, 400, "response_format", "invalid_type",
                      "'response_format' must be an object with a 'type'.");
            return false;
        }
        if (strcmp(json_string_value(type), "text") != 0) {
            api_error(res, 400, "response_format", "unsupported_value",
                      "response_format '%.40s' is not supported; only 'text' is.",
                      json_string_value(type));
            return false;
        }
    }
    return true;
}

/* The number of messages and their total text against the server's limits. */
static bool check_chat_size(const chat_input *in, const api_limits *lim, api_response *res) {
    size_t bytes = 0;
    for (size_t i = 0; i < in->n; i++) bytes += strlen(in->messages[i].content);
    return api_check_input_size(bytes, "messages", lim, res);
}

static bool parse_chat(json_t *body, const api_limits *lim, chat_input *in, api_response *res) {
    memset(in, 0, sizeof *in);
    if (!api_parse_gen_params(body, lim, &in->gp, res) || !parse_unsupported(body, res))
        return false;
    bool logprobs = false;
    int64_t top = 0;
    bool has_top = false;
    if (!api_get_bool(body, "logprobs", &logprobs, NULL, res) ||
        !api_get_int(body, "top_logprobs", 0, RT_MAX_TOP_LOGPROBS, &top, &has_top, res))
        return false;
    if (has_top && !logprobs) {
        api_error(res, 400, "top_logprobs", "invalid_value",
                  "'top_logprobs' requires 'logprobs' to be true.");
        return false;
    }
    in->gp.rq.logprobs = logprobs;
    in->gp.rq.top_logprobs = (int32_t)top;

    json_t *messages = json_object_get(body, "messages");
    if (!json_is_array(messages)) {
        api_error(res, 400, "messages", messages ? "invalid_type" : "missing_required_parameter",
                  "'messages' must be an array of messages.");
        return false;
    }
    in->n = json_array_size(messages);
    size_t max = lim->max_messages > 0 ? (size_t)lim->max_messages : CHAT_MAX_MESSAGES;
    if (in->n == 0 || in->n > max) {
        api_error(res, 400, "messages", in->n == 0 ? "empty_array" : "array_above_max_length",
                  "Invalid 'messages': expected an array of 1 to %zu messages (--max-messages), "
                  "but got an array with length %zu instead.",
                  max, in->n);
        in->n = 0;
        return false;
    }
    in->messages = calloc(in->n, sizeof *in->messages);
    in->joined = calloc(in->n, sizeof *in->joined);
    if (in->messages == NULL || in->joined == NULL) {
        api_error(res, 500, NULL, "out_of_memory", "out of memory");
        return false;
    }
    for (size_t i = 0; i < in->n; i++)
        if (!parse_message(json_array_get(messages, i), i, in, res)) return false;
    in->gp.rq.messages = in->messages;
    in->gp.rq.n_messages = in->n;
    return check_chat_size(in, lim, res);
}

/* ---- response shapes ---- */

static json_t *chat_chunk(gen_job *g, json_t *delta, const char *finish, json_t *logprobs) {
    json_t *choice = json_pack("{s:i, s:o, s:o, s:s?}", "index", 0, "delta", delta, "logprobs",
                               logprobs ? logprobs : json_null(), "finish_reason", finish);
    json_t *chunk = json_pack("{s:s, s:s, s:I, s:s, s:s, s:[o]}", "id", g->id, "object",
                              "chat.completion.chunk", "created", (json_int_t)g->created, "model",
                              g->model, "system_fingerprint", "fp_fluid", "choices", choice);
    if (chunk != NULL && g->include_usage) json_object_set_new(chunk, "usage", json_null());
    return chunk;
}

static bool chat_open(gen_job *g, fl_buf *out) {
    return sse_data(out, chat_chunk(g, json_pack("{s:s, s:s}", "role", "assistant", "content", ""),
                                    NULL, NULL));
}

static json_t *chat_logprobs(gen_job *g, const rt_event *ev) {
    if (!g->logprobs) return NULL;
    return json_pack("{s:o, s:n}", "content",
                     api_chat_logprobs_content(ev->logprobs, ev->n_logprobs), "refusal");
}

static bool chat_text(gen_job *g, const rt_event *ev, fl_buf *out) {
    json_t *delta = json_pack("{s:o}", "content", api_json_text(ev->text, ev->text_len));
    return sse_data(out, chat_chunk(g, delta, NULL, chat_logprobs(g, ev)));
}

static bool chat_finish(gen_job *g, const rt_event *ev, fl_buf *out) {
    if (ev->model != NULL) snprintf(g->model, sizeof g->model, "%s", ev->model);
    if (!sse_data(out,
                  chat_chunk(g, json_object(), rt_finish_reason_name(ev->finish_reason), NULL)))
        return false;
    if (!g->include_usage) return true;
    json_t *chunk =
        json_pack("{s:s, s:s, s:I, s:s, s:s, s:[], s:o}", "id", g->id, "object",
                  "chat.completion.chunk", "created", (json_int_t)g->created, "model", g->model,
                  "system_fingerprint", "fp_fluid", "choices", "usage", gen_usage(&ev->usage));
    return sse_data(out, chunk);
}

static void chat_collect_logprobs(gen_job *g, const rt_event *ev) {
    if (g->logprobs_acc == NULL) g->logprobs_acc = json_array();
    json_t *more = api_chat_logprobs_content(ev->logprobs, ev->n_logprobs);
    if (g->logprobs_acc != NULL && more != NULL) json_array_extend(g->logprobs_acc, more);
    json_decref(more);
}

static json_t *chat_whole(gen_job *g, const char *text, size_t len, const rt_event *fin) {
    json_t *logprobs = json_null();
    if (g->logprobs)
        logprobs =
            json_pack("{s:o, s:n}", "content",
                      g->logprobs_acc ? json_incref(g->logprobs_acc) : json_array(), "refusal");
    json_t *message = json_pack("{s:s, s:o, s:n}", "role", "assistant", "content",
                                api_json_text(text, len), "refusal");
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:[{s:i, s:o, s:o, s:s}], s:o}", "id", g->id,
                     "object", "chat.completion", "created", (json_int_t)g->created, "model",
                     g->model, "system_fingerprint", "fp_fluid", "choices", "index", 0, "message",
                     message, "logprobs", logprobs, "finish_reason",
                     rt_finish_reason_name(fin->finish_reason), "usage", gen_usage(&fin->usage));
}

static const gen_shape chat_shape = {
    .id_prefix = "chatcmpl-",
    .stream_open = chat_open,
    .stream_text = chat_text,
    .stream_finish = chat_finish,
    .collect_logprobs = chat_collect_logprobs,
    .whole = chat_whole,
};

void api_chat_completions(const api_ctx *ctx, const api_request *req, api_response *res) {
    json_t *body = api_parse_object(req, res);
    if (body == NULL) return;
    chat_input in;
    if (parse_chat(body, &ctx->limits, &in, res)) gen_run(ctx, req, res, &in.gp, &chat_shape);
    chat_input_free(&in);
    json_decref(body);
}

/* Response bodies: plain bodies, JSON bodies and the OpenAI error object. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/json.h"

void api_response_free(api_response *res) {
    free(res->body);
    res->body = NULL;
    res->body_len = 0;
    if (res->stream != NULL) {
        res->stream->close(res->stream, false);
        res->stream = NULL;
    }
}

static void set_owned_body(api_response *res, int status, const char *content_type, char *body,
                           size_t len) {
    free(res->body);
    res->status = status;
    res->content_type = content_type;
    res->body = body;
    res->body_len = len;
}

/* The last resort when even an error body cannot be allocated: a static-size reply. */
static void set_out_of_memory(api_response *res) {
    static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\","
                              "\"param\":null,\"code\":\"out_of_memory\"}}";
    char *copy = malloc(sizeof oom);
    if (copy != NULL) memcpy(copy, oom, sizeof oom);
    set_owned_body(res, 500, "application/json", copy, copy ? sizeof oom - 1 : 0);
}

void api_set_body(api_response *res, int status, const char *content_type, const char *bytes,
                  size_t len) {
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        set_out_of_memory(res);
        return;
    }
    memcpy(copy, bytes, len);
    copy[len] = '\0';
    set_owned_body(res, status, content_type, copy, len);
}

void api_take_buf(api_response *res, int status, const char *content_type, fl_buf *b) {
    size_t len;
    char *body = fl_buf_take(b, &len);
    if (body == NULL) {
        set_out_of_memory(res);
        return;
    }
    set_owned_body(res, status, content_type, body, len);
}

bool api_set_json(api_response *res, int status, json_t *doc) {
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (text == NULL) {
        set_out_of_memory(res);
        return false;
    }
    set_owned_body(res, status, "application/json", text, strlen(text));
    return true;
}

const char *api_error_type(int status) {
    switch (status) {
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 409:
        return "conflict_error";
    case 429:
        return "rate_limit_error";
    case 503:
        return "service_unavailable_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

void api_error(api_response *res, int status, const char *param, const char *code, const char *fmt,
               ...) {
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    /* A message may quote client input, which need not be valid UTF-8. */
    json_t *msg = api_json_text(message, strlen(message));
    json_t *doc = json_pack("{s:{s:o, s:s, s:s?, s:s?}}", "error", "message", msg, "type",
                            api_error_type(status), "param", param, "code", code);
    if (doc == NULL) {
        set_out_of_memory(res);
        return;
    }
    api_set_json(res, status, doc);
}

const api_form_part *api_form_get(const api_form *form, const char *name) {
    if (form == NULL) return NULL;
    for (size_t i = 0; i < form->n; i++)
        if (strcmp(form->parts[i].name, name) == 0) return &form->parts[i];
    return NULL;
}

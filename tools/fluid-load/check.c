/* fluid-load: is a response what the OpenAI API promises? JSON bodies and chat streams. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid-load/load.h"

/* Writes the reason into why; returns false for the caller to pass on. */
static bool vfail(char *why, size_t why_size, const char *fmt, va_list ap) {
    vsnprintf(why, why_size, fmt, ap);
    return false;
}

static bool fail(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *why, size_t why_size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(why, why_size, fmt, ap);
    va_end(ap);
    return false;
}

/* choices[0] of a completion-like document, or NULL. */
static json_t *first_choice(json_t *doc) {
    json_t *choices = json_object_get(doc, "choices");
    return json_is_array(choices) ? json_array_get(choices, 0) : NULL;
}

static long completion_tokens(json_t *doc) {
    json_t *n = json_object_get(json_object_get(doc, "usage"), "completion_tokens");
    return json_is_integer(n) ? (long)json_integer_value(n) : -1;
}

/* The fields each kind must have; true when doc has them. */
static bool check_shape(load_kind kind, json_t *doc, char *why, size_t why_size) {
    const char *object = json_string_value(json_object_get(doc, "object"));
    json_t *choice = first_choice(doc);
    switch (kind) {
    case LOAD_CHAT:
        if (object == NULL || strcmp(object, "chat.completion") != 0)
            return fail(why, why_size, "chat: object is not \"chat.completion\"");
        if (!json_is_string(json_object_get(json_object_get(choice, "message"), "content")))
            return fail(why, why_size, "chat: no choices[0].message.content string");
        return true;
    case LOAD_COMPLETION:
        if (object == NULL || strcmp(object, "text_completion") != 0)
            return fail(why, why_size, "completion: object is not \"text_completion\"");
        if (!json_is_string(json_object_get(choice, "text")))
            return fail(why, why_size, "completion: no choices[0].text string");
        return true;
    case LOAD_TRANSCRIPTION:
        if (!json_is_string(json_object_get(doc, "text")))
            return fail(why, why_size, "transcription: no \"text\" string");
        return true;
    case LOAD_HEALTH:
        if (!json_is_string(json_object_get(doc, "status")))
            return fail(why, why_size, "health: no \"status\" string");
        return true;
    default:
        return fail(why, why_size, "%s is not a JSON response", load_kind_name(kind));
    }
}

bool load_check_json_body(load_kind kind, const char *body, size_t len, long *tokens, char *why,
                          size_t why_size) {
    json_error_t err;
    json_t *doc = json_loadb(body, len, JSON_ALLOW_NUL, &err);
    *tokens = 0;
    if (!json_is_object(doc)) {
        json_decref(doc);
        return fail(why, why_size, "%s: body is not a JSON object (%s)", load_kind_name(kind),
                    err.text);
    }
    bool ok = check_shape(kind, doc, why, why_size);
    long n = completion_tokens(doc);
    if (ok && n > 0) *tokens = n;
    json_decref(doc);
    return ok;
}

/* ---- chat streams ---- */

void load_sse_init(load_sse *s) {
    memset(s, 0, sizeof *s);
    s->usage_tokens = -1;
}

void load_sse_free(load_sse *s) {
    free(s->line);
    load_sse_init(s);
}

static bool sse_bad(load_sse *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool sse_bad(load_sse *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vfail(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    s->bad = true;
    return false;
}

/* One "data: " payload of a chat stream. */
static bool sse_data(load_sse *s, const char *data, size_t len) {
    if (s->done) return sse_bad(s, "chat-stream: data after [DONE]");
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        s->done = true;
        return true;
    }
    json_error_t err;
    json_t *doc = json_loadb(data, len, JSON_ALLOW_NUL, &err);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return sse_bad(s, "chat-stream: an event is not a JSON object (%s)", err.text);
    }
    json_t *error = json_object_get(doc, "error");
    const char *object = json_string_value(json_object_get(doc, "object"));
    bool ok = true;
    if (error != NULL) {
        const char *message = json_string_value(json_object_get(error, "message"));
        ok = sse_bad(s, "chat-stream: error event: %s", message ? message : "(no message)");
    } else if (object == NULL || strcmp(object, "chat.completion.chunk") != 0) {
        ok = sse_bad(s, "chat-stream: an event's object is not \"chat.completion.chunk\"");
    } else {
        json_t *delta = json_object_get(first_choice(doc), "delta");
        const char *content = json_string_value(json_object_get(delta, "content"));
        if (content != NULL && content[0] != '\0') {
            if (s->content_chunks++ == 0) s->got_content = true;
        }
        long n = completion_tokens(doc);
        if (n >= 0) s->usage_tokens = n;
        s->events++;
    }
    json_decref(doc);
    return ok;
}

/* One complete line (without its end): data lines are read, comments and other fields
 * (keep-alives, "event:", "id:") are not needed here. */
static bool sse_line(load_sse *s, const char *line, size_t len) {
    if (len > 0 && line[len - 1] == '\r') len--;
    if (len >= 5 && memcmp(line, "data:", 5) == 0) {
        size_t skip = len > 5 && line[5] == ' ' ? 6 : 5;
        return sse_data(s, line + skip, len - skip);
    }
    return true;
}

#define SSE_MAX_LINE (16u << 20)

static bool sse_keep(load_sse *s, const char *bytes, size_t n) {
    if (s->line_len + n > SSE_MAX_LINE)
        return sse_bad(s, "chat-stream: a line longer than %u bytes", SSE_MAX_LINE);
    if (s->line_len + n > s->line_cap) {
        size_t cap = s->line_cap ? s->line_cap : 1024;
        while (cap < s->line_len + n) cap *= 2;
        char *p = realloc(s->line, cap);
        if (p == NULL) return sse_bad(s, "chat-stream: out of memory");
        s->line = p;
        s->line_cap = cap;
    }
    memcpy(s->line + s->line_len, bytes, n);
    s->line_len += n;
    return true;
}

bool load_sse_feed(load_sse *s, const char *bytes, size_t n) {
    while (n > 0 && !s->bad) {
        const char *nl = memchr(bytes, '\n', n);
        size_t part = nl ? (size_t)(nl - bytes) : n;
        if (!sse_keep(s, bytes, part)) return false;
        if (nl == NULL) break;
        bool ok = sse_line(s, s->line, s->line_len);
        s->line_len = 0;
        if (!ok) return false;
        bytes += part + 1;
        n -= part + 1;
    }
    return !s->bad;
}

bool load_sse_finish(load_sse *s) {
    if (s->bad) return false;
    if (s->line_len > 0) return sse_bad(s, "chat-stream: the stream ends inside a line");
    if (!s->done) return sse_bad(s, "chat-stream: the stream ends without [DONE]");
    if (s->events == 0) return sse_bad(s, "chat-stream: no chunk before [DONE]");
    return true;
}

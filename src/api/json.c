#include "api/json.h"

#include <math.h>
#include <string.h>

#include "util/buf.h"

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t utf8_sequence(const unsigned char *s, size_t avail) {
    unsigned char c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (avail < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
    return n;
}

json_t *api_json_text(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_sequence(u + i, len - i);
        if (n == 0) break;
        i += n;
    }
    if (i == len) return json_stringn(s, len);
    fl_buf b = {0};
    bool ok = fl_buf_append(&b, s, i);
    while (ok && i < len) {
        size_t n = utf8_sequence(u + i, len - i);
        ok = n ? fl_buf_append(&b, s + i, n) : fl_buf_append(&b, "\xEF\xBF\xBD", 3);
        i += n ? n : 1;
    }
    json_t *out = ok ? json_stringn(b.data, b.len) : NULL;
    fl_buf_free(&b);
    return out;
}

json_t *api_parse_object(const api_request *req, api_response *res) {
    if (req->content_type[0] != '\0' && strcmp(req->content_type, "application/json") != 0) {
        api_error(res, 415, NULL, "unsupported_media_type",
                  "Content-Type must be application/json, not '%s'.", req->content_type);
        return NULL;
    }
    if (req->body_len == 0) {
        api_error(res, 400, NULL, "invalid_json", "The request body is empty; send a JSON object.");
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        api_error(res, 400, NULL, "invalid_json",
                  "The body is not valid JSON: %s (line %d, column %d).", jerr.text, jerr.line,
                  jerr.column);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        api_error(res, 400, NULL, "invalid_json", "The body must be a JSON object.");
        return NULL;
    }
    return doc;
}

/* The field, or NULL when absent or null. */
static json_t *field(json_t *obj, const char *key, bool *present) {
    json_t *v = json_object_get(obj, key);
    if (json_is_null(v)) v = NULL;
    if (present != NULL) *present = v != NULL;
    return v;
}

bool api_get_bool(json_t *obj, const char *key, bool *out, bool *present, api_response *res) {
    json_t *v = field(obj, key, present);
    if (v == NULL) return true;
    if (!json_is_boolean(v)) {
        api_error(res, 400, key, "invalid_type", "'%s' must be a boolean.", key);
        return false;
    }
    *out = json_is_true(v);
    return true;
}

bool api_get_number(json_t *obj, const char *key, double min, double max, double *out,
                    bool *present, api_response *res) {
    json_t *v = field(obj, key, present);
    if (v == NULL) return true;
    if (!json_is_number(v)) {
        api_error(res, 400, key, "invalid_type", "'%s' must be a number.", key);
        return false;
    }
    double d = json_number_value(v);
    if (!isfinite(d) || d < min || d > max) {
        api_error(res, 400, key, "invalid_value", "'%s' must be between %g and %g; got %g.", key,
                  min, max, d);
        return false;
    }
    *out = d;
    return true;
}

bool api_get_int(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                 bool *present, api_response *res) {
    json_t *v = field(obj, key, present);
    if (v == NULL) return true;
    /* 3.0 is accepted as an integer, as JSON does not distinguish them. */
    bool integral =
        json_is_integer(v) || (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v) &&
                               fabs(json_real_value(v)) < 9e15);
    if (!integral) {
        api_error(res, 400, key, "invalid_type", "'%s' must be an integer.", key);
        return false;
    }
    int64_t i = json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)json_real_value(v);
    if (i < min || i > max) {
        api_error(res, 400, key, "invalid_value", "'%s' must be between %lld and %lld; got %lld.",
                  key, (long long)min, (long long)max, (long long)i);
        return false;
    }
    *out = i;
    return true;
}

bool api_get_string(json_t *obj, const char *key, size_t max_len, const char **out, bool *present,
                    api_response *res) {
    json_t *v = field(obj, key, present);
    if (v == NULL) return true;
    if (!json_is_string(v)) {
        api_error(res, 400, key, "invalid_type", "'%s' must be a string.", key);
        return false;
    }
    if (json_string_length(v) > max_len) {
        api_error(res, 400, key, "string_above_max_length", "'%s' is longer than %zu bytes.", key,
                  max_len);
        return false;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        api_error(res, 400, key, "invalid_value", "'%s' must not contain NUL characters.", key);
        return false;
    }
    *out = json_string_value(v);
    return true;
}

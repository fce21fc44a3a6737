#include "server/multipart.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define MP_MAX_HEADERS_BYTES 8192

static bool fail(char *err, size_t err_size, const char *msg) {
    snprintf(err, err_size, "%s", msg);
    return false;
}

/* Boundary characters allowed by RFC 2046 (bchars). */
static bool is_bchar(char c) {
    return isalnum((unsigned char)c) || strchr("'()+_,-./:=? ", c) != NULL;
}

bool mp_boundary(const char *content_type, char *out, size_t out_size) {
    const char *p = content_type;
    while ((p = strcasestr(p, "boundary=")) != NULL) {
        /* Must be a parameter name, not the tail of another one. */
        if (p == content_type || p[-1] == ';' || p[-1] == ' ' || p[-1] == '\t') break;
        p++;
    }
    if (p == NULL) return false;
    p += strlen("boundary=");
    bool quoted = *p == '"';
    if (quoted) p++;
    size_t n = 0;
    while (p[n] != '\0' && (quoted ? p[n] != '"' : (p[n] != ';' && p[n] != ' ' && p[n] != '\t')))
        n++;
    if (quoted && p[n] != '"') return false;
    if (n == 0 || n > MP_MAX_BOUNDARY || n >= out_size) return false;
    for (size_t i = 0; i < n; i++)
        if (!is_bchar(p[i])) return false;
    if (p[n - 1] == ' ') return false;
    memcpy(out, p, n);
    out[n] = '\0';
    return true;
}

/* Copies the value of parameter `key` (e.g. name="...") from a header value of vlen bytes.
 * Returns false when absent; a value longer than out_size - 1 makes *too_long true. */
static bool header_param(const char *v, size_t vlen, const char *key, char *out, size_t out_size,
                         bool *too_long) {
    size_t klen = strlen(key);
    for (size_t i = 0; i + klen + 1 <= vlen; i++) {
        bool at_start = i == 0 || v[i - 1] == ';' || v[i - 1] == ' ' || v[i - 1] == '\t';
        if (!at_start || strncasecmp(v + i, key, klen) != 0 || v[i + klen] != '=') continue;
        size_t j = i + klen + 1;
        bool quoted = j < vlen && v[j] == '"';
        if (quoted) j++;
        size_t n = 0;
        while (j < vlen) {
            char c = v[j];
            if (quoted ? c == '"' : (c == ';' || c == ' ' || c == '\t')) break;
            if (quoted && c == '\\' && j + 1 < vlen) c = v[++j];
            if (n + 1 >= out_size) {
                *too_long = true;
                return false;
            }
            out[n++] = c;
            j++;
        }
        out[n] = '\0';
        return true;
    }
    return false;
}

/* Parses the header block [h, h + len) of one part into part. */
static bool parse_part_headers(const char *h, size_t len, api_form_part *part, char *err,
                               size_t err_size) {
    bool have_disposition = false;
    while (len > 0) {
        const char *eol = memmem(h, len, "\r\n", 2);
        size_t line_len = eol ? (size_t)(eol - h) : len;
        const char *colon = memchr(h, ':', line_len);
        if (colon == NULL) return fail(err, err_size, "a part header has no ':'");
        size_t name_len = (size_t)(colon - h);
        const char *v = colon + 1;
        size_t vlen = line_len - name_len - 1;
        while (vlen > 0 && (*v == ' ' || *v == '\t')) v++, vlen--;
        if (name_len == 19 && strncasecmp(h, "Content-Disposition", 19) == 0) {
            if (vlen < 9 || strncasecmp(v, "form-data", 9) != 0)
                return fail(err, err_size, "a part's Content-Disposition is not form-data");
            bool too_long = false;
            if (!header_param(v, vlen, "name", part->name, sizeof part->name, &too_long))
                return fail(err, err_size,
                            too_long ? "a part's name is too long" : "a part has no name");
            part->has_filename =
                header_param(v, vlen, "filename", part->filename, sizeof part->filename, &too_long);
            if (too_long) return fail(err, err_size, "a part's filename is too long");
            have_disposition = true;
        } else if (name_len == 12 && strncasecmp(h, "Content-Type", 12) == 0) {
            if (vlen >= sizeof part->content_type)
                return fail(err, err_size, "a part's Content-Type is too long");
            memcpy(part->content_type, v, vlen);
            part->content_type[vlen] = '\0';
        }
        if (eol == NULL) break;
        len -= line_len + 2;
        h = eol + 2;
    }
    if (!have_disposition) return fail(err, err_size, "a part has no Content-Disposition");
    return true;
}

bool mp_parse(const char *body, size_t len, const char *boundary, api_form *form, char *err,
              size_t err_size) {
    char delim[MP_MAX_BOUNDARY + 5]; /* "\r\n--" + boundary */
    size_t blen = strlen(boundary);
    if (blen == 0 || blen > MP_MAX_BOUNDARY) return fail(err, err_size, "invalid boundary");
    int dlen = snprintf(delim, sizeof delim, "\r\n--%s", boundary);
    form->n = 0;

    /* The first delimiter may start the body (without the leading CRLF). */
    const char *p;
    if (len >= (size_t)dlen - 2 && memcmp(body, delim + 2, (size_t)dlen - 2) == 0) {
        p = body + dlen - 2;
    } else {
        const char *d = memmem(body, len, delim, (size_t)dlen);
        if (d == NULL) return fail(err, err_size, "the body has no multipart boundary");
        p = d + dlen;
    }
    const char *end = body + len;
    for (;;) {
        /* After a delimiter: "--" closes the body, otherwise (padding then) CRLF. */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return true;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return fail(err, err_size, "the body ends before its closing boundary");
        p += 2;
        if (form->n == API_FORM_MAX_PARTS) return fail(err, err_size, "too many parts");
        const char *hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        /* A part without headers has its blank line right away. */
        size_t hlen;
        const char *data;
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            hlen = 0;
            data = p + 2;
        } else {
            if (hend == NULL) return fail(err, err_size, "a part's headers do not end");
            hlen = (size_t)(hend - p);
            data = hend + 4;
        }
        if (hlen > MP_MAX_HEADERS_BYTES)
            return fail(err, err_size, "a part's headers are too long");
        api_form_part *part = &form->parts[form->n];
        memset(part, 0, sizeof *part);
        if (!parse_part_headers(p, hlen, part, err, err_size)) return false;
        const char *next = memmem(data, (size_t)(end - data), delim, (size_t)dlen);
        if (next == NULL) return fail(err, err_size, "a part does not end with the boundary");
        part->data = data;
        part->len = (size_t)(next - data);
        form->n++;
        p = next + dlen;
    }
}

#include "util/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool buf_reserve(fl_buf *b, size_t extra) {
    if (extra > SIZE_MAX - b->len - 1) return false;
    size_t need = b->len + extra + 1;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (p == NULL) return false;
    b->data = p;
    b->cap = cap;
    return true;
}

bool fl_buf_append(fl_buf *b, const void *bytes, size_t n) {
    if (!buf_reserve(b, n)) return false;
    if (n > 0) memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

bool fl_buf_puts(fl_buf *b, const char *s) {
    return fl_buf_append(b, s, strlen(s));
}

bool fl_buf_printf(fl_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n)) return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

void fl_buf_consume(fl_buf *b, size_t n) {
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data != NULL) b->data[b->len] = '\0';
}

char *fl_buf_take(fl_buf *b, size_t *len) {
    if (b->data == NULL && !buf_reserve(b, 0)) return NULL;
    char *p = b->data;
    if (len != NULL) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void fl_buf_free(fl_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

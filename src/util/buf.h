/* A growable byte buffer that is always NUL-terminated. */
#ifndef FLUID_UTIL_BUF_H
#define FLUID_UTIL_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct fl_buf {
    char *data; /* NULL until the first append */
    size_t len;
    size_t cap;
} fl_buf;

/* Each returns false (and leaves the buffer as it was) when memory runs out. */
bool fl_buf_append(fl_buf *b, const void *bytes, size_t n);
bool fl_buf_puts(fl_buf *b, const char *s);
bool fl_buf_printf(fl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void fl_buf_consume(fl_buf *b, size_t n);
/* Hands the bytes to the caller (who free()s them) and empties the buffer. Never NULL unless
 * memory runs out. */
char *fl_buf_take(fl_buf *b, size_t *len);
void fl_buf_free(fl_buf *b);

#endif

#include "support/detok.h"

#include <setjmp.h>
#include <stdarg.h>
#include <string.h>

#include <cmocka.h>

size_t test_detok_all(const fluid_vocab *v, const int32_t *ids, size_t n, bool render, char *out,
                      size_t cap) {
    fluid_detok *d = fluid_detok_create(v, render);
    assert_non_null(d);
    size_t o = 0, len;
    for (size_t i = 0; i <= n; i++) {
        const char *piece = i < n ? fluid_detok_push(d, ids[i], &len) : fluid_detok_flush(d, &len);
        assert_non_null(piece);
        assert_true(o + len < cap);
        memcpy(out + o, piece, len);
        o += len;
    }
    out[o] = '\0';
    fluid_detok_free(d);
    return o;
}

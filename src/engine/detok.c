/* From tokens back to bytes: each token's piece (fluid_token_bytes), and a streaming
 * detokenizer that only ever hands out whole, valid UTF-8. */
#include "engine/vocab_impl.h"

#include <stdlib.h>
#include <string.h>

/* Copies what fits into buf and counts every byte. */
typedef struct sink {
    char *buf;
    size_t size, n;
} sink;

static void put(sink *s, const char *p, size_t len) {
    if (s->n < s->size) {
        size_t room = s->size - s->n;
        memcpy(s->buf + s->n, p, len < room ? len : room);
    }
    s->n += len;
}

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* The byte of a "<0xXX>" token, or -1. */
static int byte_of(const fl_token *t) {
    if (t->len != 6 || memcmp(t->text, "<0x", 3) != 0 || t->text[5] != '>') return -1;
    int hi = hex_digit(t->text[3]), lo = hex_digit(t->text[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* SentencePiece-style text: U+2581 stands for a space. */
static void put_unescaped(sink *s, const char *p, size_t len) {
    size_t i = 0, start = 0;
    while (i + 3 <= len) {
        if (memcmp(p + i, "\xe2\x96\x81", 3) == 0) {
            put(s, p + start, i - start);
            put(s, " ", 1);
            i += 3;
            start = i;
        } else {
            i++;
        }
    }
    put(s, p + start, len - start);
}

/* Byte-level BPE text: every character stands for one byte (others are kept as they are). */
static void put_byte_decoded(sink *s, const char *p, size_t len) {
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = fl_utf8_decode(p + i, len - i, &cp);
        int b = n ? fl_cp_to_byte(cp) : -1;
        if (n == 0) n = 1;
        if (b >= 0) {
            char c = (char)b;
            put(s, &c, 1);
        } else {
            put(s, p + i, n);
        }
        i += n;
    }
}

static void token_piece(const fluid_vocab *v, int32_t token, bool render_special, sink *s) {
    if (!v || token < 0 || token >= v->n_tokens) return;
    const fl_token *t = &v->tokens[token];
    if (t->attr & (FL_ATTR_CONTROL | FL_ATTR_UNKNOWN)) {
        if (render_special) put(s, t->text, t->len);
    } else if (t->attr & FL_ATTR_USER_DEFINED) {
        put(s, t->text, t->len);
    } else if (t->attr & FL_ATTR_BYTE) {
        int b = byte_of(t);
        char c = (char)b;
        if (b >= 0)
            put(s, &c, 1);
        else
            put(s, t->text, t->len);
    } else if (t->attr & FL_ATTR_NORMAL) {
        if (v->kind == FL_VOCAB_BPE && v->byte_encode)
            put_byte_decoded(s, t->text, t->len);
        else
            put_unescaped(s, t->text, t->len);
    }
    /* unused and undefined tokens stand for nothing */
}

size_t fluid_token_bytes(const fluid_vocab *v, int32_t token, bool render_special, char *buf,
                         size_t size) {
    sink s = {.buf = buf, .size = buf ? size : 0};
    token_piece(v, token, render_special, &s);
    return s.n;
}

/* ---- streaming ---- */

struct fluid_detok {
    const fluid_vocab *v;
    bool render_special;
    char *pending; /* bytes not handed out yet: the start of an unfinished character */
    size_t n_pending, cap_pending;
    char *out;
    size_t cap_out;
};

fluid_detok *fluid_detok_create(const fluid_vocab *v, bool render_special) {
    if (!v) return NULL;
    fluid_detok *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->v = v;
    d->render_special = render_special;
    return d;
}

void fluid_detok_free(fluid_detok *d) {
    if (!d) return;
    free(d->pending);
    free(d->out);
    free(d);
}

static bool reserve(char **p, size_t *cap, size_t need) {
    if (need <= *cap) return true;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) cap2 *= 2;
    char *q = realloc(*p, cap2);
    if (!q) return false;
    *p = q;
    *cap = cap2;
    return true;
}

/* How many bytes from s[0..len) are a start of some valid multi-byte UTF-8 sequence; 0 when
 * s[0] cannot start one. */
static size_t valid_start_len(const unsigned char *s, size_t len) {
    size_t need = fl_utf8_len(s[0]);
    if (need == 1 || s[0] < 0xc2 || s[0] > 0xf4) return 0;
    size_t i = 1;
    for (; i < need && i < len; i++) {
        unsigned char lo = 0x80, hi = 0xbf;
        if (i == 1) {
            if (s[0] == 0xe0) lo = 0xa0;
            if (s[0] == 0xed) hi = 0x9f;
            if (s[0] == 0xf0) lo = 0x90;
            if (s[0] == 0xf4) hi = 0x8f;
        }
        if (s[i] < lo || s[i] > hi) break;
    }
    return i;
}

/* Moves the complete characters of `pending` to `out` (invalid runs become U+FFFD); an
 * unfinished character at the end stays pending unless `final`. Returns the bytes written. */
static size_t drain(fluid_detok *d, bool final) {
    const unsigned char *p = (const unsigned char *)d->pending;
    size_t n = d->n_pending, i = 0, o = 0;
    while (i < n) {
        uint32_t cp;
        size_t k = fl_utf8_decode(d->pending + i, n - i, &cp);
        if (k > 0) {
            memcpy(d->out + o, d->pending + i, k);
            o += k;
            i += k;
            continue;
        }
        size_t run = valid_start_len(p + i, n - i);
        if (run > 0 && i + run == n && !final) break; /* an unfinished character */
        o += fl_utf8_encode(0xfffd, d->out + o);
        i += run > 0 ? run : 1;
    }
    if (i > 0 && i < n) memmove(d->pending, d->pending + i, n - i);
    d->n_pending = n - i;
    return o;
}

const char *fluid_detok_push(fluid_detok *d, int32_t token, size_t *len) {
    if (len) *len = 0;
    if (!d) return NULL;
    size_t piece = fluid_token_bytes(d->v, token, d->render_special, NULL, 0);
    /* the output can grow by U+FFFD (3 bytes) per pending byte at worst */
    size_t total = d->n_pending + piece;
    if (!reserve(&d->pending, &d->cap_pending, total + 1) ||
        !reserve(&d->out, &d->cap_out, total * 3 + 1))
        return NULL;
    fluid_token_bytes(d->v, token, d->render_special, d->pending + d->n_pending, piece);
    d->n_pending = total;
    size_t n = drain(d, false);
    d->out[n] = '\0';
    if (len) *len = n;
    return d->out;
}

const char *fluid_detok_flush(fluid_detok *d, size_t *len) {
    if (len) *len = 0;
    if (!d) return NULL;
    if (!reserve(&d->out, &d->cap_out, d->n_pending * 3 + 1)) return NULL;
    size_t n = drain(d, true);
    d->out[n] = '\0';
    if (len) *len = n;
    return d->out;
}

/* UTF-8 helpers and GPT-2's byte-level alphabet. */
#include "engine/vocab_impl.h"

#include <stdlib.h>
#include <string.h>

size_t fl_utf8_decode(const char *s, size_t len, uint32_t *cp) {
    const unsigned char *u = (const unsigned char *)s;
    if (len == 0) return 0;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    size_t n = fl_utf8_len(u[0]);
    if (n == 1 || n > len || u[0] > 0xf4) return 0;
    uint32_t c = u[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (u[i] & 0x3f);
    }
    static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_for_len[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return n;
}

size_t fl_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t fl_utf8_valid_prefix(const char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        if ((unsigned char)s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = fl_utf8_decode(s + i, len - i, &cp);
        if (n == 0) break;
        i += n;
    }
    return i;
}

char *fl_utf8_sanitize(const char *s, size_t len, size_t *out_len) {
    /* every invalid byte becomes 3 bytes at most */
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    size_t o = 0, i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = fl_utf8_decode(s + i, len - i, &cp);
        if (n == 0) {
            o += fl_utf8_encode(0xfffd, out + o);
            i++;
        } else {
            memcpy(out + o, s + i, n);
            o += n;
            i += n;
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

/* Bytes that are printable characters stand for themselves; the others take the code points
 * from 256 on, in byte order: 0x00-0x20 (33 bytes), 0x7f-0xa0 (34 bytes), then 0xad. */
uint32_t fl_byte_to_cp(uint8_t b) {
    if (b <= 0x20) return 256u + b;
    if (b >= 0x7f && b <= 0xa0) return 256u + 33u + (b - 0x7fu);
    if (b == 0xad) return 256u + 67u;
    return b;
}

int fl_cp_to_byte(uint32_t cp) {
    if (cp < 256) return fl_byte_to_cp((uint8_t)cp) == cp ? (int)cp : -1;
    if (cp < 256 + 33) return (int)(cp - 256);
    if (cp < 256 + 67) return (int)(0x7f + cp - 256 - 33);
    if (cp == 256 + 67) return 0xad;
    return -1;
}

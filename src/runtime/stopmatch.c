#include "runtime/stopmatch.h"

#include <stdlib.h>
#include <string.h>

void rt_stopper_init(rt_stopper *s, const char *const *stops, size_t n_stops) {
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < n_stops && s->n_stops < RT_MAX_STOP; i++) {
        if (stops[i] == NULL || stops[i][0] == '\0') continue;
        s->stops[s->n_stops] = stops[i];
        s->stop_lens[s->n_stops] = strlen(stops[i]);
        s->n_stops++;
    }
}

void rt_stopper_free(rt_stopper *s) {
    free(s->buf);
    s->buf = NULL;
    s->len = s->cap = 0;
}

bool rt_stopper_push(rt_stopper *s, const char *text, size_t len) {
    if (s->len + len + 1 > s->cap) {
        size_t cap = s->cap > 0 ? s->cap : 64;
        while (cap < s->len + len + 1) cap *= 2;
        char *grown = realloc(s->buf, cap);
        if (grown == NULL) return false;
        s->buf = grown;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, text, len);
    s->len += len;
    s->buf[s->len] = '\0';
    return true;
}

/* The earliest position where a whole stop string occurs, or len when none does. */
static size_t first_match(const rt_stopper *s) {
    size_t best = s->len;
    for (size_t i = 0; i < s->n_stops; i++) {
        size_t n = s->stop_lens[i];
        for (size_t at = 0; at + n <= s->len && at < best; at++)
            if (memcmp(s->buf + at, s->stops[i], n) == 0) {
                best = at;
                break;
            }
    }
    return best;
}

/* Length of the longest tail of buf that is a proper prefix of some stop string. */
static size_t longest_partial(const rt_stopper *s) {
    size_t keep = 0;
    for (size_t i = 0; i < s->n_stops; i++) {
        size_t n = s->stop_lens[i];
        size_t max = n - 1 < s->len ? n - 1 : s->len;
        for (size_t k = max; k > keep; k--)
            if (memcmp(s->buf + s->len - k, s->stops[i], k) == 0) {
                keep = k;
                break;
            }
    }
    return keep;
}

size_t rt_stopper_ready(rt_stopper *s, bool at_end) {
    if (s->matched) return first_match(s);
    size_t at = first_match(s);
    if (at < s->len) {
        s->matched = true;
        return at;
    }
    return at_end ? s->len : s->len - longest_partial(s);
}

void rt_stopper_consume(rt_stopper *s, size_t n) {
    if (n >= s->len) {
        s->len = 0;
    } else {
        memmove(s->buf, s->buf + n, s->len - n);
        s->len -= n;
    }
    if (s->buf != NULL) s->buf[s->len] = '\0';
}

/* Stop strings over streamed text: text that could still be the start of a stop string is held
 * back; a complete match cuts the text before it. */
#ifndef FLUID_RUNTIME_STOPMATCH_H
#define FLUID_RUNTIME_STOPMATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/runtime.h"

typedef struct rt_stopper {
    const char *stops[RT_MAX_STOP]; /* borrowed; empty strings are ignored */
    size_t stop_lens[RT_MAX_STOP];
    size_t n_stops;
    char *buf; /* text not yet released */
    size_t len, cap;
    bool matched;
} rt_stopper;

void rt_stopper_init(rt_stopper *s, const char *const *stops, size_t n_stops);
void rt_stopper_free(rt_stopper *s);

/* Appends text. Returns false when out of memory. */
bool rt_stopper_push(rt_stopper *s, const char *text, size_t len);

/* How many bytes at the start of s->buf are final (may be emitted). After a match (s->matched)
 * these are the bytes before the stop string and nothing more will be released. With at_end,
 * nothing is held back for a possible later match. */
size_t rt_stopper_ready(rt_stopper *s, bool at_end);

/* Forgets the first n bytes of s->buf (after the caller emitted them). */
void rt_stopper_consume(rt_stopper *s, size_t n);

#endif

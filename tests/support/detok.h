/* Decoding token ids back to text in tests. */
#ifndef FLUID_TESTS_DETOK_H
#define FLUID_TESTS_DETOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fluid/fluid.h"

/* The text of ids through the streaming detokenizer (render: special tokens as text), written
 * to out with a NUL after it; returns its length. Fails the test when cap is too small. */
size_t test_detok_all(const fluid_vocab *v, const int32_t *ids, size_t n, bool render, char *out,
                      size_t cap);

#endif

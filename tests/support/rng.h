/* Deterministic pseudo-random numbers for tests (xorshift64): the same seed gives the same
 * inputs on every machine and run, so a failure can be replayed. */
#ifndef FLUID_TESTS_RNG_H
#define FLUID_TESTS_RNG_H

#include <stdint.h>

/* The next state of *s (which must not be 0), also returned. */
uint64_t test_rng_next(uint64_t *s);

/* Uniform in [-1, 1). */
float test_rng_uniform(uint64_t *s);

/* Normal with mean 0 and deviation 1 (Box-Muller). */
float test_rng_normal(uint64_t *s);

#endif

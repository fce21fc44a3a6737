/* The seeded random numbers behind fluid-synth's weights: splitmix64 for uniform bits and the
 * polar Box-Muller transform for normal samples. Each tensor gets its own stream derived from the
 * seed and its name, so a tensor's values do not depend on the order tensors are written in. */
#ifndef FLUID_SYNTH_RANDOM_H
#define FLUID_SYNTH_RANDOM_H

#include <stdbool.h>
#include <stdint.h>

typedef struct synth_rng {
    uint64_t state;
    bool has_spare;
    double spare;
} synth_rng;

void synth_rng_seed(synth_rng *r, uint64_t seed, const char *stream_name);
uint64_t synth_rng_next(synth_rng *r);
/* A sample of the standard normal distribution. */
double synth_rng_normal(synth_rng *r);

#endif

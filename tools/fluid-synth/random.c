#include "fluid-synth/random.h"

#include <math.h>

static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void synth_rng_seed(synth_rng *r, uint64_t seed, const char *stream_name) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the name */
    for (const char *p = stream_name; *p != '\0'; p++) {
        h ^= (uint8_t)*p;
        h *= 1099511628211ull;
    }
    r->state = mix(seed) ^ h;
    r->has_spare = false;
    r->spare = 0.0;
}

uint64_t synth_rng_next(synth_rng *r) {
    r->state += 0x9e3779b97f4a7c15ull;
    return mix(r->state);
}

/* Uniform in [-1, 1). */
static double uniform_signed(synth_rng *r) {
    return (double)(synth_rng_next(r) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* Marsaglia's polar form of the Box-Muller transform: a point drawn uniformly in the unit disc
 * gives two independent normal samples without sin/cos. */
double synth_rng_normal(synth_rng *r) {
    if (r->has_spare) {
        r->has_spare = false;
        return r->spare;
    }
    double u, v, s;
    do {
        u = uniform_signed(r);
        v = uniform_signed(r);
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double scale = sqrt(-2.0 * log(s) / s);
    r->spare = v * scale;
    r->has_spare = true;
    return u * scale;
}

#include "support/rng.h"

#include <math.h>

uint64_t test_rng_next(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* The top 53 bits as a double in [0, 1), plus `offset` units of 2^-53. */
static double unit_interval(uint64_t *s, double offset) {
    return ((double)(test_rng_next(s) >> 11) + offset) / 9007199254740992.0;
}

float test_rng_uniform(uint64_t *s) {
    return (float)(2.0 * unit_interval(s, 0.0) - 1.0);
}

float test_rng_normal(uint64_t *s) {
    double u1 = unit_interval(s, 0.5); /* in (0, 1): log(u1) is finite */
    double u2 = unit_interval(s, 0.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

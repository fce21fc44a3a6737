#include <immintrin.h>

#include "fluid-bench/bench.h"

uint64_t bench_read_avx2(const void *buf, size_t bytes) {
    const __m256i *p = buf;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < bytes / 32; i += 8) {
        a0 = _mm256_add_epi64(
            a0, _mm256_xor_si256(_mm256_load_si256(p + i), _mm256_load_si256(p + i + 1)));
        a1 = _mm256_add_epi64(
            a1, _mm256_xor_si256(_mm256_load_si256(p + i + 2), _mm256_load_si256(p + i + 3)));
        a2 = _mm256_add_epi64(
            a2, _mm256_xor_si256(_mm256_load_si256(p + i + 4), _mm256_load_si256(p + i + 5)));
        a3 = _mm256_add_epi64(
            a3, _mm256_xor_si256(_mm256_load_si256(p + i + 6), _mm256_load_si256(p + i + 7)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t out[4];
    _mm256_storeu_si256((__m256i *)out, s);
    return out[0] + out[1] + out[2] + out[3];
}

/* Weight-code decoding shared by the x86 dot-product kernels (kernels_x86.h) and the x86 GEMM
 * panel decoders (gemm_x86.h): 256-bit AVX2 operations, which every including file has.
 * Not a public header. */
#ifndef FLUID_ENGINE_X86_CODES_H
#define FLUID_ENGINE_X86_CODES_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* 16 bytes of packed nibbles -> 32 codes: low nibbles are elements 0..15, high ones 16..31. */
static inline __attribute__((always_inline)) __m256i x86_nibbles32(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    __m128i m = _mm_set1_epi8(15);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
}

/* Bit i of the little-endian 32-bit word at qh -> 0x10 in byte i (else 0). */
static inline __attribute__((always_inline)) __m256i x86_fifth_bits(const uint8_t *qh) {
    uint32_t bits;
    memcpy(&bits, qh, 4);
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                            2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201);
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), spread);
    v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

#endif

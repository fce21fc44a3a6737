/* AVX2 GEMM micro-kernels: 8 rows per vector; the u8 x s8 step is maddubs (pairs into int16)
 * then madd (into int32). maddubs saturates above 32767, which codes below 64 never reach; the
 * Q8_0 codes (offset 128) are turned back into signed weights instead, their magnitude
 * multiplying the activation with the weight's sign (at most 2 x 128 x 127 per pair). */
#include <immintrin.h>
#include <stdbool.h>

#define GX_LANES 8
#define GX_RV 1
#define GX_NR 4
#define GX_FRV 2
#define GX_FNR 4
#define GX_VF __m256
#define GX_VI __m256i
#define GX_WIDE_FROM_ZERO 1

#define gx_zf() _mm256_setzero_ps()
#define gx_zi() _mm256_setzero_si256()
#define gx_loadf(p) _mm256_loadu_ps(p)
#define gx_loadi(p) _mm256_loadu_si256((const __m256i *)(p))
#define gx_storef(p, v) _mm256_storeu_ps(p, v)
#define gx_bcastf(f) _mm256_set1_ps(f)
#define gx_bcasti(i) _mm256_set1_epi32(i)
#define gx_fmadd(a, b, c) _mm256_fmadd_ps(a, b, c)
#define gx_mulf(a, b) _mm256_mul_ps(a, b)
#define gx_cvt(v) _mm256_cvtepi32_ps(v)

/* wide: p0 = |w|, p1 = w for the signed weight w = code - 128; else p0 = the codes. */
static inline __attribute__((always_inline)) void gx_prep(__m256i u, bool wide, __m256i *p0,
                                                          __m256i *p1) {
    if (wide) {
        *p1 = _mm256_xor_si256(u, _mm256_set1_epi8((char)0x80));
        *p0 = _mm256_abs_epi8(*p1);
    } else {
        *p0 = u;
        *p1 = u;
    }
}

static inline __attribute__((always_inline)) __m256i gx_dot(__m256i acc, __m256i p0, __m256i p1,
                                                            __m256i a, bool wide) {
    if (wide) a = _mm256_sign_epi8(a, p1);
    __m256i pairs = _mm256_maddubs_epi16(p0, a);
    return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}

#include "engine/gemm_x86.h"

const fl_gemm_table fl_gemm_avx2_table = GX_TABLE;

/* AVX-512 GEMM micro-kernels (F/BW/VL/DQ + VNNI): 16 rows per vector, every code x activation
 * step one dpbusd (unsigned codes, so the 128-offset Q8_0 codes need nothing special). */
#include <immintrin.h>
#include <stdbool.h>

#define GX_LANES 16
#define GX_RV 2
#define GX_NR 4
#define GX_FRV 2
#define GX_FNR 8
#define GX_VF __m512
#define GX_VI __m512i
#define GX_WIDE_FROM_ZERO 0

#define gx_zf() _mm512_setzero_ps()
#define gx_zi() _mm512_setzero_si512()
#define gx_loadf(p) _mm512_loadu_ps(p)
#define gx_loadi(p) _mm512_loadu_si512((const void *)(p))
#define gx_storef(p, v) _mm512_storeu_ps(p, v)
#define gx_bcastf(f) _mm512_set1_ps(f)
#define gx_bcasti(i) _mm512_set1_epi32(i)
#define gx_fmadd(a, b, c) _mm512_fmadd_ps(a, b, c)
#define gx_mulf(a, b) _mm512_mul_ps(a, b)
#define gx_cvt(v) _mm512_cvtepi32_ps(v)

static inline __attribute__((always_inline)) void gx_prep(__m512i u, bool wide, __m512i *p0,
                                                          __m512i *p1) {
    (void)wide;
    *p0 = u;
    *p1 = u;
}

static inline __attribute__((always_inline)) __m512i gx_dot(__m512i acc, __m512i p0, __m512i p1,
                                                            __m512i a, bool wide) {
    (void)p1;
    (void)wide;
    return _mm512_dpbusd_epi32(acc, p0, a);
}

#include "engine/gemm_x86.h"

const fl_gemm_table fl_gemm_avx512_table = GX_TABLE;

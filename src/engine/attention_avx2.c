/* fl_attention's pieces on 256-bit vectors (AVX2 + FMA). */
#include <immintrin.h>
#include <math.h>

#define AX_LANES 8
#define AX_VF __m256

static inline float ax_hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    return _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)));
}

static inline float ax_hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

#define ax_zero() _mm256_setzero_ps()
#define ax_load(p) _mm256_loadu_ps(p)
#define ax_store(p, v) _mm256_storeu_ps(p, v)
#define ax_bcast(f) _mm256_set1_ps(f)
#define ax_add(a, b) _mm256_add_ps(a, b)
#define ax_mul(a, b) _mm256_mul_ps(a, b)
#define ax_div(a, b) _mm256_div_ps(a, b)
#define ax_fmadd(a, b, c) _mm256_fmadd_ps(a, b, c)
#define ax_max(a, b) _mm256_max_ps(a, b)
#define ax_hmax(v) ax_hmax8(v)
#define ax_hsum(v) ax_hsum8(v)
#define ax_round(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define ax_pow2(n)                                                                                 \
    _mm256_castsi256_ps(                                                                           \
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define ax_keep_ge(r, x, lim) _mm256_and_ps(r, _mm256_cmp_ps(x, ax_bcast(lim), _CMP_GE_OQ))

#include "engine/attention_x86.h"

const fl_attn_table fl_attn_avx2_table = AX_TABLE;

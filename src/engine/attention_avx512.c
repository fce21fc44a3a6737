/* fl_attention's pieces on 512-bit vectors (AVX-512 F). */
#include <immintrin.h>
#include <math.h>

#define AX_LANES 16
#define AX_VF __m512
#define ax_zero() _mm512_setzero_ps()
#define ax_load(p) _mm512_loadu_ps(p)
#define ax_store(p, v) _mm512_storeu_ps(p, v)
#define ax_bcast(f) _mm512_set1_ps(f)
#define ax_add(a, b) _mm512_add_ps(a, b)
#define ax_mul(a, b) _mm512_mul_ps(a, b)
#define ax_div(a, b) _mm512_div_ps(a, b)
#define ax_fmadd(a, b, c) _mm512_fmadd_ps(a, b, c)
#define ax_max(a, b) _mm512_max_ps(a, b)
#define ax_hmax(v) _mm512_reduce_max_ps(v)
#define ax_hsum(v) _mm512_reduce_add_ps(v)
#define ax_round(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define ax_pow2(n)                                                                                 \
    _mm512_castsi512_ps(                                                                           \
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define ax_keep_ge(r, x, lim)                                                                      \
    _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, ax_bcast(lim), _CMP_GE_OQ), r)

#include "engine/attention_x86.h"

const fl_attn_table fl_attn_avx512_table = AX_TABLE;

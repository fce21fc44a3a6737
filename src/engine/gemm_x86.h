/* x86 GEMM micro-kernels, shared by gemm_avx2.c and gemm_avx512.c. The including file defines
 * the vector types and the few operations that differ:
 *
 *   GX_VF, GX_VI                float / integer vector types of GX_LANES 32-bit lanes
 *   GX_RV, GX_NR                quantized tile: GX_RV vectors of rows x up to GX_NR tokens
 *   GX_FRV, GX_FNR              float tile: the same for float weights
 *   gx_zf() gx_zi() gx_loadf(p) gx_loadi(p) gx_storef(p, v) gx_bcastf(f) gx_bcasti(i)
 *   gx_fmadd(a, b, c) gx_mulf(a, b) gx_cvt(vi)
 *   gx_prep(u, wide, &p0, &p1)  per panel vector: what the dot needs from the codes u
 *   gx_dot(acc, p0, p1, a, wide) acc + (sum of 4 code x activation byte products per lane)
 *   GX_WIDE_FROM_ZERO           1 if the wide (offset 128) dot undoes the offset itself
 *
 * A tile keeps its accumulators in registers: per group, integer sums start from the
 * activation's start value, take group/4 dot steps (one panel load per row vector, one 4-byte
 * activation broadcast per token), then are converted, scaled and added to float sums. The
 * operations and their order are those of the scalar micro-kernel, so results are identical.
 * Not a public header: include it only from those files. */
#ifndef FLUID_ENGINE_GEMM_X86_H
#define FLUID_ENGINE_GEMM_X86_H

#include <immintrin.h>
#include <string.h>

#include "engine/gemm_impl.h"
#include "engine/quant.h"
#include "engine/x86_codes.h"

#define GX_INLINE static inline __attribute__((always_inline))
#define GX_UNROLL _Pragma("GCC unroll 16")

enum { GX_PR = GX_LANES * GX_RV, GX_FPR = GX_LANES * GX_FRV };

GX_INLINE int32_t gx_load32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Stores the first n (> 0) lanes of v. */
GX_INLINE void gx_store_rows(float *y, GX_VF v, int n) {
    if (n >= GX_LANES) {
        gx_storef(y, v);
        return;
    }
    float tmp[GX_LANES];
    gx_storef(tmp, v);
    memcpy(y, tmp, (size_t)n * sizeof(float));
}

GX_INLINE void gx_qtile(const fl_gemm_qcall *c, int t0, const int nt, const int group,
                        const bool has_min, const bool wide) {
    const fl_gemm_acts *a = c->acts;
    const size_t k = (size_t)a->k, ng = (size_t)a->n_groups;
    const size_t gb = (size_t)group * GX_PR + GX_PR * sizeof(float) * (has_min ? 2u : 1u);
    GX_VF acc[GX_NR][GX_RV];
    GX_UNROLL for (int t = 0; t < nt; t++) GX_UNROLL for (int r = 0; r < GX_RV; r++) acc[t][r] =
        gx_zf();
    for (size_t g = 0; g < ng; g++) {
        const uint8_t *pg = c->panel + g * gb;
        const int8_t *ag = a->codes + (size_t)t0 * k + g * (size_t)group;
        GX_VI ia[GX_NR][GX_RV];
        GX_UNROLL for (int t = 0; t < nt; t++) {
            GX_VI v = wide && GX_WIDE_FROM_ZERO ? gx_zi() : gx_bcasti(a->init[(t0 + t) * ng + g]);
            GX_UNROLL for (int r = 0; r < GX_RV; r++) ia[t][r] = v;
        }
        GX_UNROLL for (int s = 0; s < group / 4; s++) {
            GX_VI p0[GX_RV], p1[GX_RV];
            GX_UNROLL for (int r = 0; r < GX_RV; r++) gx_prep(
                gx_loadi(pg + (size_t)(s * GX_PR + r * GX_LANES) * 4), wide, &p0[r], &p1[r]);
            GX_UNROLL for (int t = 0; t < nt; t++) {
                GX_VI av = gx_bcasti(gx_load32(ag + (size_t)t * k + 4 * s));
                GX_UNROLL for (int r = 0; r < GX_RV; r++) ia[t][r] =
                    gx_dot(ia[t][r], p0[r], p1[r], av, wide);
            }
        }
        const float *sc = (const float *)(pg + (size_t)group * GX_PR);
        GX_UNROLL for (int r = 0; r < GX_RV; r++) {
            GX_VF dw = gx_loadf(sc + r * GX_LANES);
            GX_VF mw = has_min ? gx_loadf(sc + GX_PR + r * GX_LANES) : gx_zf();
            GX_UNROLL for (int t = 0; t < nt; t++) {
                size_t at = (size_t)(t0 + t) * ng + g;
                GX_VF f = gx_mulf(gx_cvt(ia[t][r]), gx_bcastf(a->scale[at]));
                acc[t][r] = gx_fmadd(f, dw, acc[t][r]);
                if (has_min) acc[t][r] = gx_fmadd(mw, gx_bcastf(a->scaled_sum[at]), acc[t][r]);
            }
        }
    }
    GX_UNROLL for (int t = 0; t < nt; t++) GX_UNROLL for (int r = 0; r < GX_RV; r++) {
        if (r * GX_LANES < c->rows)
            gx_store_rows(c->y + (size_t)(t0 + t) * c->y_stride + r * GX_LANES, acc[t][r],
                          c->rows - r * GX_LANES);
    }
}

GX_INLINE void gx_ftile(const fl_gemm_fcall *c, int t0, const int nt) {
    GX_VF acc[GX_FNR][GX_FRV];
    GX_UNROLL for (int t = 0; t < nt; t++) GX_UNROLL for (int r = 0; r < GX_FRV; r++) acc[t][r] =
        gx_zf();
    const float *x = c->x + (size_t)t0 * (size_t)c->k;
    for (int64_t i = 0; i < c->k; i++) {
        GX_VF w[GX_FRV];
        GX_UNROLL for (int r = 0; r < GX_FRV; r++) w[r] =
            gx_loadf(c->panel + i * GX_FPR + r * GX_LANES);
        GX_UNROLL for (int t = 0; t < nt; t++) {
            GX_VF xv = gx_bcastf(x[(size_t)t * (size_t)c->k + (size_t)i]);
            GX_UNROLL for (int r = 0; r < GX_FRV; r++) acc[t][r] = gx_fmadd(w[r], xv, acc[t][r]);
        }
    }
    GX_UNROLL for (int t = 0; t < nt; t++) GX_UNROLL for (int r = 0; r < GX_FRV; r++) {
        if (r * GX_LANES < c->rows)
            gx_store_rows(c->y + (size_t)(t0 + t) * c->y_stride + r * GX_LANES, acc[t][r],
                          c->rows - r * GX_LANES);
    }
}

/* ---- panel decoding (AVX2 instructions, which both including files have) -------------------- */

GX_INLINE __m256i gx_low4(__m256i v, int shift) {
    return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(shift)), _mm256_set1_epi8(15));
}

/* The 32 codes of elements 32c .. 32c+31 of a row (as the scalar decoder gives them). */
GX_INLINE __m256i gx_codes32(fl_type type, const uint8_t *row, int64_t c) {
    switch (type) {
    case FL_TYPE_Q8_0:
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(row + c * 34 + 2)),
                                _mm256_set1_epi8((char)0x80));
    case FL_TYPE_Q4_0:
        return x86_nibbles32(row + c * sizeof(fl_block_q4_0) + 2);
    case FL_TYPE_Q5_0: {
        const uint8_t *b = row + c * sizeof(fl_block_q5_0);
        return _mm256_or_si256(x86_nibbles32(b + 6), x86_fifth_bits(b + 2));
    }
    case FL_TYPE_Q4_1:
        return x86_nibbles32(row + c * sizeof(fl_block_q4_1) + 4);
    case FL_TYPE_Q5_1: {
        const uint8_t *b = row + c * sizeof(fl_block_q5_1);
        return _mm256_or_si256(x86_nibbles32(b + 8), x86_fifth_bits(b + 4));
    }
    case FL_TYPE_Q4_K: {
        const fl_block_q4_k *b = (const fl_block_q4_k *)row + c / 8;
        int j = (int)(c % 8);
        return gx_low4(_mm256_loadu_si256((const __m256i *)(b->qs + 32 * (j / 2))), 4 * (j % 2));
    }
    case FL_TYPE_Q5_K: {
        const fl_block_q5_k *b = (const fl_block_q5_k *)row + c / 8;
        int j = (int)(c % 8);
        __m256i low =
            gx_low4(_mm256_loadu_si256((const __m256i *)(b->qs + 32 * (j / 2))), 4 * (j % 2));
        __m256i bit = _mm256_set1_epi8((char)(1 << j));
        __m256i h = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)b->qh), bit);
        return _mm256_or_si256(low,
                               _mm256_and_si256(_mm256_cmpeq_epi8(h, bit), _mm256_set1_epi8(16)));
    }
    default: { /* Q6_K: elements 128h + 32k + l */
        const fl_block_q6_k *b = (const fl_block_q6_k *)row + c / 8;
        int h = (int)(c % 8) / 4, k = (int)(c % 4);
        __m256i low = gx_low4(_mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32 * (k & 1))),
                              4 * (k >> 1));
        __m256i high =
            _mm256_and_si256(_mm256_srl_epi16(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * h)),
                                              _mm_cvtsi32_si128(2 * k)),
                             _mm256_set1_epi8(3));
        return _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
    }
    }
}

/* f16 at p as float. */
GX_INLINE float gx_f16(const void *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* out[0..8) = d * the 8 unsigned bytes of b. */
GX_INLINE void gx_scale8(uint64_t b, float d, float *out) {
    __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)b)));
    _mm256_storeu_ps(out, _mm256_mul_ps(v, _mm256_set1_ps(d)));
}

/* The 6-bit scales and mins of a Q4_K/Q5_K `scales` field, sub-block j in byte j. */
GX_INLINE void gx_k4_unpack(const uint8_t *scales, uint64_t *sc8, uint64_t *m8) {
    uint32_t w[3];
    memcpy(w, scales, 12);
    uint32_t sc_hi = (w[2] & 0x0f0f0f0f) | ((w[0] >> 2) & 0x30303030);
    uint32_t m_hi = ((w[2] >> 4) & 0x0f0f0f0f) | ((w[1] >> 2) & 0x30303030);
    *sc8 = (w[0] & 0x3f3f3f3f) | (uint64_t)sc_hi << 32;
    *m8 = (w[1] & 0x3f3f3f3f) | (uint64_t)m_hi << 32;
}

/* fl_gemm_row_scales with F16C and vector conversions (same values). */
GX_INLINE void gx_row_scales(const fl_type type, const uint8_t *row, int64_t k, float *scale,
                             float *min) {
    if (type == FL_TYPE_Q4_K || type == FL_TYPE_Q5_K) {
        size_t bb = type == FL_TYPE_Q4_K ? sizeof(fl_block_q4_k) : sizeof(fl_block_q5_k);
        for (int64_t b = 0; b < k / FL_QK_K; b++) {
            const uint8_t *blk = row + (size_t)b * bb; /* d, dmin, scales[12] */
            uint64_t sc8, m8;
            gx_k4_unpack(blk + 4, &sc8, &m8);
            gx_scale8(sc8, gx_f16(blk), scale + 8 * b);
            gx_scale8(m8, -gx_f16(blk + 2), min + 8 * b);
        }
    } else if (type == FL_TYPE_Q6_K) {
        for (int64_t b = 0; b < k / FL_QK_K; b++) {
            const fl_block_q6_k *w = (const fl_block_q6_k *)row + b;
            __m128i sc = _mm_loadu_si128((const __m128i *)w->scales);
            __m256 d = _mm256_set1_ps(gx_f16(&w->d));
            _mm256_storeu_ps(scale + 16 * b,
                             _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)), d));
            _mm256_storeu_ps(
                scale + 16 * b + 8,
                _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc, 8))), d));
        }
    } else {
        fl_gemm_row_scales(type, row, k, scale, min);
    }
}

/* Rows r0 .. r0+3 of the panel: codes decoded 32 at a time, the 4 x 8 dwords transposed so that
 * each 4-element step of the 4 rows is one 16-byte store. */
GX_INLINE void gx_qpanel_rows(const fl_gemm_pjob *p, const fl_type type, int r0) {
    const fl_gemm_format *f = p->format;
    const int pr = p->panel_rows, group = type == FL_TYPE_Q6_K ? 16 : 32;
    const size_t gb = fl_gemm_group_bytes(f, pr);
    /* the next four rows come from memory while these are decoded */
    for (int i = 4; i < 8 && r0 + i < p->rows; i++)
        for (size_t off = 0; off < p->w_stride; off += 64)
            _mm_prefetch((const char *)p->w + (size_t)(r0 + i) * p->w_stride + off, _MM_HINT_T0);
    for (int i = 0; i < 4; i++) {
        const uint8_t *row = p->w + (size_t)(r0 + i) * p->w_stride;
        if (r0 + i < p->rows) gx_row_scales(type, row, p->k, p->scale, p->min);
        fl_gemm_put_scales(f, pr, p->panel, r0 + i, r0 + i < p->rows ? p->scale : NULL, p->min,
                           p->k);
    }
    for (int64_t c = 0; c < p->k / 32; c++) {
        __m256i v[4];
        for (int i = 0; i < 4; i++)
            v[i] = r0 + i < p->rows ? gx_codes32(type, p->w + (size_t)(r0 + i) * p->w_stride, c)
                                    : _mm256_setzero_si256();
        __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
        __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
        __m256i steps[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                            _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
        GX_UNROLL for (int d = 0; d < 8; d++) { /* step d of this chunk: element 32c + 4d */
            int e = 4 * d; /* within the chunk; a chunk holds 32 / group groups */
            uint8_t *dst = p->panel + (size_t)(c * (32 / group) + e / group) * gb +
                           (size_t)((e % group) / 4 * pr + r0) * 4;
            __m128i v4 = d < 4 ? _mm256_castsi256_si128(steps[d])
                               : _mm256_extracti128_si256(steps[d - 4], 1);
            _mm_storeu_si128((__m128i *)dst, v4);
        }
    }
}

#define GX_QPANEL_CASE(T)                                                                          \
    case T:                                                                                        \
        for (int r0 = 0; r0 < p->panel_rows; r0 += 4) gx_qpanel_rows(p, T, r0);                    \
        break;

static void gx_qpanel(const fl_gemm_pjob *p) {
    switch (p->type) {
        GX_QPANEL_CASE(FL_TYPE_Q8_0)
        GX_QPANEL_CASE(FL_TYPE_Q4_0)
        GX_QPANEL_CASE(FL_TYPE_Q5_0)
        GX_QPANEL_CASE(FL_TYPE_Q4_1)
        GX_QPANEL_CASE(FL_TYPE_Q5_1)
        GX_QPANEL_CASE(FL_TYPE_Q4_K)
        GX_QPANEL_CASE(FL_TYPE_Q5_K)
    default:
        GX_QPANEL_CASE(FL_TYPE_Q6_K)
    }
}

/* One function per format shape, specialised for each token count of a tile. */
#define GX_Q_VARIANT(name, G, MIN, WIDE)                                                           \
    static void name(const fl_gemm_qcall *c, int t0, int nt) {                                     \
        switch (nt) {                                                                              \
        case 1:                                                                                    \
            gx_qtile(c, t0, 1, G, MIN, WIDE);                                                      \
            break;                                                                                 \
        case 2:                                                                                    \
            gx_qtile(c, t0, 2, G, MIN, WIDE);                                                      \
            break;                                                                                 \
        case 3:                                                                                    \
            gx_qtile(c, t0, 3, G, MIN, WIDE);                                                      \
            break;                                                                                 \
        default:                                                                                   \
            gx_qtile(c, t0, GX_NR, G, MIN, WIDE);                                                  \
            break;                                                                                 \
        }                                                                                          \
    }

GX_Q_VARIANT(gx_q_offset, 32, false, false) /* Q4_0, Q5_0 */
GX_Q_VARIANT(gx_q_wide, 32, false, true)    /* Q8_0 */
GX_Q_VARIANT(gx_q_min, 32, true, false)     /* Q4_1, Q5_1, Q4_K, Q5_K */
GX_Q_VARIANT(gx_q_16, 16, false, false)     /* Q6_K */

/* Tiles of GX_NR tokens, then one of 1..3 (GX_NR is 4). */
static void gx_quantized(const fl_gemm_qcall *c) {
    const fl_gemm_format *f = c->format;
    void (*tile)(const fl_gemm_qcall *, int, int) = f->group == 16     ? gx_q_16
                                                    : f->has_min       ? gx_q_min
                                                    : f->offset == 128 ? gx_q_wide
                                                                       : gx_q_offset;
    for (int t0 = c->t0; t0 < c->t1; t0 += GX_NR)
        tile(c, t0, c->t1 - t0 < GX_NR ? c->t1 - t0 : GX_NR);
}

static void gx_floats(const fl_gemm_fcall *c) {
    int t0 = c->t0;
    for (; t0 + GX_FNR <= c->t1; t0 += GX_FNR) gx_ftile(c, t0, GX_FNR);
    for (; t0 < c->t1; t0++) gx_ftile(c, t0, 1);
}

#define GX_TABLE                                                                                   \
    {                                                                                              \
        .q_panel_rows = GX_PR, .f_panel_rows = GX_FPR, .qpanel = gx_qpanel,                        \
        .quantized = gx_quantized, .floats = gx_floats,                                            \
    }

#endif

/* x86 dot-product kernels on 256-bit vectors, shared by kernels_avx2.c and kernels_avx512.c.
 * The including file defines the one primitive that differs between them:
 *
 *   X86_DOT(u, s): __m256i of 8 int32 lanes, lane i = sum of u8 u[4i..4i+3] * s8 s[4i..4i+3]
 *
 * (AVX2: maddubs + madd; AVX-512 VNNI: dpbusd). Each kernel decodes a weight block once and
 * uses it for up to FL_DOT_MAX_TOK activation rows; every token's arithmetic is the same
 * whatever nt is, so results do not depend on how a batch is split. Integer block sums equal
 * the scalar reference's exactly. Not a public header: include it only from those files. */
#ifndef FLUID_ENGINE_KERNELS_X86_H
#define FLUID_ENGINE_KERNELS_X86_H

#include <immintrin.h>
#include <string.h>

#include "engine/kernels_impl.h"
#include "engine/x86_codes.h"

#define X86_INLINE static inline __attribute__((always_inline))

X86_INLINE float x86_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

X86_INLINE float x86_f16(const void *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

X86_INLINE __m256i x86_load(const void *p) {
    return _mm256_loadu_si256((const __m256i *)p);
}

/* Sum of u8 u[i] * s8 s[i] in 8 int32 lanes, lanes 0-3 (elements 0-15) multiplied by sc0 and
 * lanes 4-7 (elements 16-31) by sc1: maddubs pairs into int16 (no saturation: codes <= 63,
 * |a| <= 127), madd by the scales. Cheaper than a dot followed by a 32-bit multiply. */
X86_INLINE __m256i x86_dot_scaled(__m256i u, __m256i s, int sc0, int sc1) {
    return _mm256_madd_epi16(
        _mm256_maddubs_epi16(u, s),
        _mm256_set_m128i(_mm_set1_epi16((short)sc1), _mm_set1_epi16((short)sc0)));
}

/* ---- 32-element formats ---------------------------------------------------------------------- */

/* Where a 32-element format keeps its fields: byte offsets in a block, -1 when absent. */
typedef struct x86_legacy_layout {
    int bb;     /* block bytes */
    int qs;     /* the codes: 16 bytes of nibbles, or 32 signed bytes (Q8_0) */
    int qh;     /* the fifth bits (a 32-bit word) */
    int m;      /* the min (f16) */
    int offset; /* subtracted from the codes (0: codes unsigned with a min, or Q8_0's signed) */
} x86_legacy_layout;

X86_INLINE x86_legacy_layout x86_legacy_layout_of(fl_type type) {
    switch (type) {
    case FL_TYPE_Q4_0:
        return (x86_legacy_layout){sizeof(fl_block_q4_0), 2, -1, -1, 8};
    case FL_TYPE_Q4_1:
        return (x86_legacy_layout){sizeof(fl_block_q4_1), 4, -1, 2, 0};
    case FL_TYPE_Q5_0:
        return (x86_legacy_layout){sizeof(fl_block_q5_0), 6, 2, -1, 16};
    case FL_TYPE_Q5_1:
        return (x86_legacy_layout){sizeof(fl_block_q5_1), 8, 4, 2, 0};
    default: /* Q8_0 */
        return (x86_legacy_layout){sizeof(fl_block_q8_0), 2, -1, -1, 0};
    }
}

/* Decodes a legacy-format block: signed weights (code - offset) or, for the formats with a
 * min, unsigned codes plus d/m. */
X86_INLINE __m256i x86_legacy_block(fl_type type, const uint8_t *blk, float *d, float *m) {
    const x86_legacy_layout f = x86_legacy_layout_of(type);
    *d = x86_f16(blk);
    *m = f.m >= 0 ? x86_f16(blk + f.m) : 0.0f;
    if (type == FL_TYPE_Q8_0) return x86_load(blk + f.qs);
    __m256i codes = x86_nibbles32(blk + f.qs);
    if (f.qh >= 0) codes = _mm256_or_si256(codes, x86_fifth_bits(blk + f.qh));
    return f.offset ? _mm256_sub_epi8(codes, _mm256_set1_epi8((char)f.offset)) : codes;
}

X86_INLINE void x86_legacy_dot(fl_type type, int64_t n, const void *wv, const void *act,
                               size_t stride, int nt, float *out) {
    const bool has_min = x86_legacy_layout_of(type).m >= 0;
    const size_t bb = (size_t)x86_legacy_layout_of(type).bb;
    __m256 acc[FL_DOT_MAX_TOK];
    float mins[FL_DOT_MAX_TOK];
    for (int t = 0; t < nt; t++) {
        acc[t] = _mm256_setzero_ps();
        mins[t] = 0.0f;
    }
    for (int64_t b = 0; b < n / FL_QK; b++) {
        float d, m;
        __m256i wq = x86_legacy_block(type, (const uint8_t *)wv + b * bb, &d, &m);
        __m256i wu = has_min ? wq : _mm256_sign_epi8(wq, wq); /* |w| when signed */
        for (int t = 0; t < nt; t++) {
            const fl_block_q8a *a = (const fl_block_q8a *)fl_act_row(act, stride, t) + b;
            __m256i av = x86_load(a->qs);
            if (!has_min) av = _mm256_sign_epi8(av, wq); /* moves w's sign onto a */
            __m256 s = _mm256_cvtepi32_ps(X86_DOT(wu, av));
            acc[t] = _mm256_fmadd_ps(s, _mm256_set1_ps(d * a->d), acc[t]);
            if (has_min) mins[t] += m * a->d * (float)a->sum;
        }
    }
    for (int t = 0; t < nt; t++) out[t] = x86_hsum(acc[t]) + mins[t];
}

/* ---- K-quants ------------------------------------------------------------------------------- */

/* The eight 6-bit scales and mins of a Q4_K/Q5_K `scales` field, one byte each (sub-block j
 * in byte j), unpacked with word operations instead of eight fl_k4_scale_min calls. */
X86_INLINE void x86_k4_unpack(const uint8_t *scales, uint64_t *sc8, uint64_t *m8) {
    uint32_t w[3];
    memcpy(w, scales, 12);
    uint32_t sc_lo = w[0] & 0x3f3f3f3f, m_lo = w[1] & 0x3f3f3f3f;
    uint32_t sc_hi = (w[2] & 0x0f0f0f0f) | ((w[0] >> 2) & 0x30303030);
    uint32_t m_hi = ((w[2] >> 4) & 0x0f0f0f0f) | ((w[1] >> 2) & 0x30303030);
    *sc8 = sc_lo | (uint64_t)sc_hi << 32;
    *m8 = m_lo | (uint64_t)m_hi << 32;
}

/* The fields of Q4_K (qh NULL) or Q5_K super-block b of a row: the layouts differ only by qh. */
typedef struct x86_k_affine {
    float d, dmin;
    const uint8_t *scales, *qs, *qh;
} x86_k_affine;

X86_INLINE x86_k_affine x86_k_affine_block(bool five_bits, const void *wv, int64_t b) {
    if (five_bits) {
        const fl_block_q5_k *w = (const fl_block_q5_k *)wv + b;
        return (x86_k_affine){x86_f16(&w->d), x86_f16(&w->dmin), w->scales, w->qs, w->qh};
    }
    const fl_block_q4_k *w = (const fl_block_q4_k *)wv + b;
    return (x86_k_affine){x86_f16(&w->d), x86_f16(&w->dmin), w->scales, w->qs, NULL};
}

/* [m0, m0, m1, m1, ..., m7, m7] as int16: pairs with the 16-element activation sums. */
X86_INLINE __m256i x86_mins16(uint64_t m8) {
    __m128i m = _mm_cvtsi64_si128((long long)m8);
    return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(m, m));
}

/* Q4_K / Q5_K: d * sum_j sc_j * dot_j - dmin * sum_j m_j * asum_j per super-block. */
X86_INLINE void x86_k_affine_dot(bool five_bits, int64_t n, const void *wv, const void *act,
                                 size_t stride, int nt, float *out) {
    __m256 acc[FL_DOT_MAX_TOK];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(15);
    for (int64_t b = 0; b < n / FL_QK_K; b++) {
        const x86_k_affine k = x86_k_affine_block(five_bits, wv, b);
        const float d = k.d, dmin = k.dmin;
        const uint8_t *qs = k.qs, *qh = k.qh;
        uint64_t sc8, m8;
        x86_k4_unpack(k.scales, &sc8, &m8);
        const __m256i mins16 = x86_mins16(m8);
        int sc[8];
        for (int j = 0; j < 8; j++) sc[j] = (int)((sc8 >> (8 * j)) & 0xff);
        __m256i codes[8];
        __m256i hb = five_bits ? x86_load(qh) : _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i q = x86_load(qs + 32 * c);
            codes[2 * c] = _mm256_and_si256(q, low4);
            codes[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            if (five_bits) {
                for (int k = 0; k < 2; k++) {
                    __m256i bit = _mm256_set1_epi8((char)(1 << (2 * c + k)));
                    __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(hb, bit), bit);
                    codes[2 * c + k] = _mm256_or_si256(
                        codes[2 * c + k], _mm256_and_si256(set, _mm256_set1_epi8(0x10)));
                }
            }
        }
        for (int t = 0; t < nt; t++) {
            const fl_block_q8_k *a = (const fl_block_q8_k *)fl_act_row(act, stride, t) + b;
            __m256i sumi = _mm256_setzero_si256();
            for (int j = 0; j < 8; j++)
                sumi = _mm256_add_epi32(
                    sumi, x86_dot_scaled(codes[j], x86_load(a->qs + 32 * j), sc[j], sc[j]));
            __m256i summ = _mm256_madd_epi16(x86_load(a->bsums), mins16);
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(d * a->d), acc[t]);
            acc[t] =
                _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_set1_ps(dmin * a->d), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = x86_hsum(acc[t]);
}

/* Q6_K: d * sum_j sc_j * (dot_j - 32 * asum_j), codes unsigned in [0, 63]. */
X86_INLINE void x86_q6_k_dot(int64_t n, const void *wv, const void *act, size_t stride, int nt,
                             float *out) {
    __m256 acc[FL_DOT_MAX_TOK];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    const __m256i low4 = _mm256_set1_epi8(15);
    for (int64_t b = 0; b < n / FL_QK_K; b++) {
        const fl_block_q6_k *w = (const fl_block_q6_k *)wv + b;
        float d = x86_f16(&w->d);
        __m256i codes[8]; /* codes[i]: elements 32i .. 32i+31 */
        for (int h = 0; h < 2; h++) {
            __m256i la = x86_load(w->ql + 64 * h), lb = x86_load(w->ql + 64 * h + 32);
            __m256i hi = x86_load(w->qh + 32 * h);
            codes[4 * h + 0] =
                _mm256_or_si256(_mm256_and_si256(la, low4),
                                _mm256_slli_epi16(_mm256_and_si256(hi, _mm256_set1_epi8(0x03)), 4));
            codes[4 * h + 1] =
                _mm256_or_si256(_mm256_and_si256(lb, low4),
                                _mm256_slli_epi16(_mm256_and_si256(hi, _mm256_set1_epi8(0x0c)), 2));
            codes[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), low4),
                                               _mm256_and_si256(hi, _mm256_set1_epi8(0x30)));
            codes[4 * h + 3] = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi16(lb, 4), low4),
                _mm256_srli_epi16(_mm256_and_si256(hi, _mm256_set1_epi8((char)0xc0)), 2));
        }
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w->scales));
        for (int t = 0; t < nt; t++) {
            const fl_block_q8_k *a = (const fl_block_q8_k *)fl_act_row(act, stride, t) + b;
            __m256i sumi = _mm256_setzero_si256();
            for (int i = 0; i < 8; i++)
                sumi =
                    _mm256_add_epi32(sumi, x86_dot_scaled(codes[i], x86_load(a->qs + 32 * i),
                                                          w->scales[2 * i], w->scales[2 * i + 1]));
            __m256i corr = _mm256_madd_epi16(x86_load(a->bsums), sc16);
            sumi = _mm256_sub_epi32(sumi, _mm256_slli_epi32(corr, 5));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi), _mm256_set1_ps(d * a->d), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = x86_hsum(acc[t]);
}

/* ---- float weights --------------------------------------------------------------------------- */

X86_INLINE __m256 x86_load8(fl_type type, const void *w, int64_t i) {
    if (type == FL_TYPE_F32) return _mm256_loadu_ps((const float *)w + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
    if (type == FL_TYPE_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

X86_INLINE float x86_scalar_weight(fl_type type, const void *w, int64_t i) {
    if (type == FL_TYPE_F32) return ((const float *)w)[i];
    uint16_t h;
    memcpy(&h, (const uint16_t *)w + i, 2);
    return type == FL_TYPE_F16 ? fl_f16_to_f32(h) : fl_bf16_to_f32(h);
}

X86_INLINE void x86_float_dot(fl_type type, int64_t n, const void *w, const void *act,
                              size_t stride, int nt, float *out) {
    __m256 acc[FL_DOT_MAX_TOK];
    for (int t = 0; t < nt; t++) acc[t] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 wv = x86_load8(type, w, i);
        for (int t = 0; t < nt; t++)
            acc[t] = _mm256_fmadd_ps(
                wv, _mm256_loadu_ps((const float *)fl_act_row(act, stride, t) + i), acc[t]);
    }
    for (int t = 0; t < nt; t++) {
        const float *x = fl_act_row(act, stride, t);
        float sum = x86_hsum(acc[t]);
        for (int64_t k = i; k < n; k++) sum += x86_scalar_weight(type, w, k) * x[k];
        out[t] = sum;
    }
}

/* ---- activation quantization (same rounding as the scalar reference: to nearest even) ---- */

X86_INLINE float x86_abs_max(const float *x, int64_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8)
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

X86_INLINE int x86_hsum_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* Rounds x[0..32) * id to int8 in dst; sums[0] / sums[1] get the sums of the two halves. */
X86_INLINE void x86_round32(const float *x, float id, int8_t *dst, int sums[2]) {
    const __m256 m = _mm256_set1_ps(id);
    __m256i v[4];
    for (int k = 0; k < 4; k++)
        v[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), m),
                                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    /* packs work per 128-bit lane: the permute puts the 4-byte groups back in order */
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)dst, p);
    sums[0] = x86_hsum_i32(_mm256_add_epi32(v[0], v[1]));
    sums[1] = x86_hsum_i32(_mm256_add_epi32(v[2], v[3]));
}

static void x86_quantize_q8a(const float *x, void *dst, int64_t n) {
    fl_block_q8a *y = dst;
    for (int64_t b = 0; b < n / FL_QK; b++, x += FL_QK) {
        float amax = x86_abs_max(x, FL_QK);
        int sums[2];
        x86_round32(x, amax > 0.0f ? 127.0f / amax : 0.0f, y[b].qs, sums);
        y[b].d = amax / 127.0f;
        y[b].sum = sums[0] + sums[1];
    }
}

static void x86_quantize_q8k(const float *x, void *dst, int64_t n) {
    fl_block_q8_k *y = dst;
    for (int64_t b = 0; b < n / FL_QK_K; b++, x += FL_QK_K) {
        float amax = x86_abs_max(x, FL_QK_K);
        float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        for (int j = 0; j < 8; j++) {
            int sums[2];
            x86_round32(x + 32 * j, id, y[b].qs + 32 * j, sums);
            y[b].bsums[2 * j] = (int16_t)sums[0];
            y[b].bsums[2 * j + 1] = (int16_t)sums[1];
        }
        y[b].d = amax / 127.0f;
    }
}

/* ---- table entries: one specialisation per token count --------------------------------------- */

#define X86_DOT_ENTRY(name, call)                                                                  \
    __attribute__((unused)) static void name(int64_t n, const void *w, const void *act,            \
                                             size_t stride, int nt, float *out) {                  \
        switch (nt) {                                                                              \
        case 1:                                                                                    \
            call(n, w, act, stride, 1, out);                                                       \
            break;                                                                                 \
        case 2:                                                                                    \
            call(n, w, act, stride, 2, out);                                                       \
            break;                                                                                 \
        case 3:                                                                                    \
            call(n, w, act, stride, 3, out);                                                       \
            break;                                                                                 \
        default:                                                                                   \
            call(n, w, act, stride, FL_DOT_MAX_TOK, out);                                          \
            break;                                                                                 \
        }                                                                                          \
    }

X86_INLINE void x86_q4_0(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    x86_legacy_dot(FL_TYPE_Q4_0, n, w, a, s, nt, o);
}
X86_INLINE void x86_q4_1(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    x86_legacy_dot(FL_TYPE_Q4_1, n, w, a, s, nt, o);
}
X86_INLINE void x86_q5_0(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    x86_legacy_dot(FL_TYPE_Q5_0, n, w, a, s, nt, o);
}
X86_INLINE void x86_q5_1(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    x86_legacy_dot(FL_TYPE_Q5_1, n, w, a, s, nt, o);
}
X86_INLINE void x86_q8_0(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    x86_legacy_dot(FL_TYPE_Q8_0, n, w, a, s, nt, o);
}
X86_INLINE void x86_q4_k(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    x86_k_affine_dot(false, n, w, a, s, nt, o);
}
X86_INLINE void x86_q5_k(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    x86_k_affine_dot(true, n, w, a, s, nt, o);
}
X86_INLINE void x86_f32(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    x86_float_dot(FL_TYPE_F32, n, w, a, s, nt, o);
}
X86_INLINE void x86_f16w(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    x86_float_dot(FL_TYPE_F16, n, w, a, s, nt, o);
}
X86_INLINE void x86_bf16(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    x86_float_dot(FL_TYPE_BF16, n, w, a, s, nt, o);
}

X86_DOT_ENTRY(dot_q4_0, x86_q4_0)
X86_DOT_ENTRY(dot_q4_1, x86_q4_1)
X86_DOT_ENTRY(dot_q5_0, x86_q5_0)
X86_DOT_ENTRY(dot_q5_1, x86_q5_1)
X86_DOT_ENTRY(dot_q8_0, x86_q8_0)
X86_DOT_ENTRY(dot_q4_k, x86_q4_k)
X86_DOT_ENTRY(dot_q5_k, x86_q5_k)
X86_DOT_ENTRY(dot_q6_k, x86_q6_k_dot)
X86_DOT_ENTRY(dot_f32, x86_f32)
X86_DOT_ENTRY(dot_f16, x86_f16w)
X86_DOT_ENTRY(dot_bf16, x86_bf16)

#define X86_KERNEL_TABLE                                                                           \
    {                                                                                              \
        .dot =                                                                                     \
            {                                                                                      \
                [FL_TYPE_F32] = dot_f32,   [FL_TYPE_F16] = dot_f16,   [FL_TYPE_BF16] = dot_bf16,   \
                [FL_TYPE_Q4_0] = dot_q4_0, [FL_TYPE_Q4_1] = dot_q4_1, [FL_TYPE_Q5_0] = dot_q5_0,   \
                [FL_TYPE_Q5_1] = dot_q5_1, [FL_TYPE_Q8_0] = dot_q8_0, [FL_TYPE_Q4_K] = dot_q4_k,   \
                [FL_TYPE_Q5_K] = dot_q5_k, [FL_TYPE_Q6_K] = dot_q6_k,                              \
            },                                                                                     \
        .quantize_q8a = x86_quantize_q8a, .quantize_q8k = x86_quantize_q8k,                        \
    }

#endif

/* AVX-512 kernels (F/BW/VL/DQ + VNNI): 512-bit versions of the quantized formats, two legacy
 * blocks or 64 K-quant elements per instruction; the float formats use the shared x86 kernels
 * (the AVX2 table entries are inherited). The u8 x s8 dot of the legacy formats is one VNNI
 * dpbusd; K-quants multiply by their sub-block scales in the same madd that widens to int32. */
#include <immintrin.h>

#define X86_DOT(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)

#include "engine/kernels_x86.h"

#define Z_INLINE static inline __attribute__((always_inline))
/* Short fixed loops (pieces of a block) are unrolled so that their values stay
 * in registers and their constants are folded. */
#define G_UNROLL _Pragma("GCC unroll 8")
#define G_INLINE Z_INLINE

Z_INLINE float z_hsum(__m512 v) {
    return _mm512_reduce_add_ps(v);
}

/* Two 32-byte pieces as one 512-bit value: lo in bits 0-255, hi in 256-511. */
Z_INLINE __m512i z_pair(const void *lo, const void *hi) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(x86_load(lo)), x86_load(hi), 1);
}

/* 16 bytes of nibbles of two blocks -> their 64 codes: [lo(a) hi(a) lo(b) hi(b)] by 16 bytes. */
Z_INLINE __m512i z_nibbles64(const uint8_t *qa, const uint8_t *qb) {
    __m256i two = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)qb),
                                   _mm_loadu_si128((const __m128i *)qa));
    __m512i dup = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3),
                                           _mm512_castsi256_si512(two));
    const __m512i shift = _mm512_setr_epi64(0, 0, 0x0004000400040004, 0x0004000400040004, 0, 0,
                                            0x0004000400040004, 0x0004000400040004);
    return _mm512_and_si512(_mm512_srlv_epi16(dup, shift), _mm512_set1_epi8(15));
}

/* Lanes 0-7 = a, 8-15 = b. */
Z_INLINE __m512 z_two_scales(float a, float b) {
    return _mm512_insertf32x8(_mm512_set1_ps(a), _mm256_set1_ps(b), 1);
}

/* ---- 32-element formats: two blocks per step ---------------------------------------------- */

Z_INLINE uint32_t z_u32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* Adds 16 to the codes whose fifth bit is set (bit i of the 64-bit mask = element i). */
Z_INLINE __m512i z_add_fifth(__m512i codes, const uint8_t *qh_a, const uint8_t *qh_b) {
    __mmask64 bits = (__mmask64)z_u32(qh_a) | (__mmask64)z_u32(qh_b) << 32;
    return _mm512_mask_add_epi8(codes, bits, codes, _mm512_set1_epi8(16));
}

/* Codes of two consecutive blocks: signed (code - offset) for the symmetric formats, unsigned
 * for the ones with a min. */
Z_INLINE __m512i z_legacy_pair(fl_type type, const uint8_t *blk) {
    const x86_legacy_layout f = x86_legacy_layout_of(type);
    const uint8_t *nb = blk + f.bb;
    if (type == FL_TYPE_Q8_0) return z_pair(blk + f.qs, nb + f.qs);
    __m512i codes = z_nibbles64(blk + f.qs, nb + f.qs);
    if (f.qh >= 0) codes = z_add_fifth(codes, blk + f.qh, nb + f.qh);
    return f.offset ? _mm512_sub_epi8(codes, _mm512_set1_epi8((char)f.offset)) : codes;
}

Z_INLINE void z_legacy_dot(fl_type type, int64_t n, const void *wv, const void *act, size_t stride,
                           int nt, float *out) {
    const x86_legacy_layout f = x86_legacy_layout_of(type);
    const bool has_min = f.m >= 0;
    const size_t bb = (size_t)f.bb;
    const int64_t nb = n / FL_QK;
    __m512 acc[FL_DOT_MAX_TOK];
    float mins[FL_DOT_MAX_TOK];
    for (int t = 0; t < nt; t++) {
        acc[t] = _mm512_setzero_ps();
        mins[t] = 0.0f;
    }
    int64_t b = 0;
    for (; b + 2 <= nb; b += 2) {
        const uint8_t *blk = (const uint8_t *)wv + b * bb;
        __m512i wq = z_legacy_pair(type, blk);
        __m512i wu = has_min ? wq : _mm512_abs_epi8(wq);
        __mmask64 neg = has_min ? 0 : _mm512_movepi8_mask(wq);
        float d0 = x86_f16(blk), d1 = x86_f16(blk + bb);
        float m0 = has_min ? x86_f16(blk + f.m) : 0.0f,
              m1 = has_min ? x86_f16(blk + bb + f.m) : 0.0f;
        for (int t = 0; t < nt; t++) {
            const fl_block_q8a *a = (const fl_block_q8a *)fl_act_row(act, stride, t) + b;
            __m512i av = z_pair(a[0].qs, a[1].qs);
            if (!has_min) /* w's sign onto a */
                av = _mm512_mask_sub_epi8(av, neg, _mm512_setzero_si512(), av);
            __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wu, av);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), z_two_scales(d0 * a[0].d, d1 * a[1].d),
                                     acc[t]);
            if (has_min) mins[t] += m0 * a[0].d * (float)a[0].sum + m1 * a[1].d * (float)a[1].sum;
        }
    }
    float tail[FL_DOT_MAX_TOK] = {0};
    if (b < nb) /* an odd last block */
        x86_legacy_dot(type, FL_QK, (const uint8_t *)wv + b * bb, (const fl_block_q8a *)act + b,
                       stride, nt, tail);
    for (int t = 0; t < nt; t++) out[t] = z_hsum(acc[t]) + mins[t] + tail[t];
}

/* ---- K-quants: 64 elements per step -----------------------------------------------------------
 */

/* int16 lane index vector [j x 16 | j+1 x 16]: picks the scales of sub-blocks j and j+1 for
 * the two 32-element halves of a 64-element step. */
Z_INLINE __m512i z_pair_index(int j) {
    return _mm512_inserti64x4(_mm512_set1_epi16((short)j), _mm256_set1_epi16((short)(j + 1)), 1);
}

/* maddubs + madd by per-16-bit-lane scales: 16 int32 lanes. */
Z_INLINE __m512i z_dot_scaled(__m512i u, __m512i s, __m512i scales16) {
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), scales16);
}

/* Q4_K and Q5_K (five_bits): the super-block layouts differ only by qh. */
Z_INLINE void z_k_affine_dot(bool five_bits, int64_t n, const void *wv, const void *act,
                             size_t stride, int nt, float *out) {
    __m512 acc[FL_DOT_MAX_TOK];
    __m256 accm[FL_DOT_MAX_TOK];
    for (int t = 0; t < nt; t++) {
        acc[t] = _mm512_setzero_ps();
        accm[t] = _mm256_setzero_ps();
    }
    const __m512i shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    for (int64_t b = 0; b < n / FL_QK_K; b++) {
        const x86_k_affine k = x86_k_affine_block(five_bits, wv, b);
        const float d = k.d, dmin = k.dmin;
        const uint8_t *qs = k.qs, *qh = k.qh;
        uint64_t sc8, m8;
        x86_k4_unpack(k.scales, &sc8, &m8);
        const __m256i mins16 = x86_mins16(m8);
        const __m512i sc16 =
            _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_cvtsi64_si128((long long)sc8)));
        __m512i codes[4], scale16[4]; /* codes[c]: elements 64c .. 64c+63 */
        G_UNROLL
        for (int c = 0; c < 4; c++) {
            __m512i q = _mm512_broadcast_i64x4(x86_load(qs + 32 * c));
            codes[c] = _mm512_and_si512(_mm512_srlv_epi16(q, shift), _mm512_set1_epi8(15));
            if (five_bits) { /* bit 2c of qh[l]: element 64c+l; bit 2c+1: element 64c+32+l */
                __m256i h = x86_load(qh);
                __mmask64 bits =
                    (__mmask64)_mm256_test_epi8_mask(h, _mm256_set1_epi8((char)(1 << (2 * c)))) |
                    (__mmask64)_mm256_test_epi8_mask(h, _mm256_set1_epi8((char)(2 << (2 * c))))
                        << 32;
                codes[c] = _mm512_mask_add_epi8(codes[c], bits, codes[c], _mm512_set1_epi8(16));
            }
            scale16[c] = _mm512_permutexvar_epi16(z_pair_index(2 * c), sc16);
        }
        for (int t = 0; t < nt; t++) {
            const fl_block_q8_k *a = (const fl_block_q8_k *)fl_act_row(act, stride, t) + b;
            __m512i sumi = _mm512_setzero_si512();
            G_UNROLL
            for (int c = 0; c < 4; c++)
                sumi = _mm512_add_epi32(
                    sumi, z_dot_scaled(codes[c], _mm512_loadu_si512(a->qs + 64 * c), scale16[c]));
            __m256i summ = _mm256_madd_epi16(x86_load(a->bsums), mins16);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(d * a->d), acc[t]);
            accm[t] =
                _mm256_fmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_set1_ps(dmin * a->d), accm[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = z_hsum(acc[t]) - x86_hsum(accm[t]);
}

/* Q6_K: codes of elements 128h + 64k .. +63 from ql/qh, for h, k in {0, 1}. */
Z_INLINE void z_q6_k_codes(const fl_block_q6_k *w, __m512i codes[4]) {
    /* the two high bits of each code are shifted to bits 4-5 of its byte (16-bit shifts: bits
     * that cross into the next byte land outside bits 4-5 and are masked off), then merged
     * with the low nibble by one ternary-logic op: (low & 0x0f) | high */
    const __m512i low4 = _mm512_set1_epi8(15), bits45 = _mm512_set1_epi8(0x30);
    const __m512i up_lo = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i down_hi = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    G_UNROLL
    for (int h = 0; h < 2; h++) {
        __m512i ql = _mm512_loadu_si512(w->ql + 64 * h); /* [la | lb] */
        __m512i qh = _mm512_broadcast_i64x4(x86_load(w->qh + 32 * h));
        __m512i h01 = _mm512_and_si512(_mm512_sllv_epi16(qh, up_lo), bits45);
        __m512i h23 = _mm512_and_si512(_mm512_srlv_epi16(qh, down_hi), bits45);
        codes[2 * h] = _mm512_ternarylogic_epi32(ql, low4, h01, 0xEA);
        codes[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ql, 4), low4, h23, 0xEA);
    }
}

Z_INLINE void z_q6_k_dot(int64_t n, const void *wv, const void *act, size_t stride, int nt,
                         float *out) {
    __m512 acc[FL_DOT_MAX_TOK];
    for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < n / FL_QK_K; b++) {
        const fl_block_q6_k *w = (const fl_block_q6_k *)wv + b;
        float d = x86_f16(&w->d);
        __m512i codes[4];
        z_q6_k_codes(w, codes);
        /* int16 lanes of group g cover sub-blocks 4g .. 4g+3, 8 lanes each */
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)w->scales));
        __m512i scales[4];
        G_UNROLL
        for (int g = 0; g < 4; g++) {
            const __m512i idx = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_set_m128i(_mm_set1_epi16((short)(4 * g + 1)),
                                                        _mm_set1_epi16((short)(4 * g)))),
                _mm256_set_m128i(_mm_set1_epi16((short)(4 * g + 3)),
                                 _mm_set1_epi16((short)(4 * g + 2))),
                1);
            scales[g] = _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(sc16));
        }
        for (int t = 0; t < nt; t++) {
            const fl_block_q8_k *a = (const fl_block_q8_k *)fl_act_row(act, stride, t) + b;
            __m512i sumi = _mm512_setzero_si512();
            G_UNROLL
            for (int g = 0; g < 4; g++)
                sumi = _mm512_add_epi32(
                    sumi, z_dot_scaled(codes[g], _mm512_loadu_si512(a->qs + 64 * g), scales[g]));
            __m256i corr = _mm256_madd_epi16(x86_load(a->bsums), sc16);
            sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(corr, 5)));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(d * a->d), acc[t]);
        }
    }
    for (int t = 0; t < nt; t++) out[t] = z_hsum(acc[t]);
}

Z_INLINE void z_q4_k(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    z_k_affine_dot(false, n, w, a, s, nt, o);
}
Z_INLINE void z_q5_k(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    z_k_affine_dot(true, n, w, a, s, nt, o);
}
Z_INLINE void z_q4_1(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    z_legacy_dot(FL_TYPE_Q4_1, n, w, a, s, nt, o);
}
Z_INLINE void z_q5_0(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    z_legacy_dot(FL_TYPE_Q5_0, n, w, a, s, nt, o);
}
Z_INLINE void z_q5_1(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    z_legacy_dot(FL_TYPE_Q5_1, n, w, a, s, nt, o);
}
Z_INLINE void z_q4_0(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    z_legacy_dot(FL_TYPE_Q4_0, n, w, a, s, nt, o);
}
Z_INLINE void z_q8_0(int64_t n, const void *w, const void *a, size_t s, int nt, float *o) {
    z_legacy_dot(FL_TYPE_Q8_0, n, w, a, s, nt, o);
}

/* ---- generation: one activation row against many weight rows --------------------------------
 *
 * Integer sums stay in vector lanes per block and are scaled once per group of blocks;
 * horizontal sums wait for the end of a row. Rows are streamed one after the other: handling
 * two or four rows at once (sharing each activation load) was much faster from cache but
 * 5-7 times slower from memory (a 65536 x 2048 matrix: Q4_0 27 GB/s one row at a time, 4 GB/s
 * two at a time), the interleaved streams defeating the hardware prefetcher. */

enum { GROUP_BLOCKS = 4 };

/* 32-element formats: a group is four consecutive blocks (128 elements). Their activations are
 * rearranged once per product so that the four blocks' packed nibbles, loaded as one register
 * and masked, line up with them without any shuffle: block k owns bytes 16k..16k+15 of `lo`
 * (its elements 0..15) and of `hi` (elements 16..31), hence int32 lanes 4k..4k+3 of a dpbusd.
 * Weight codes are unsigned (Q8_0: the weight + 128); the format's offset comes back as
 * -offset x sum(a) per block, the starting value of the integer accumulator. */
typedef struct g_act_group {
    int8_t lo[64];
    int8_t hi[64];
    int32_t nsum[16]; /* lane 4k: minus the sum of block k's integers; other lanes 0 */
    float d[16];      /* lanes 4k..4k+3: block k's scale */
    float dsum[16];   /* lane 4k: scale x sum of block k (the formats with a min); others 0 */
} g_act_group;

static size_t g_legacy_act_bytes(int64_t n) {
    int64_t nb = n / FL_QK;
    return (size_t)((nb + GROUP_BLOCKS - 1) / GROUP_BLOCKS) * sizeof(g_act_group);
}

/* A last group with fewer than four blocks is padded with zero activations. */
static void g_legacy_arrange(const void *act, void *dst, int64_t n) {
    const fl_block_q8a *a = act;
    g_act_group *g = dst;
    int64_t nb = n / FL_QK;
    for (int64_t b = 0; b < nb; b += GROUP_BLOCKS, g++) {
        memset(g, 0, sizeof *g);
        for (int k = 0; k < GROUP_BLOCKS && b + k < nb; k++) {
            const fl_block_q8a *blk = &a[b + k];
            memcpy(g->lo + 16 * k, blk->qs, 16);
            memcpy(g->hi + 16 * k, blk->qs + 16, 16);
            g->nsum[4 * k] = -blk->sum;
            for (int i = 0; i < 4; i++) g->d[4 * k + i] = blk->d;
            g->dsum[4 * k] = blk->d * (float)blk->sum;
        }
    }
}

/* A legacy format as the generation kernels read it: its layout, and log2 of the offset
 * subtracted from the unsigned codes (Q8_0's are its weights + 128); -1 with a min. */
typedef struct g_format {
    x86_legacy_layout l;
    int shift;
    bool bytes; /* Q8_0: one byte per weight */
} g_format;

G_INLINE g_format g_format_of(fl_type type) {
    const x86_legacy_layout l = x86_legacy_layout_of(type);
    const int offset = type == FL_TYPE_Q8_0 ? 128 : l.offset;
    return (g_format){l, offset ? __builtin_ctz((unsigned)offset) : -1, type == FL_TYPE_Q8_0};
}

/* A group's 16-bit fields are picked by one two-source word permute from window A (the 64
 * bytes from block 0) and window B (the bytes from block 2, up to the group's end). Word index
 * of the field `field` bytes into block k: */
static short g_window_word(int bb, int k, int field) {
    return k < 2 ? (short)((k * bb + field) / 2) : (short)(32 + ((k - 2) * bb + field) / 2);
}

/* Word permutes of a format: d[] and m[] give [f0 x4, f1 x4, f2 x4, f3 x4] in words 0..15
 * (the field of each block once per int32 lane it owns); qh gives the low halves of the four
 * blocks' fifth-bit words, then their high halves, in words 0..7. */
typedef struct g_permutes {
    __m512i d, m, qh;
} g_permutes;

static g_permutes g_permutes_of(g_format f) {
    short d[32] = {0}, m[32] = {0}, qh[32] = {0};
    for (int j = 0; j < 16; j++) {
        d[j] = g_window_word(f.l.bb, j / 4, 0);
        if (f.l.m >= 0) m[j] = g_window_word(f.l.bb, j / 4, f.l.m);
    }
    for (int k = 0; k < 4 && f.l.qh >= 0; k++) {
        qh[k] = g_window_word(f.l.bb, k, f.l.qh);
        qh[4 + k] = g_window_word(f.l.bb, k, f.l.qh + 2);
    }
    g_permutes p;
    p.d = _mm512_loadu_si512(d);
    p.m = _mm512_loadu_si512(m);
    p.qh = _mm512_loadu_si512(qh);
    return p;
}

/* The first `count` of the 64 bytes at p, the others zero; nothing past them is read. */
G_INLINE __m512i g_load_upto(const uint8_t *p, int count) {
    if (count >= 64) return _mm512_loadu_si512(p);
    if (count <= 0) return _mm512_setzero_si512();
    return _mm512_maskz_loadu_epi8(~0ULL >> (64 - count), p);
}

/* 16 bytes at p + k * bb for the blocks k < nblk, in 128-bit lane k (missing blocks: zero). */
G_INLINE __m512i g_pieces(const uint8_t *p, int bb, int nblk) {
    __m512i v = _mm512_zextsi128_si512(_mm_loadu_si128((const __m128i *)p));
    if (nblk > 1) v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + bb)), 1);
    if (nblk > 2) v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 2 * bb)), 2);
    if (nblk > 3) v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(p + 3 * bb)), 3);
    return v;
}

/* The activations of one group, as registers shared by every row. */
typedef struct g_act_regs {
    __m512i lo, hi, base;
    __m512 d, dsum;
} g_act_regs;

G_INLINE g_act_regs g_act_load(g_format f, const g_act_group *a) {
    g_act_regs r;
    r.lo = _mm512_loadu_si512(a->lo);
    r.hi = _mm512_loadu_si512(a->hi);
    __m512i nsum = _mm512_loadu_si512(a->nsum);
    r.base = f.shift >= 0 ? _mm512_slli_epi32(nsum, (unsigned)f.shift) : _mm512_setzero_si512();
    r.d = _mm512_loadu_ps(a->d);
    r.dsum = _mm512_loadu_ps(a->dsum);
    return r;
}

/* One row's group of nblk (<= 4) blocks at blk, added into acc (scaled sums) and accm (mins). */
G_INLINE void g_legacy_group(g_format f, const g_permutes *p, const uint8_t *blk, int nblk,
                             const g_act_regs *a, __m512 *acc, __m512 *accm) {
    const int nbytes = nblk * f.l.bb;
    __m512i wa = g_load_upto(blk, nbytes), wb = g_load_upto(blk + 2 * f.l.bb, nbytes - 2 * f.l.bb);
    __m512i lo, hi;
    if (f.bytes) {
        const __m512i flip = _mm512_set1_epi8((char)0x80);
        lo = _mm512_xor_si512(g_pieces(blk + f.l.qs, f.l.bb, nblk), flip);
        hi = _mm512_xor_si512(g_pieces(blk + f.l.qs + 16, f.l.bb, nblk), flip);
    } else {
        const __m512i low4 = _mm512_set1_epi8(15);
        __m512i q = g_pieces(blk + f.l.qs, f.l.bb, nblk);
        lo = _mm512_and_si512(q, low4);
        hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
        if (f.l.qh >= 0) {
            __m128i h = _mm512_castsi512_si128(_mm512_permutex2var_epi16(wa, p->qh, wb));
            const __m512i sixteen = _mm512_set1_epi8(16);
            lo = _mm512_mask_add_epi8(lo, (__mmask64)_mm_cvtsi128_si64(h), lo, sixteen);
            hi = _mm512_mask_add_epi8(hi, (__mmask64)_mm_extract_epi64(h, 1), hi, sixteen);
        }
    }
    __m512i s = _mm512_dpbusd_epi32(a->base, lo, a->lo);
    s = _mm512_dpbusd_epi32(s, hi, a->hi);
    __m512 dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(wa, p->d, wb)));
    *acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, a->d), *acc);
    if (f.l.m >= 0) {
        __m512 mw =
            _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(wa, p->m, wb)));
        *accm = _mm512_fmadd_ps(mw, a->dsum, *accm);
    }
}

/* One row against the arranged activations. */
G_INLINE float g_legacy_row(g_format f, const g_permutes *p, int64_t nb, const uint8_t *w,
                            const g_act_group *act) {
    __m512 acc = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
    int64_t g = 0;
    for (; (g + 1) * GROUP_BLOCKS <= nb; g++) {
        g_act_regs a = g_act_load(f, act + g);
        g_legacy_group(f, p, w + (size_t)g * GROUP_BLOCKS * (size_t)f.l.bb, GROUP_BLOCKS, &a, &acc,
                       &accm);
    }
    if (g * GROUP_BLOCKS < nb) { /* a last, partial group */
        g_act_regs a = g_act_load(f, act + g);
        g_legacy_group(f, p, w + (size_t)g * GROUP_BLOCKS * (size_t)f.l.bb,
                       (int)(nb - g * GROUP_BLOCKS), &a, &acc, &accm);
    }
    return z_hsum(acc) + z_hsum(accm);
}

G_INLINE void g_legacy_rows(fl_type type, int64_t n, const void *w, size_t stride, int64_t nrows,
                            const void *act, float *out) {
    const g_format f = g_format_of(type);
    const g_permutes p = g_permutes_of(f);
    for (int64_t r = 0; r < nrows; r++)
        out[r] = g_legacy_row(f, &p, n / FL_QK, (const uint8_t *)w + (size_t)r * stride, act);
}

/* K-quants: the q8_k activations are rearranged once per product (g_k_act: one per
 * super-block, 64-byte aligned) so that each 64-byte load of weight codes meets one 64-byte
 * load of activations, with no shuffle per row. A dpbusd gives int32 lanes of four elements
 * each; such a sum fits in int16, so two dpbusd results are packed (packssdw) and multiplied
 * by their sub-block scales in one dpwssd, which also accumulates. Float work (the f16
 * scales, Q4_K/Q5_K's mins) is done once per super-block, the horizontal sum once per row. */
typedef struct g_k_act {
    int8_t qs[FL_QK_K]; /* Q4_K/Q5_K: sub-blocks 0 2 1 3 4 6 5 7 of 32; Q6_K: in order */
    int16_t sums[16];   /* Q4_K/Q5_K: 0 x8, sums of sub-blocks 0..7 of 32; Q6_K: of 0..15 of 16 */
    float d;
    uint8_t pad[28];
} g_k_act;
_Static_assert(sizeof(g_k_act) % 64 == 0, "arranged K-quant activations stay 64-byte aligned");

/* The arranged row starts at the first 64-byte boundary of the buffer. */
static size_t g_k_act_bytes(int64_t n) {
    return (size_t)(n / FL_QK_K) * sizeof(g_k_act) + 63;
}

G_INLINE uintptr_t g_k_align(const void *p) {
    return ((uintptr_t)p + 63) & ~(uintptr_t)63;
}

/* Q4_K/Q5_K: a 64-byte load of qs holds the low nibbles of sub-blocks 2c and 2c+2 (bytes
 * 0-31 and 32-63) and the high nibbles of 2c+1 and 2c+3, hence this order. */
static void g_k_affine_arrange(const void *act, void *dst, int64_t n) {
    static const int ORDER[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    const fl_block_q8_k *a = act;
    g_k_act *g = (g_k_act *)g_k_align(dst);
    for (int64_t b = 0; b < n / FL_QK_K; b++, g++) {
        memset(g, 0, sizeof *g);
        for (int i = 0; i < 8; i++) memcpy(g->qs + 32 * i, a[b].qs + 32 * ORDER[i], 32);
        for (int j = 0; j < 8; j++)
            g->sums[8 + j] = (int16_t)(a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        g->d = a[b].d;
    }
}

static void g_q6_k_arrange(const void *act, void *dst, int64_t n) {
    const fl_block_q8_k *a = act;
    g_k_act *g = (g_k_act *)g_k_align(dst);
    for (int64_t b = 0; b < n / FL_QK_K; b++, g++) {
        memset(g, 0, sizeof *g);
        memcpy(g->qs, a[b].qs, sizeof g->qs);
        memcpy(g->sums, a[b].bsums, sizeof g->sums);
        g->d = a[b].d;
    }
}

/* The int32 sums of four elements of codes[0..3] x the super-block's activations, packed by
 * pairs to int16: p[0] from codes 0 and 1, p[1] from codes 2 and 3. In 128-bit lane L of
 * p[i], words 0-3 come from lane L of codes[2i]'s sums, words 4-7 from codes[2i+1]'s. */
G_INLINE void g_k_packed_dots(const __m512i codes[4], const g_k_act *a, __m512i p[2]) {
    __m512i s[4];
    G_UNROLL
    for (int v = 0; v < 4; v++)
        s[v] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), codes[v],
                                   _mm512_load_si512(a->qs + 64 * v));
    p[0] = _mm512_packs_epi32(s[0], s[1]);
    p[1] = _mm512_packs_epi32(s[2], s[3]);
}

/* vpermw indices giving, in 128-bit lanes 0-1, words [a x4, b x4] and in lanes 2-3
 * [c x4, d x4]. */
G_INLINE __m512i g_k_scale_pick(int a, int b, int c, int d) {
#define G_WORDS(j) (long long)((unsigned long long)(j)*0x0001000100010001ULL)
    return _mm512_setr_epi64(G_WORDS(a), G_WORDS(b), G_WORDS(a), G_WORDS(b), G_WORDS(c), G_WORDS(d),
                             G_WORDS(c), G_WORDS(d));
#undef G_WORDS
}

/* The 6-bit scales and mins of a Q4_K/Q5_K super-block (its 12 `scales` bytes at p, followed
 * by at least 4 readable bytes) as words: 128-bit lane 0 holds sc0..sc7, lane 1 m0..m7.
 * Each word is first given the byte holding its low bits (low byte) and the one holding its
 * two high bits (high byte); then one bit-select keeps (v >> lo_shift) & low_mask and puts
 * the two high bits, (v >> 10) & 0x30, above them (for j < 4 the mask is 0x3f and v >> 10
 * has no bit there). */
G_INLINE __m256i g_k_scales_mins(const uint8_t *p) {
    const __m256i bytes = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
    const __m256i place =
        _mm256_setr_epi8(0, -1, 1, -1, 2, -1, 3, -1, 8, 0, 9, 1, 10, 2, 11, 3,  /* sc */
                         4, -1, 5, -1, 6, -1, 7, -1, 8, 4, 9, 5, 10, 6, 11, 7); /* m */
    const __m256i lo_shift = _mm256_setr_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 4, 4);
    const __m256i low_mask = _mm256_setr_epi16(0x3f, 0x3f, 0x3f, 0x3f, 0xf, 0xf, 0xf, 0xf, 0x3f,
                                               0x3f, 0x3f, 0x3f, 0xf, 0xf, 0xf, 0xf);
    const __m256i v = _mm256_shuffle_epi8(bytes, place);
    return _mm256_ternarylogic_epi32(_mm256_srlv_epi16(v, lo_shift), _mm256_srli_epi16(v, 10),
                                     low_mask, 0xE4); /* low_mask ? a : b, bit by bit */
}

/* Fifth-bit masks of Q5_K: qh bit j holds the fifth bits of sub-block j. */
G_INLINE __m512i g_k_bits(int lo, int hi) {
    return _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << lo)), _mm256_set1_epi8((char)(1 << hi)),
                              1);
}

/* Q4_K (five_bits false) and Q5_K: codes in the arranged order, v = [sub-blocks 0|2], [1|3],
 * [4|6], [5|7]. */
G_INLINE float g_k_affine_row(bool five_bits, int64_t nsb, const uint8_t *w, const g_k_act *act) {
    const size_t bb = five_bits ? sizeof(fl_block_q5_k) : sizeof(fl_block_q4_k);
    const size_t qs_at = five_bits ? offsetof(fl_block_q5_k, qs) : offsetof(fl_block_q4_k, qs);
    const __m512i low4 = _mm512_set1_epi8(15), sixteen = _mm512_set1_epi8(16);
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    for (int64_t b = 0; b < nsb; b++) {
        const uint8_t *blk = w + (size_t)b * bb;
        const g_k_act *a = act + b;
        __m512i codes[4];
        G_UNROLL
        for (int h = 0; h < 2; h++) {
            __m512i q = _mm512_loadu_si512(blk + qs_at + 64 * h);
            codes[2 * h] = _mm512_and_si512(q, low4);
            codes[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(q, 4), low4);
        }
        if (five_bits) {
            const __m512i qh = _mm512_broadcast_i64x4(x86_load(blk + offsetof(fl_block_q5_k, qh)));
            static const int LO[4] = {0, 1, 4, 5};
            G_UNROLL
            for (int v = 0; v < 4; v++) {
                __mmask64 k = _mm512_test_epi8_mask(qh, g_k_bits(LO[v], LO[v] + 2));
                codes[v] = _mm512_mask_add_epi8(codes[v], k, codes[v], sixteen);
            }
        }
        __m512i p[2];
        g_k_packed_dots(codes, a, p);
        const __m256i scm = g_k_scales_mins(blk + offsetof(fl_block_q4_k, scales));
        const __m512i sc = _mm512_castsi256_si512(scm);
        __m512i sumi = _mm512_dpwssd_epi32(
            _mm512_setzero_si512(), p[0], _mm512_permutexvar_epi16(g_k_scale_pick(0, 1, 2, 3), sc));
        sumi = _mm512_dpwssd_epi32(sumi, p[1],
                                   _mm512_permutexvar_epi16(g_k_scale_pick(4, 5, 6, 7), sc));
        /* lanes 4-7: mins x sub-block sums (lanes 0-3 meet zeros) */
        __m256i summ = _mm256_madd_epi16(scm, _mm256_load_si256((const __m256i *)a->sums));
        /* [d, dmin] x the activations' scale */
        __m128 dd = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi32_si128((int)z_u32(blk))), _mm_set1_ps(a->d));
        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_broadcastss_ps(dd), acc);
        accm = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(summ),
            _mm256_permutexvar_ps(_mm256_set1_epi32(1), _mm256_castps128_ps256(dd)), accm);
    }
    return z_hsum(acc) - x86_hsum(accm);
}

G_INLINE float g_q4_k_row(int64_t nsb, const uint8_t *w, const g_k_act *act) {
    return g_k_affine_row(false, nsb, w, act);
}

G_INLINE float g_q5_k_row(int64_t nsb, const uint8_t *w, const g_k_act *act) {
    return g_k_affine_row(true, nsb, w, act);
}

/* Q6_K: codes in order, 128-bit lane L of codes[v] is sub-block 4v + L; the -32 offset comes
 * back as 32 x sum_j scale_j x (sum of sub-block j's activations). */
G_INLINE float g_q6_k_row(int64_t nsb, const uint8_t *w, const g_k_act *act) {
    const __m512i pick01 = _mm512_setr_epi64(
        0x0000000000000000, 0x0004000400040004, 0x0001000100010001, 0x0005000500050005,
        0x0002000200020002, 0x0006000600060006, 0x0003000300030003, 0x0007000700070007);
    const __m512i pick23 = _mm512_add_epi16(pick01, _mm512_set1_epi16(8));
    __m512 acc = _mm512_setzero_ps();
    for (int64_t b = 0; b < nsb; b++) {
        const fl_block_q6_k *blk = (const fl_block_q6_k *)w + b;
        const g_k_act *a = act + b;
        __m512i codes[4], p[2];
        z_q6_k_codes(blk, codes);
        g_k_packed_dots(codes, a, p);
        const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales));
        const __m512i sc = _mm512_castsi256_si512(sc16);
        __m512i sumi =
            _mm512_dpwssd_epi32(_mm512_setzero_si512(), p[0], _mm512_permutexvar_epi16(pick01, sc));
        sumi = _mm512_dpwssd_epi32(sumi, p[1], _mm512_permutexvar_epi16(pick23, sc));
        __m256i corr = _mm256_slli_epi32(
            _mm256_madd_epi16(_mm256_load_si256((const __m256i *)a->sums), sc16), 5);
        sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(corr));
        acc =
            _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_set1_ps(x86_f16(&blk->d) * a->d), acc);
    }
    return z_hsum(acc);
}

/* Every row through a K-quant row kernel, one after the other. */
#define G_K_ROWS(name, row)                                                                        \
    static void name(int64_t n, const void *w, size_t stride, int64_t nrows, const void *act,      \
                     float *out) {                                                                 \
        const g_k_act *a = (const g_k_act *)g_k_align(act);                                        \
        for (int64_t r = 0; r < nrows; r++)                                                        \
            out[r] = row(n / FL_QK_K, (const uint8_t *)w + (size_t)r * stride, a);                 \
    }
G_K_ROWS(g_gemv_q4_k, g_q4_k_row)
G_K_ROWS(g_gemv_q5_k, g_q5_k_row)
G_K_ROWS(g_gemv_q6_k, g_q6_k_row)

#define G_LEGACY_ROWS(name, type)                                                                  \
    static void name(int64_t n, const void *w, size_t stride, int64_t nrows, const void *act,      \
                     float *out) {                                                                 \
        g_legacy_rows(type, n, w, stride, nrows, act, out);                                        \
    }
G_LEGACY_ROWS(g_gemv_q4_0, FL_TYPE_Q4_0)
G_LEGACY_ROWS(g_gemv_q4_1, FL_TYPE_Q4_1)
G_LEGACY_ROWS(g_gemv_q5_0, FL_TYPE_Q5_0)
G_LEGACY_ROWS(g_gemv_q5_1, FL_TYPE_Q5_1)
G_LEGACY_ROWS(g_gemv_q8_0, FL_TYPE_Q8_0)

#define G_LEGACY_GEMV(fn)                                                                          \
    { fn, g_legacy_arrange, g_legacy_act_bytes }

X86_DOT_ENTRY(z_dot_q4_0, z_q4_0)
X86_DOT_ENTRY(z_dot_q8_0, z_q8_0)
X86_DOT_ENTRY(z_dot_q4_1, z_q4_1)
X86_DOT_ENTRY(z_dot_q5_0, z_q5_0)
X86_DOT_ENTRY(z_dot_q5_1, z_q5_1)
X86_DOT_ENTRY(z_dot_q4_k, z_q4_k)
X86_DOT_ENTRY(z_dot_q5_k, z_q5_k)
X86_DOT_ENTRY(z_dot_q6_k, z_q6_k_dot)

/* Entries left out come from the AVX2 table. */
const fl_kernel_table fl_kernels_avx512_table = {
    .dot =
        {
            [FL_TYPE_Q4_0] = z_dot_q4_0,
            [FL_TYPE_Q8_0] = z_dot_q8_0,
            [FL_TYPE_Q4_1] = z_dot_q4_1,
            [FL_TYPE_Q5_0] = z_dot_q5_0,
            [FL_TYPE_Q5_1] = z_dot_q5_1,
            [FL_TYPE_Q4_K] = z_dot_q4_k,
            [FL_TYPE_Q5_K] = z_dot_q5_k,
            [FL_TYPE_Q6_K] = z_dot_q6_k,
        },
    .quantize_q8a = x86_quantize_q8a,
    .quantize_q8k = x86_quantize_q8k,
    .gemv =
        {
            [FL_TYPE_Q4_0] = G_LEGACY_GEMV(g_gemv_q4_0),
            [FL_TYPE_Q4_1] = G_LEGACY_GEMV(g_gemv_q4_1),
            [FL_TYPE_Q5_0] = G_LEGACY_GEMV(g_gemv_q5_0),
            [FL_TYPE_Q5_1] = G_LEGACY_GEMV(g_gemv_q5_1),
            [FL_TYPE_Q8_0] = G_LEGACY_GEMV(g_gemv_q8_0),
            [FL_TYPE_Q4_K] = {g_gemv_q4_k, g_k_affine_arrange, g_k_act_bytes},
            [FL_TYPE_Q5_K] = {g_gemv_q5_k, g_k_affine_arrange, g_k_act_bytes},
            [FL_TYPE_Q6_K] = {g_gemv_q6_k, g_q6_k_arrange, g_k_act_bytes},
        },
};

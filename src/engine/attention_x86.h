/* x86 pieces of fl_attention, shared by attention_avx2.c and attention_avx512.c. The including
 * file defines AX_VF (a float vector of AX_LANES lanes) and:
 *   ax_zero() ax_load(p) ax_store(p, v) ax_bcast(f) ax_add(a, b) ax_mul(a, b) ax_fmadd(a, b, c)
 *   ax_div(a, b)
 *   ax_max(a, b) ax_hmax(v) ax_hsum(v) ax_round(v) (to nearest)
 *   ax_pow2(v)            2^v for integral v in [-127, 127]
 *   ax_keep_ge(r, x, lim) r where x >= lim, else 0
 * The exponential is fl_attn_exp's (attention.c) evaluated per lane. Not a public header. */
#ifndef FLUID_ENGINE_ATTENTION_X86_H
#define FLUID_ENGINE_ATTENTION_X86_H

#include "engine/attention_impl.h"

#define AX_INLINE static inline __attribute__((always_inline))
#define AX_UNROLL _Pragma("GCC unroll 16")

enum { AX_KV = FL_ATTN_BK / AX_LANES, AX_CHUNK = 4 };

AX_INLINE AX_VF ax_exp(AX_VF x) {
    AX_VF xc = ax_max(x, ax_bcast(-87.0f));
    AX_VF n = ax_round(ax_mul(xc, ax_bcast(1.44269504f)));
    AX_VF r = ax_fmadd(n, ax_bcast(-0.693359375f), xc);
    r = ax_fmadd(n, ax_bcast(2.12194440e-4f), r);
    AX_VF p = ax_fmadd(ax_bcast(1.0f / 720), r, ax_bcast(1.0f / 120));
    p = ax_fmadd(p, r, ax_bcast(1.0f / 24));
    p = ax_fmadd(p, r, ax_bcast(1.0f / 6));
    p = ax_fmadd(p, r, ax_bcast(0.5f));
    p = ax_fmadd(p, r, ax_bcast(1.0f));
    p = ax_fmadd(p, r, ax_bcast(1.0f));
    return ax_keep_ge(ax_mul(p, ax_pow2(n)), x, -87.0f);
}

static void ax_scores(const float *q, const float *kt, int hd, float *s) {
    AX_VF acc[AX_KV];
    AX_UNROLL for (int c = 0; c < AX_KV; c++) acc[c] = ax_zero();
    for (int d = 0; d < hd; d++) {
        AX_VF qd = ax_bcast(q[d]);
        AX_UNROLL for (int c = 0; c < AX_KV; c++) acc[c] =
            ax_fmadd(qd, ax_load(kt + d * FL_ATTN_BK + c * AX_LANES), acc[c]);
    }
    AX_UNROLL for (int c = 0; c < AX_KV; c++) ax_store(s + c * AX_LANES, acc[c]);
}

static float ax_max_of(const float *s, int n) {
    AX_VF m = ax_bcast(-INFINITY);
    int j = 0;
    for (; j + AX_LANES <= n; j += AX_LANES) m = ax_max(m, ax_load(s + j));
    float r = ax_hmax(m);
    for (; j < n; j++) r = s[j] > r ? s[j] : r;
    return r;
}

static float ax_exp_sum(float *s, int n, float shift) {
    AX_VF sum = ax_zero(), sh = ax_bcast(-shift);
    int j = 0;
    for (; j + AX_LANES <= n; j += AX_LANES) {
        AX_VF e = ax_exp(ax_add(ax_load(s + j), sh));
        ax_store(s + j, e);
        sum = ax_add(sum, e);
    }
    float r = ax_hsum(sum);
    for (; j < n; j++) {
        s[j] = fl_attn_exp(s[j] - shift);
        r += s[j];
    }
    return r;
}

/* Output columns [d, d + nv * AX_LANES): nv accumulators through every value row. */
AX_INLINE void ax_acc_cols(float *o, int d, const int nv, float corr, const float *p, int n,
                           const float *v, size_t v_stride) {
    AX_VF acc[AX_CHUNK];
    AX_UNROLL for (int c = 0; c < nv; c++) acc[c] =
        ax_mul(ax_load(o + d + c * AX_LANES), ax_bcast(corr));
    for (int j = 0; j < n; j++) {
        AX_VF pj = ax_bcast(p[j]);
        const float *vj = v + (size_t)j * v_stride + d;
        AX_UNROLL for (int c = 0; c < nv; c++) acc[c] =
            ax_fmadd(pj, ax_load(vj + c * AX_LANES), acc[c]);
    }
    AX_UNROLL for (int c = 0; c < nv; c++) ax_store(o + d + c * AX_LANES, acc[c]);
}

static void ax_accumulate(float *o, int hd, float corr, const float *p, int n, const float *v,
                          size_t v_stride) {
    int d = 0;
    for (; d + AX_CHUNK * AX_LANES <= hd; d += AX_CHUNK * AX_LANES)
        ax_acc_cols(o, d, AX_CHUNK, corr, p, n, v, v_stride);
    for (; d + AX_LANES <= hd; d += AX_LANES) ax_acc_cols(o, d, 1, corr, p, n, v, v_stride);
    for (; d < hd; d++) {
        float acc = o[d] * corr;
        for (int j = 0; j < n; j++) acc += p[j] * v[(size_t)j * v_stride + d];
        o[d] = acc;
    }
}

/* silu(g) = g / (1 + exp(-g)); exp's argument is capped at 88 (finite: silu is then ~0). */
static void ax_swiglu(float *out, const float *gate, const float *up, int n) {
    int i = 0;
    for (; i + AX_LANES <= n; i += AX_LANES) {
        AX_VF g = ax_load(gate + i);
        AX_VF e = ax_exp(ax_mul(ax_max(g, ax_bcast(-88.0f)), ax_bcast(-1.0f)));
        ax_store(out + i, ax_mul(ax_div(g, ax_add(ax_bcast(1.0f), e)), ax_load(up + i)));
    }
    for (; i < n; i++) out[i] = gate[i] / (1.0f + fl_attn_exp(-gate[i])) * up[i];
}

#define AX_TABLE                                                                                   \
    {                                                                                              \
        .scores = ax_scores, .max = ax_max_of, .exp_sum = ax_exp_sum, .accumulate = ax_accumulate, \
        .swiglu = ax_swiglu,                                                                       \
    }

#endif

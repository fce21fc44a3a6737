/* Engine-internal: the per-instruction-set pieces of fl_attention (attention.c holds the
 * driver and the scalar ones). Scores of a query row are computed against a block of
 * FL_ATTN_BK keys transposed into kt (head_dim rows of FL_ATTN_BK floats). */
#ifndef FLUID_ENGINE_ATTENTION_IMPL_H
#define FLUID_ENGINE_ATTENTION_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "engine/attention.h"
#include "engine/cpu.h"

#define FL_ATTN_BK 64

typedef struct fl_attn_table {
    /* s[j] = q · key j for the FL_ATTN_BK keys of kt */
    void (*scores)(const float *q, const float *kt, int head_dim, float *s);
    /* largest of s[0 .. n) */
    float (*max)(const float *s, int n);
    /* s[j] = exp(s[j] - shift) for j < n; returns their sum */
    float (*exp_sum)(float *s, int n, float shift);
    /* o = o * corr + sum_j p[j] * v_j for j < n, v_j = v + j * v_stride */
    void (*accumulate)(float *o, int head_dim, float corr, const float *p, int n, const float *v,
                       size_t v_stride);
    /* out[i] = silu(gate[i]) x up[i] for i < n (out may be gate): the feed-forward gate, here
     * because it needs the same exponential */
    void (*swiglu)(float *out, const float *gate, const float *up, int n);
} fl_attn_table;

extern const fl_attn_table fl_attn_scalar_table;
extern const fl_attn_table fl_attn_avx2_table;
extern const fl_attn_table fl_attn_avx512_table;

/* The pieces of a level, or NULL when the CPU cannot run it. */
const fl_attn_table *fl_attn_for(fl_simd level);

/* fl_attention with the pieces of `level` (tests); false if the CPU cannot run it. */
bool fl_attention_at(fl_simd level, const fl_attn *a, fl_pool *pool);

/* exp(x) by range reduction and a degree-6 polynomial (relative error below 2e-7 for x in
 * [-87, 0]; 0 below): the scalar form of what the SIMD pieces compute per lane. */
float fl_attn_exp(float x);

#endif

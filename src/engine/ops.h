/* Element-wise and per-vector operations of the transformer forward pass, on floats (weights
 * are never touched here: matrices go through kernels.h). */
#ifndef FLUID_ENGINE_OPS_H
#define FLUID_ENGINE_OPS_H

#include <stdbool.h>

#include "engine/threadpool.h"

/* out = x / sqrt(mean(x²) + eps) * w (out may be x). */
void fl_rmsnorm(float *out, const float *x, const float *w, int n, float eps);

/* cos and sin of pos * inv_freq[i] for the n_pairs rotated pairs of one position. */
void fl_rope_angles(const float *inv_freq, int n_pairs, double pos, float *cos_out, float *sin_out);
/* Rotates the first 2 n_pairs elements of one head: pairs (2i, 2i+1), or (i, i + n_pairs) for
 * the NeoX ordering. */
void fl_rope_rotate(float *head, int n_pairs, const float *cos_a, const float *sin_a, bool neox);

/* x += y */
void fl_add(float *x, const float *y, int n);

/* out[i] = silu(gate[i]) * up[i] for i < n (out may be gate), vectorised, on the pool when n
 * is large (prompts) */
void fl_swiglu(float *out, const float *gate, const float *up, long n, fl_pool *pool);

/* One query head against keys/values 0..n_keys-1 (rows `stride` floats apart): out = softmax(q·kᵀ
 * · scale) · v, computed in one pass with a running maximum (no scores row). */
void fl_attend(float *out, const float *q, const float *keys, const float *values, int n_keys,
               long stride, int head_dim, float scale);

#endif

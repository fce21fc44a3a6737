/* The narrow interface between the forward passes and the arithmetic. Everything a model does
 * with its weights goes through these calls, so that faster paths (quantized dot products,
 * SIMD, tiling) can replace the reference code without touching the models. */
#ifndef FLUID_ENGINE_KERNELS_H
#define FLUID_ENGINE_KERNELS_H

#include "engine/tensor.h"
#include "engine/threadpool.h"

/* Is `type` usable as a weight in fl_matmul / fl_dequantize_row? */
bool fl_kernels_support(fl_type type);

/* Y = X · Wᵀ: W is a matrix of `rows` × `cols` (w->ne[1] × w->ne[0]) of any supported type,
 * X holds n_tok rows of `cols` floats, Y receives n_tok rows of `rows` floats. */
void fl_matmul(const fl_tensor *w, const float *x, int n_tok, float *y, fl_pool *pool);

/* Products of one set of activation rows with several matrices of the same width (q, k and v;
 * gate and up): ys[i] receives n_tok rows of ws[i]->ne[1] floats. For one token the
 * activations are converted once per format and all the matrices' rows share one pool run;
 * the results equal those of fl_matmul on each matrix. At most FL_MATMUL_MAX_PARTS matrices. */
enum { FL_MATMUL_MAX_PARTS = 4 };
void fl_matmul_multi(const fl_tensor *const *ws, int n_w, const float *x, int n_tok,
                     float *const *ys, fl_pool *pool);

/* Converts row `row` of matrix `w` to floats (dst holds w->ne[0] floats). Used for embedding
 * look-ups. */
void fl_dequantize_row(const fl_tensor *w, int64_t row, float *dst);

#endif

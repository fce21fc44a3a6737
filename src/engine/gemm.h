/* Matrix-matrix products for batches of tokens (prompt processing): Y = X · Wᵀ as fl_matmul
 * defines it, computed panel by panel. Each thread decodes a panel of weight rows once into a
 * layout made for register-tiled micro-kernels, then runs it against every token of its work
 * unit: quantized weights meet 8-bit activations in integer dot instructions, float weights
 * (F32/F16/BF16) float activations in FMAs. */
#ifndef FLUID_ENGINE_GEMM_H
#define FLUID_ENGINE_GEMM_H

#include <stdbool.h>

#include "engine/tensor.h"
#include "engine/threadpool.h"

/* Below this many tokens fl_matmul keeps its row-by-row dot products: decoding a panel costs
 * about as much as a few tokens' worth of arithmetic. */
#define FL_GEMM_MIN_TOK 8

/* Computes the product with the kernels of the active SIMD level. Returns false (y untouched)
 * when the weight type has no GEMM path or the working memory cannot be had. */
bool fl_gemm(const fl_tensor *w, const float *x, int n_tok, float *y, fl_pool *pool);

#endif

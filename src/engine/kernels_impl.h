/* Engine-internal: the per-instruction-set kernel tables behind fl_matmul. Every table has
 * the same entries; the scalar one is the reference the SIMD ones are tested against. */
#ifndef FLUID_ENGINE_KERNELS_IMPL_H
#define FLUID_ENGINE_KERNELS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/cpu.h"
#include "engine/quant.h"
#include "engine/tensor.h"

/* Most activation rows one dot call handles (weights decoded once, used nt times). */
#define FL_DOT_MAX_TOK 4

/* What the activations are converted to for a weight type. */
typedef enum fl_act_kind {
    FL_ACT_F32, /* float weights: activations stay float */
    FL_ACT_Q8A, /* 32-element formats: fl_block_q8a */
    FL_ACT_Q8K, /* K-quants: fl_block_q8_k */
} fl_act_kind;

fl_act_kind fl_act_kind_of(fl_type weight_type);
/* Bytes of one activation row of n elements for weights of this type. */
size_t fl_act_row_bytes(fl_type weight_type, int64_t n);

/* out[t] = dot(weight row w, activation row t) for t < nt (1 <= nt <= FL_DOT_MAX_TOK); n is
 * the row length in elements; activation row t starts act_stride bytes after row t-1. */
typedef void (*fl_dot_fn)(int64_t n, const void *w, const void *act, size_t act_stride, int nt,
                          float *out);
/* Converts n floats (a multiple of the block size) to activation blocks. */
typedef void (*fl_quantize_act_fn)(const float *x, void *dst, int64_t n);

/* Generation (one token): one activation row against many weight rows.
 *
 * arrange (optional) rewrites a row of standard activation blocks (fl_block_q8a / q8_k) into
 * the kernel's own layout of act_bytes(n) bytes, once per product; rows then computes
 * out[r] = dot(weight row r, activations) for r < nrows, weight rows w_stride bytes apart. A
 * row's result never depends on nrows or on where the row sits in the call. */
typedef size_t (*fl_gemv_act_bytes_fn)(int64_t n);
typedef void (*fl_gemv_arrange_fn)(const void *act, void *dst, int64_t n);
typedef void (*fl_gemv_rows_fn)(int64_t n, const void *w, size_t w_stride, int64_t nrows,
                                const void *act, float *out);
typedef struct fl_gemv_kernel {
    fl_gemv_rows_fn rows;           /* NULL: fl_matmul uses dot with one token */
    fl_gemv_arrange_fn arrange;     /* NULL: rows reads the standard activation blocks */
    fl_gemv_act_bytes_fn act_bytes; /* with arrange */
} fl_gemv_kernel;

typedef struct fl_kernel_table {
    fl_dot_fn dot[FL_TYPE_COUNT]; /* NULL: not provided by this instruction set */
    fl_quantize_act_fn quantize_q8a;
    fl_quantize_act_fn quantize_q8k;
    fl_gemv_kernel gemv[FL_TYPE_COUNT];
} fl_kernel_table;

/* The entries each instruction set provides (some may be NULL in the SIMD tables). */
extern const fl_kernel_table fl_kernels_scalar_table;
extern const fl_kernel_table fl_kernels_avx2_table;
extern const fl_kernel_table fl_kernels_avx512_table;

/* The complete table for a level (missing entries taken from the level below), or NULL when
 * the CPU cannot run it. */
const fl_kernel_table *fl_kernels_for(fl_simd level);

/* Activation row t of a batch. */
static inline const void *fl_act_row(const void *act, size_t stride, int t) {
    return (const char *)act + (size_t)t * stride;
}

#endif

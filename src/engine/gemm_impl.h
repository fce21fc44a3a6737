/* Engine-internal: the data layouts shared by the GEMM driver (gemm.c) and its per-instruction-
 * set micro-kernels (gemm_avx2.c, gemm_avx512.c, the scalar ones in gemm.c).
 *
 * Quantized weights are decoded, a panel of `panel_rows` rows at a time, into one uniform form:
 * every weight is  scale[g] * (code - offset) + min[g]  for its group g of `group` elements
 * (32, or 16 for Q6_K), with codes unsigned bytes. In the panel the codes are interleaved by 4:
 * for each group and each run of 4 elements, the 4 bytes of row 0, then of row 1, ... so that one
 * 4-byte activation broadcast meets every row of the panel in one u8 x s8 dot instruction. After
 * the codes of a group come its `panel_rows` scales, then (formats with a min) its mins.
 *
 * Float weights are converted to a panel of k x panel_rows floats (row r of step k at k *
 * panel_rows + r): one broadcast activation float meets every row in one FMA. */
#ifndef FLUID_ENGINE_GEMM_IMPL_H
#define FLUID_ENGINE_GEMM_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/cpu.h"
#include "engine/tensor.h"
#include "engine/threadpool.h"

/* How one quantized format looks once decoded. */
typedef struct fl_gemm_format {
    int group;    /* elements per scale (and min): 32 or 16 */
    int offset;   /* subtracted from every code: 0, 8, 16, 32 or 128 */
    bool has_min; /* a per-group min is added (Q4_1, Q5_1, Q4_K, Q5_K) */
} fl_gemm_format;

/* Bytes of one group of a quantized panel. */
static inline size_t fl_gemm_group_bytes(const fl_gemm_format *f, int panel_rows) {
    return (size_t)f->group * (size_t)panel_rows +
           (size_t)panel_rows * sizeof(float) * (f->has_min ? 2u : 1u);
}

/* 8-bit activations, per token: `k` codes, and per group the activation scale, the integer
 * the group's sum starts from (-offset * sum of its codes, which undoes the code offset
 * exactly) and scale * sum of codes (what a min multiplies). Token t's arrays start at
 * t * k and t * n_groups. */
typedef struct fl_gemm_acts {
    const int8_t *codes;
    const int32_t *init;
    const float *scale;
    const float *scaled_sum;
    int64_t k;
    int n_groups;
} fl_gemm_acts;

/* One call of a quantized micro-kernel: the panel against tokens [t0, t1); y receives
 * y[t * y_stride + r] for the panel's first `rows` rows. */
typedef struct fl_gemm_qcall {
    const fl_gemm_format *format;
    const uint8_t *panel;
    const fl_gemm_acts *acts;
    int t0, t1, rows;
    float *y;
    size_t y_stride;
} fl_gemm_qcall;

/* The float micro-kernel's call: panel (k x panel_rows floats) against float activation rows
 * x[t * k ...] for t in [t0, t1). */
typedef struct fl_gemm_fcall {
    const float *panel;
    const float *x;
    int64_t k;
    int t0, t1, rows;
    float *y;
    size_t y_stride;
} fl_gemm_fcall;

/* Decoding `rows` (<= panel_rows) weight rows, w_stride bytes apart, into a quantized panel
 * (rows past them get zero codes and scales). codes/scale/min: scratch for one row. */
typedef struct fl_gemm_pjob {
    fl_type type;
    const fl_gemm_format *format;
    const uint8_t *w;
    size_t w_stride;
    int rows;
    int64_t k;
    uint8_t *panel;
    int panel_rows;
    uint8_t *codes;
    float *scale, *min;
} fl_gemm_pjob;

/* The scale (and min) of every group of one row; min untouched for formats without one. */
void fl_gemm_row_scales(fl_type type, const uint8_t *row, int64_t k, float *scale, float *min);
/* Writes the scales (and mins) of panel row r; NULL writes zeros. */
void fl_gemm_put_scales(const fl_gemm_format *f, int panel_rows, uint8_t *panel, int r,
                        const float *scale, const float *min, int64_t k);

typedef struct fl_gemm_table {
    int q_panel_rows, f_panel_rows;
    void (*qpanel)(const fl_gemm_pjob *p);
    void (*quantized)(const fl_gemm_qcall *c);
    void (*floats)(const fl_gemm_fcall *c);
} fl_gemm_table;

extern const fl_gemm_table fl_gemm_scalar_table;
extern const fl_gemm_table fl_gemm_avx2_table;
extern const fl_gemm_table fl_gemm_avx512_table;

/* The table of a level, or NULL when the CPU cannot run it. */
const fl_gemm_table *fl_gemm_for(fl_simd level);

/* fl_gemm with the micro-kernels of `level` (tests compare the levels); false if the CPU
 * cannot run that level or fl_gemm would refuse. */
bool fl_gemm_at(fl_simd level, const fl_tensor *w, const float *x, int n_tok, float *y,
                fl_pool *pool);

#endif

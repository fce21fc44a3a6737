/* Quantized block formats, bit-exact with the GGUF files that carry them, plus the 8-bit
 * activation blocks the dot-product kernels use.
 *
 * Legacy formats hold 32 weights per block with one f16 scale (and a min for the *_1 types);
 * K-quants hold 256 weights per super-block split into sub-blocks whose 6-bit (Q4_K/Q5_K) or
 * 8-bit (Q6_K) scales are themselves scaled by f16 super-block values. */
#ifndef FLUID_ENGINE_QUANT_H
#define FLUID_ENGINE_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/tensor.h"

#define FL_QK 32    /* weights per legacy block */
#define FL_QK_K 256 /* weights per K-quant super-block */

/* value = (q - 8) * d; element i < 16 is the low nibble of qs[i], element i + 16 the high one */
typedef struct fl_block_q4_0 {
    uint16_t d;
    uint8_t qs[16];
} fl_block_q4_0;

/* value = q * d + m */
typedef struct fl_block_q4_1 {
    uint16_t d, m;
    uint8_t qs[16];
} fl_block_q4_1;

/* as Q4_0 with a fifth bit per element in qh (bit i of the little-endian word); value =
 * (q - 16) * d */
typedef struct fl_block_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[16];
} fl_block_q5_0;

/* value = q * d + m, q in [0, 31] */
typedef struct fl_block_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[16];
} fl_block_q5_1;

/* value = q * d */
typedef struct fl_block_q8_0 {
    uint16_t d;
    int8_t qs[32];
} fl_block_q8_0;

/* 8 sub-blocks of 32: value = d * sc[j] * q - dmin * m[j], q in [0, 15]. The 6-bit sc/m are
 * packed in `scales`; each 32-byte run of qs holds two sub-blocks (low nibbles, high nibbles). */
typedef struct fl_block_q4_k {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[128];
} fl_block_q4_k;

/* as Q4_K with q in [0, 31]: bit 2*c (low half) / 2*c+1 (high half) of qh[l] is the fifth bit
 * of element l of the two sub-blocks in 64-element chunk c. */
typedef struct fl_block_q5_k {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[32];
    uint8_t qs[128];
} fl_block_q5_k;

/* 16 sub-blocks of 16: value = d * scales[j] * (q - 32), q in [0, 63]: four low bits in ql,
 * two high bits in qh. */
typedef struct fl_block_q6_k {
    uint8_t ql[128];
    uint8_t qh[64];
    int8_t scales[16];
    uint16_t d;
} fl_block_q6_k;

/* K-quant activations: value = d * qs, bsums[j] = sum of qs[16j .. 16j+15]. */
typedef struct fl_block_q8_k {
    float d;
    int8_t qs[256];
    int16_t bsums[16];
} fl_block_q8_k;

/* Activations for the 32-element formats (engine-internal, never stored in files): value =
 * d * qs; sum = sum of qs (needed by the formats with a min). */
typedef struct fl_block_q8a {
    float d;
    int32_t sum;
    int8_t qs[32];
} fl_block_q8a;

/* Can `type` be produced by fl_quantize_row and read by fl_dequantize? (F32, F16, BF16 and
 * the block formats above, Q8_K included.) */
bool fl_quant_supported(fl_type type);

/* Quantizes n floats (a whole number of blocks of `type`) into dst; returns the bytes
 * written (fl_row_bytes(type, n)), or 0 if the type is unsupported or n does not fit. */
size_t fl_quantize_row(fl_type type, const float *src, void *dst, int64_t n);

/* Converts n elements of `type` back to floats; false if the type is unsupported or n is not
 * a whole number of blocks. */
bool fl_dequantize(fl_type type, const void *src, float *dst, int64_t n);

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K `scales` field. */
static inline void fl_k4_scale_min(const uint8_t *scales, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (scales[j + 4] & 0xF) | ((scales[j - 4] >> 6) << 4);
        *m = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

/* File-type policy for mixtures ("Q4_K_M" etc.): the llama.cpp file-type numbers stored in
 * general.file_type. */
typedef enum fl_ftype {
    FL_FTYPE_ALL_F32 = 0,
    FL_FTYPE_MOSTLY_F16 = 1,
    FL_FTYPE_MOSTLY_Q4_0 = 2,
    FL_FTYPE_MOSTLY_Q4_1 = 3,
    FL_FTYPE_MOSTLY_Q8_0 = 7,
    FL_FTYPE_MOSTLY_Q5_0 = 8,
    FL_FTYPE_MOSTLY_Q5_1 = 9,
    FL_FTYPE_MOSTLY_Q4_K_M = 15,
    FL_FTYPE_MOSTLY_Q5_K_M = 17,
    FL_FTYPE_MOSTLY_Q6_K = 18,
    FL_FTYPE_MOSTLY_BF16 = 32,
} fl_ftype;

/* Parses a user-facing name ("q4_k_m", "q8_0", "f16", ...); false if unknown. */
bool fl_ftype_from_name(const char *name, fl_ftype *out);
const char *fl_ftype_name(fl_ftype ftype);
/* The name of the i-th known file type (0, 1, ...), or NULL past the last: lists them. */
const char *fl_ftype_name_at(size_t i);

/* What the policy needs to know about the model besides the tensor itself. */
typedef struct fl_mixture_model {
    int n_layer;     /* block_count */
    bool has_output; /* false when output.weight is tied to token_embd.weight */
} fl_mixture_model;

/* The type a tensor gets in a file of type `ftype`: `name` is its GGUF name, n_dims/ne0 its
 * rank and row length. 1-D tensors (norms, biases, rope_freqs) stay F32; the output matrix
 * (token_embd when tied) gets Q6_K in 4/5-bit files, and in the K_M mixtures attn_v and
 * ffn_down of the first and last eighth of the layers and every third layer between get Q6_K.
 * K-quant choices fall back to a 32-block format when ne0 is not a multiple of 256, and every
 * block format to F16 when ne0 is not a multiple of 32. */
fl_type fl_mixture_tensor_type(fl_ftype ftype, const char *name, int n_dims, int64_t ne0,
                               const fl_mixture_model *model);

#endif

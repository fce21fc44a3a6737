/* Tensor element types (numbered as in GGUF/ggml files) and the tensor view the engine passes
 * around. A tensor never owns its data: it points into a mapped model file or a buffer that
 * belongs to whoever created the view. */
#ifndef FLUID_ENGINE_TENSOR_H
#define FLUID_ENGINE_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum fl_type {
    FL_TYPE_F32 = 0,
    FL_TYPE_F16 = 1,
    FL_TYPE_Q4_0 = 2,
    FL_TYPE_Q4_1 = 3,
    FL_TYPE_Q5_0 = 6,
    FL_TYPE_Q5_1 = 7,
    FL_TYPE_Q8_0 = 8,
    FL_TYPE_Q8_1 = 9,
    FL_TYPE_Q2_K = 10,
    FL_TYPE_Q3_K = 11,
    FL_TYPE_Q4_K = 12,
    FL_TYPE_Q5_K = 13,
    FL_TYPE_Q6_K = 14,
    FL_TYPE_Q8_K = 15,
    FL_TYPE_I8 = 24,
    FL_TYPE_I16 = 25,
    FL_TYPE_I32 = 26,
    FL_TYPE_I64 = 27,
    FL_TYPE_F64 = 28,
    FL_TYPE_BF16 = 30,
    FL_TYPE_COUNT = 40 /* upper bound of the ids above; not a type */
} fl_type;

/* Layout of one type: `block_size` elements are stored in `block_bytes` bytes. */
typedef struct fl_type_traits {
    const char *name;
    int64_t block_size;
    size_t block_bytes;
} fl_type_traits;

/* Traits of a type the engine can read, or NULL for an unknown/unsupported id. */
const fl_type_traits *fl_type_traits_of(uint32_t type);

/* Bytes taken by `n` elements of `type` (n must be a multiple of the block size); 0 when the
 * type is unknown or n is not a whole number of blocks. */
size_t fl_row_bytes(fl_type type, int64_t n);

float fl_f16_to_f32(uint16_t h);
uint16_t fl_f32_to_f16(float f);
float fl_bf16_to_f32(uint16_t h);
uint16_t fl_f32_to_bf16(float f);

#define FL_MAX_DIMS 4

/* A view of a tensor: ne[0] is the innermost (contiguous) dimension, as in GGUF. A matrix of
 * `rows` rows and `cols` columns has ne[0] = cols, ne[1] = rows. */
typedef struct fl_tensor {
    const char *name;
    fl_type type;
    int n_dims;
    int64_t ne[FL_MAX_DIMS];
    const void *data;
    size_t nbytes;
} fl_tensor;

static inline int64_t fl_tensor_nelements(const fl_tensor *t) {
    return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
}

#endif

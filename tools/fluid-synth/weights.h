/* The weight types fluid-synth can write (--type) and how each tensor is stored in them: the
 * float types and the quantized file types of the engine (engine/quant.h), whose per-tensor
 * choices (e.g. Q6_K for some tensors of a q4_k_m file) follow fl_mixture_tensor_type. */
#ifndef FLUID_SYNTH_WEIGHTS_H
#define FLUID_SYNTH_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "engine/quant.h"
#include "engine/tensor.h"

typedef struct synth_ftype {
    const char *name;    /* the --type value */
    uint32_t file_type;  /* general.file_type (llama.cpp's numbering) */
    fl_type matrix_type; /* the type of the weight matrices */
} synth_ftype;

/* The --type value `name`, or NULL. */
const synth_ftype *synth_ftype_find(const char *name);
/* Prints the accepted --type values separated by '|'. */
void synth_ftype_print_names(FILE *fp);

/* The storage type of tensor `name` (n_dims dimensions, rows of ne0 elements) in a file of
 * type `ft`: the engine's mixture policy (fl_mixture_tensor_type). Vectors (norms, biases,
 * rope factors) are always F32. */
fl_type synth_tensor_type(const synth_ftype *ft, const char *name, int n_dims, int64_t ne0,
                          const fl_mixture_model *model);

/* Converts n floats (a whole number of the type's blocks) into `type`'s encoding at dst. */
bool synth_encode_row(fl_type type, const float *src, int64_t n, void *dst);

#endif

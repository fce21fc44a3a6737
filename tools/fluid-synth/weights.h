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

/* The --type value `name` (an engine file-type name, engine/quant.h): false if unknown. */
bool synth_ftype_find(const char *name, fl_ftype *out);
/* Prints the accepted --type values separated by '|'. */
void synth_ftype_print_names(FILE *fp);

/* The storage type of tensor `name` (n_dims dimensions, rows of ne0 elements) in a file of
 * type `ftype`: the engine's mixture policy (fl_mixture_tensor_type). Vectors (norms, biases,
 * rope factors) are always F32. */
fl_type synth_tensor_type(fl_ftype ftype, const char *name, int n_dims, int64_t ne0,
                          const fl_mixture_model *model);

/* Converts n floats (a whole number of the type's blocks) into `type`'s encoding at dst. */
bool synth_encode_row(fl_type type, const float *src, int64_t n, void *dst);

#endif

#include "fluid-synth/weights.h"

#include <string.h>

#include "engine/quant.h"

/* file_type: llama.cpp's general.file_type numbering (fl_ftype in engine/quant.h) */
static const synth_ftype FTYPES[] = {
    {"f32", FL_FTYPE_ALL_F32, FL_TYPE_F32},
    {"f16", FL_FTYPE_MOSTLY_F16, FL_TYPE_F16},
    {"bf16", FL_FTYPE_MOSTLY_BF16, FL_TYPE_BF16},
    {"q8_0", FL_FTYPE_MOSTLY_Q8_0, FL_TYPE_Q8_0},
    {"q4_0", FL_FTYPE_MOSTLY_Q4_0, FL_TYPE_Q4_0},
    {"q4_1", FL_FTYPE_MOSTLY_Q4_1, FL_TYPE_Q4_1},
    {"q5_0", FL_FTYPE_MOSTLY_Q5_0, FL_TYPE_Q5_0},
    {"q5_1", FL_FTYPE_MOSTLY_Q5_1, FL_TYPE_Q5_1},
    {"q4_k_m", FL_FTYPE_MOSTLY_Q4_K_M, FL_TYPE_Q4_K},
    {"q5_k_m", FL_FTYPE_MOSTLY_Q5_K_M, FL_TYPE_Q5_K},
    {"q6_k", FL_FTYPE_MOSTLY_Q6_K, FL_TYPE_Q6_K},
};

#define N_FTYPES (sizeof FTYPES / sizeof FTYPES[0])

const synth_ftype *synth_ftype_find(const char *name) {
    for (size_t i = 0; i < N_FTYPES; i++) {
        if (strcmp(FTYPES[i].name, name) == 0) return &FTYPES[i];
    }
    return NULL;
}

void synth_ftype_print_names(FILE *fp) {
    for (size_t i = 0; i < N_FTYPES; i++) fprintf(fp, "%s%s", i ? "|" : "", FTYPES[i].name);
}

fl_type synth_tensor_type(const synth_ftype *ft, const char *name, int n_dims, int64_t ne0,
                          const fl_mixture_model *model) {
    return fl_mixture_tensor_type((fl_ftype)ft->file_type, name, n_dims, ne0, model);
}

bool synth_encode_row(fl_type type, const float *src, int64_t n, void *dst) {
    return fl_quantize_row(type, src, dst, n) > 0;
}

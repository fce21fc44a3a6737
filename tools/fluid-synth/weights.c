#include "fluid-synth/weights.h"

#include <string.h>

static const synth_ftype FTYPES[] = {
    {"f32", 0, FL_TYPE_F32},
    {"f16", 1, FL_TYPE_F16},
    {"bf16", 32, FL_TYPE_BF16},
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

fl_type synth_tensor_type(const synth_ftype *ft, const char *name, int n_dims, int64_t ne0) {
    (void)name; /* mixed quantizations choose per tensor (e.g. output.weight) */
    (void)ne0;  /* ... and fall back when a row is not a whole number of blocks */
    return n_dims == 1 ? FL_TYPE_F32 : ft->matrix_type;
}

bool synth_encode_row(fl_type type, const float *src, int64_t n, void *dst) {
    switch (type) {
    case FL_TYPE_F32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        return true;
    case FL_TYPE_F16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = fl_f32_to_f16(src[i]);
        return true;
    }
    case FL_TYPE_BF16: {
        uint16_t *d = dst;
        for (int64_t i = 0; i < n; i++) d[i] = fl_f32_to_bf16(src[i]);
        return true;
    }
    default:
        return false;
    }
}

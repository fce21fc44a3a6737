#include "fluid-synth/weights.h"

#include <string.h>

#include "engine/quant.h"

bool synth_ftype_find(const char *name, fl_ftype *out) {
    /* --type takes the engine's names exactly (lower case), not any spelling */
    return fl_ftype_from_name(name, out) && strcmp(fl_ftype_name(*out), name) == 0;
}

void synth_ftype_print_names(FILE *fp) {
    for (size_t i = 0; fl_ftype_name_at(i) != NULL; i++)
        fprintf(fp, "%s%s", i ? "|" : "", fl_ftype_name_at(i));
}

fl_type synth_tensor_type(fl_ftype ftype, const char *name, int n_dims, int64_t ne0,
                          const fl_mixture_model *model) {
    return fl_mixture_tensor_type(ftype, name, n_dims, ne0, model);
}

bool synth_encode_row(fl_type type, const float *src, int64_t n, void *dst) {
    return fl_quantize_row(type, src, dst, n) > 0;
}

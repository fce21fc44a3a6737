/* File-type names and the per-tensor type policy of the mixed file types (Q4_K_M, Q5_K_M). */
#include "engine/quant.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct ftype_info {
    const char *name;
    fl_ftype ftype;
    fl_type base; /* type of the bulk of the matrices */
} ftype_info;

static const ftype_info FTYPES[] = {
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

enum { N_FTYPES = sizeof FTYPES / sizeof FTYPES[0] };

static const ftype_info *find_ftype(fl_ftype ftype) {
    for (int i = 0; i < N_FTYPES; i++)
        if (FTYPES[i].ftype == ftype) return &FTYPES[i];
    return NULL;
}

bool fl_ftype_from_name(const char *name, fl_ftype *out) {
    for (int i = 0; i < N_FTYPES; i++)
        if (strcasecmp(name, FTYPES[i].name) == 0) {
            *out = FTYPES[i].ftype;
            return true;
        }
    return false;
}

const char *fl_ftype_name(fl_ftype ftype) {
    const ftype_info *info = find_ftype(ftype);
    return info ? info->name : "unknown";
}

const char *fl_ftype_name_at(size_t i) {
    return i < N_FTYPES ? FTYPES[i].name : NULL;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The layer number of a "blk.N." tensor, or -1. */
static int layer_of(const char *name) {
    int layer, used = 0;
    if (sscanf(name, "blk.%d.%n", &layer, &used) == 1 && used > 0) return layer;
    return -1;
}

/* The layers that get more bits in the K_M mixtures: the first and last eighth of the stack
 * and every third layer in between. */
static bool layer_gets_more_bits(int layer, int n_layer) {
    if (layer < 0 || n_layer <= 0) return false;
    return layer < n_layer / 8 || layer >= 7 * n_layer / 8 || (layer - n_layer / 8) % 3 == 2;
}

static bool is_k_quant(fl_type t) {
    return t == FL_TYPE_Q4_K || t == FL_TYPE_Q5_K || t == FL_TYPE_Q6_K;
}

/* What a K-quant becomes for rows that are not a whole number of 256-element blocks. */
static fl_type k_fallback(fl_type t) {
    switch (t) {
    case FL_TYPE_Q4_K:
        return FL_TYPE_Q5_0;
    case FL_TYPE_Q5_K:
        return FL_TYPE_Q5_1;
    default:
        return FL_TYPE_Q8_0;
    }
}

static fl_type choose_matrix_type(const ftype_info *info, const char *name,
                                  const fl_mixture_model *model) {
    bool output = strcmp(name, "output.weight") == 0 ||
                  (!model->has_output && strcmp(name, "token_embd.weight") == 0);
    bool mixture = info->ftype == FL_FTYPE_MOSTLY_Q4_K_M || info->ftype == FL_FTYPE_MOSTLY_Q5_K_M;
    bool low_bits = mixture || info->ftype == FL_FTYPE_MOSTLY_Q4_0 ||
                    info->ftype == FL_FTYPE_MOSTLY_Q4_1 || info->ftype == FL_FTYPE_MOSTLY_Q5_0 ||
                    info->ftype == FL_FTYPE_MOSTLY_Q5_1;
    if (output && low_bits) return FL_TYPE_Q6_K;
    if (!mixture) return info->base;
    int layer = layer_of(name);
    if ((ends_with(name, ".attn_v.weight") || ends_with(name, ".ffn_down.weight")) &&
        layer_gets_more_bits(layer, model->n_layer))
        return FL_TYPE_Q6_K;
    if (info->ftype == FL_FTYPE_MOSTLY_Q4_K_M && ends_with(name, ".attn_qkv.weight"))
        return FL_TYPE_Q5_K;
    return info->base;
}

fl_type fl_mixture_tensor_type(fl_ftype ftype, const char *name, int n_dims, int64_t ne0,
                               const fl_mixture_model *model) {
    const ftype_info *info = find_ftype(ftype);
    if (info == NULL || n_dims < 2 || ends_with(name, "_norm.weight") ||
        strcmp(name, "rope_freqs.weight") == 0)
        return FL_TYPE_F32;
    fl_type t = choose_matrix_type(info, name, model);
    if (is_k_quant(t) && ne0 % FL_QK_K != 0) t = k_fallback(t);
    if (fl_type_traits_of(t)->block_size > 1 && ne0 % FL_QK != 0) t = FL_TYPE_F16;
    return t;
}

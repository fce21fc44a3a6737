/* Placeholders until the real implementation lands; the owner deletes this file. */
#include "fluid/fluid.h"
#include "util/error.h"

#include <stddef.h>

fluid_model *fluid_model_load(const char *path, fluid_error *err) {
    (void)path;
    (void)err;
    fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_model_load: not implemented yet");
    return NULL;
}

void fluid_model_free(fluid_model *model) {
    (void)model;
}

const fluid_vocab *fluid_model_vocab(const fluid_model *model) {
    (void)model;
    return NULL;
}

void fluid_model_get_info(const fluid_model *model, fluid_model_info *info) {
    (void)model;
    (void)info;
}

fluid_session *fluid_session_create(fluid_model *model, int32_t n_ctx, fluid_error *err) {
    (void)model;
    (void)n_ctx;
    (void)err;
    fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_session_create: not implemented yet");
    return NULL;
}

void fluid_session_free(fluid_session *s) {
    (void)s;
}

int32_t fluid_session_n_ctx(const fluid_session *s) {
    (void)s;
    return -1;
}

int32_t fluid_session_n_past(const fluid_session *s) {
    (void)s;
    return -1;
}

size_t fluid_session_bytes(const fluid_session *s) {
    (void)s;
    return 0;
}

void fluid_session_rewind(fluid_session *s, int32_t n_past) {
    (void)s;
    (void)n_past;
}

void fluid_session_keep_all_logits(fluid_session *s, bool on) {
    (void)s;
    (void)on;
}

fluid_status fluid_session_decode(fluid_session *s, const int32_t *tokens, int32_t n,
                                  fluid_pool *pool, fluid_error *err) {
    (void)s;
    (void)tokens;
    (void)n;
    (void)pool;
    (void)err;
    fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_session_decode: not implemented yet");
    return FLUID_ERR_UNSUPPORTED;
}

const float *fluid_session_logits(const fluid_session *s, int32_t i) {
    (void)s;
    (void)i;
    return NULL;
}

/* Placeholders until the real implementation lands; the owner deletes this file. */
#include "fluid/fluid.h"
#include "util/error.h"

#include <stddef.h>

void fluid_sampling_defaults(fluid_sampling *params) {
    (void)params;
}

fluid_sampler *fluid_sampler_create(const fluid_sampling *params, int32_t n_vocab,
                                    fluid_error *err) {
    (void)params;
    (void)n_vocab;
    (void)err;
    fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_sampler_create: not implemented yet");
    return NULL;
}

void fluid_sampler_free(fluid_sampler *s) {
    (void)s;
}

void fluid_sampler_accept(fluid_sampler *s, int32_t token) {
    (void)s;
    (void)token;
}

int32_t fluid_sampler_sample(fluid_sampler *s, const float *logits) {
    (void)s;
    (void)logits;
    return -1;
}

float fluid_logprobs(const float *logits, int32_t n_vocab, int32_t token, int32_t k,
                     fluid_token_logprob *top) {
    (void)logits;
    (void)n_vocab;
    (void)token;
    (void)k;
    (void)top;
    return 0;
}

/* Placeholders until the Whisper engine lands; the owner deletes this file. */
#include "fluid/whisper.h"
#include "util/error.h"

#include <string.h>

fluid_status fluid_audio_decode(const void *bytes, size_t n_bytes, float **pcm, size_t *n_samples,
                                fluid_error *err) {
    (void)bytes;
    (void)n_bytes;
    (void)pcm;
    (void)n_samples;
    return fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_audio_decode: not implemented yet");
}

fluid_status fluid_audio_decode_file(const char *path, float **pcm, size_t *n_samples,
                                     fluid_error *err) {
    (void)path;
    (void)pcm;
    (void)n_samples;
    return fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_audio_decode_file: not implemented yet");
}

fluid_whisper *fluid_whisper_load(const char *path, fluid_error *err) {
    (void)path;
    fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_whisper_load: not implemented yet");
    return NULL;
}

void fluid_whisper_free(fluid_whisper *model) {
    (void)model;
}

void fluid_whisper_get_info(const fluid_whisper *model, fluid_whisper_info *info) {
    (void)model;
    memset(info, 0, sizeof(*info));
}

int32_t fluid_whisper_lang_id(const char *code_or_name) {
    (void)code_or_name;
    return -1;
}

const char *fluid_whisper_lang_code(int32_t id) {
    (void)id;
    return NULL;
}

const char *fluid_whisper_lang_name(int32_t id) {
    (void)id;
    return NULL;
}

const char *fluid_whisper_token_text(const fluid_whisper *model, int32_t token) {
    (void)model;
    (void)token;
    return NULL;
}

void fluid_whisper_params_defaults(fluid_whisper_params *p) {
    memset(p, 0, sizeof(*p));
    p->temperature_increment = 0.2f;
    p->fallback = true;
    p->compression_ratio_threshold = 2.4f;
    p->logprob_threshold = -1.0f;
    p->no_speech_threshold = 0.6f;
    p->beam_size = 5;
    p->best_of = 5;
    p->condition_on_previous_text = true;
    p->timestamps = true;
}

fluid_status fluid_whisper_transcribe(fluid_whisper *model, fluid_pool *pool, const float *pcm,
                                      size_t n_samples, const fluid_whisper_params *params,
                                      fluid_whisper_result *result, fluid_error *err) {
    (void)model;
    (void)pool;
    (void)pcm;
    (void)n_samples;
    (void)params;
    if (result) memset(result, 0, sizeof(*result));
    return fl_set_error(err, FLUID_ERR_UNSUPPORTED,
                        "fluid_whisper_transcribe: not implemented yet");
}

void fluid_whisper_result_free(fluid_whisper_result *result) {
    (void)result;
}

int32_t fluid_whisper_detect_language(fluid_whisper *model, fluid_pool *pool, const float *pcm,
                                      size_t n_samples, float *prob, fluid_error *err) {
    (void)model;
    (void)pool;
    (void)pcm;
    (void)n_samples;
    (void)prob;
    fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_whisper_detect_language: not implemented yet");
    return -1;
}

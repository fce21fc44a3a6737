/* Placeholders until the real implementation lands; the owner deletes this file. */
#include "engine/vocab.h"
#include "util/error.h"

#include <stddef.h>

fluid_vocab *fluid_vocab_load(const char *gguf_path, fluid_error *err) {
    (void)gguf_path;
    (void)err;
    fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_vocab_load: not implemented yet");
    return NULL;
}

void fluid_vocab_free(fluid_vocab *vocab) {
    (void)vocab;
}

int32_t fluid_vocab_size(const fluid_vocab *vocab) {
    (void)vocab;
    return -1;
}

int32_t fluid_token_bos(const fluid_vocab *vocab) {
    (void)vocab;
    return -1;
}

int32_t fluid_token_eos(const fluid_vocab *vocab) {
    (void)vocab;
    return -1;
}

bool fluid_token_is_eog(const fluid_vocab *vocab, int32_t token) {
    (void)vocab;
    (void)token;
    return false;
}

fluid_status fluid_tokenize(const fluid_vocab *vocab, const char *text, size_t len,
                            bool add_special, bool parse_special, int32_t **tokens,
                            size_t *n_tokens, fluid_error *err) {
    (void)vocab;
    (void)text;
    (void)len;
    (void)add_special;
    (void)parse_special;
    (void)tokens;
    (void)n_tokens;
    (void)err;
    fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_tokenize: not implemented yet");
    return FLUID_ERR_UNSUPPORTED;
}

size_t fluid_token_bytes(const fluid_vocab *vocab, int32_t token, bool render_special, char *buf,
                         size_t size) {
    (void)vocab;
    (void)token;
    (void)render_special;
    (void)buf;
    (void)size;
    return 0;
}

fluid_detok *fluid_detok_create(const fluid_vocab *vocab, bool render_special) {
    (void)vocab;
    (void)render_special;
    return NULL;
}

const char *fluid_detok_push(fluid_detok *d, int32_t token, size_t *len) {
    (void)d;
    (void)token;
    (void)len;
    return NULL;
}

const char *fluid_detok_flush(fluid_detok *d, size_t *len) {
    (void)d;
    (void)len;
    return NULL;
}

void fluid_detok_free(fluid_detok *d) {
    (void)d;
}

fluid_vocab *fl_vocab_from_gguf(const gguf_file *f, fluid_error *err) {
    (void)f;
    (void)err;
    fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fl_vocab_from_gguf: not implemented yet");
    return NULL;
}

const char *fl_vocab_chat_template(const fluid_vocab *vocab) {
    (void)vocab;
    return NULL;
}

const char *fl_vocab_token_text(const fluid_vocab *vocab, int32_t token) {
    (void)vocab;
    (void)token;
    return NULL;
}

int32_t fl_vocab_find(const fluid_vocab *vocab, const char *text) {
    (void)vocab;
    (void)text;
    return -1;
}

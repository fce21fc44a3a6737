/* Engine-internal side of the vocabulary (the public side is in fluid/fluid.h). */
#ifndef FLUID_ENGINE_VOCAB_H
#define FLUID_ENGINE_VOCAB_H

#include "engine/gguf.h"
#include "fluid/fluid.h"

/* Reads tokenizer.ggml.* from an open GGUF file (the vocabulary copies what it keeps, so the
 * file may be closed afterwards). */
fluid_vocab *fl_vocab_from_gguf(const gguf_file *f, fluid_error *err);

/* The template text from tokenizer.chat_template, or NULL when the file has none. */
const char *fl_vocab_chat_template(const fluid_vocab *vocab);

/* The text of a token as stored in the vocabulary (e.g. "<|im_start|>", "Ġthe"), or NULL. */
const char *fl_vocab_token_text(const fluid_vocab *vocab, int32_t token);

/* The id of a token whose stored text is exactly `text`, or -1. */
int32_t fl_vocab_find(const fluid_vocab *vocab, const char *text);

#endif

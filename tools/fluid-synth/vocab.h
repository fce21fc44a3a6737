/* The tokenizer part of a synthesized model: either a small built-in byte-level BPE vocabulary
 * (no outside file needed) or every tokenizer.* key copied from a vocabulary GGUF. */
#ifndef FLUID_SYNTH_VOCAB_H
#define FLUID_SYNTH_VOCAB_H

#include <stddef.h>
#include <stdint.h>

#include "engine/gguf.h"

/* Both return the number of tokens, or -1 with a message in err. */
int64_t synth_vocab_builtin(gguf_writer *w, char *err, size_t err_size);
int64_t synth_vocab_copy(gguf_writer *w, const char *path, char *err, size_t err_size);

#endif

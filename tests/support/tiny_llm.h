/* Writes tiny language models (random weights, no tokenizer) with the GGUF writer, optionally
 * damaged in one place, for the model loader and session tests. */
#ifndef FLUID_TESTS_TINY_LLM_H
#define FLUID_TESTS_TINY_LLM_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/tensor.h"

typedef struct tiny_llm_options {
    const char *arch;          /* "llama" (default), "qwen2", "qwen3" or "phi3"; any string */
    fl_type type;              /* of the matrices (F32 by default) */
    int32_t n_head_kv;         /* 0 = 2 */
    int32_t n_ctx;             /* 0 = 64 */
    const char *omit_tensor;   /* a tensor left out */
    const char *widen_tensor;  /* a tensor written one column wider than it should be */
    const char *retype_tensor; /* a tensor written as I32 (which no kernel runs) */
    const char *omit_key;      /* a metadata key (without the "arch." prefix) left out */
    const char *rope_scaling;  /* written as arch.rope.scaling.type (factor 2) */
} tiny_llm_options;

enum { TINY_LLM_VOCAB = 50, TINY_LLM_EMBD = 32, TINY_LLM_LAYERS = 2, TINY_LLM_HEADS = 4 };

/* Writes the model to path; false (with a message on stderr) when writing failed. */
bool tiny_llm_write(const char *path, const tiny_llm_options *options);

/* A fresh temporary file name (the file is created empty); free() it. */
char *tiny_llm_temp_path(void);

#endif

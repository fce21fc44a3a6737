/* fluid-synth for the llama family: random-weight models in the shapes of LLM_CONTRACT.md. */
#ifndef FLUID_SYNTH_LLM_H
#define FLUID_SYNTH_LLM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "fluid-synth/weights.h"

typedef struct synth_llm_options {
    const char *arch;       /* llama | qwen2 | qwen3 | phi3 */
    const char *preset;     /* see synth_llm_print_presets */
    const char *vocab_path; /* NULL: the built-in vocabulary */
    const char *out_path;
    fl_ftype ftype;
    uint64_t seed;
    double std;          /* standard deviation of the random weights (0: all zeros) */
    int64_t n_layer;     /* 0: the preset's; else fewer/more layers of the same width */
    int64_t n_pad_vocab; /* embedding/output rows beyond the vocabulary's tokens */
} synth_llm_options;

bool synth_llm_arch_known(const char *arch);
bool synth_llm_preset_known(const char *preset);
void synth_llm_print_archs(FILE *fp);   /* "llama|qwen2|..." */
void synth_llm_print_presets(FILE *fp); /* "tiny|qwen2.5-0.5b|..." */

/* Writes the model; on failure prints a message to stderr and returns false. */
bool synth_llm(const synth_llm_options *o);

#endif

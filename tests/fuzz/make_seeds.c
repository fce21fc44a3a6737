/* Writes the binary GGUF seeds of corpus/gguf (run by make_seeds.py): small models from
 * tests/support/tiny_llm (F16/BF16, a few architectures, one damaged) and the two built-in
 * vocabularies of the harness. Usage: fuzz-make-seeds DIR */
#include <stdio.h>

#include "harness.h"
#include "support/tiny_llm.h"

typedef struct seed {
    const char *name;
    tiny_llm_options options;
} seed;

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz-make-seeds DIR\n");
        return 2;
    }
    const seed seeds[] = {
        {"llama-f16.gguf", {.arch = "llama", .type = FL_TYPE_F16}},
        {"qwen2-bf16.gguf", {.arch = "qwen2", .type = FL_TYPE_BF16, .n_head_kv = 4}},
        {"qwen3-f16.gguf", {.arch = "qwen3", .type = FL_TYPE_F16, .rope_scaling = "linear"}},
        {"phi3-f16-no-ffn-down.gguf",
         {.arch = "phi3", .type = FL_TYPE_F16, .omit_tensor = "blk.1.ffn_down.weight"}},
    };
    char path[4096];
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", argv[1], seeds[i].name);
        if (!tiny_llm_write(path, &seeds[i].options)) return 1;
    }
    const char *vocabs[2] = {"vocab-bpe.gguf", "vocab-spm.gguf"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", argv[1], vocabs[i]);
        if (!fz_vocab_write(i, path)) {
            fprintf(stderr, "fuzz-make-seeds: cannot write %s\n", path);
            return 1;
        }
    }
    return 0;
}

/* fluid-bench: inference speed, in the form of llama-bench.
 *
 *   fluid-bench -m MODEL [-t THREADS] [-p N_PROMPT] [-n N_GEN] [-r REPS] [--json]
 *   fluid-bench --membw [-t THREADS] [--size MIB] [-r PASSES]
 *
 * The mode follows the model file's magic: GGUF language models (fluid-bench/llm.c), ggml
 * Whisper models (fluid-bench/whisper.c); --membw measures memory read bandwidth. */
#include <stdio.h>
#include <string.h>

#include "fluid-bench/bench.h"
#include "fluid-bench/whisper.h"

/* The -m argument, or NULL. */
static const char *model_path(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "-m") == 0) return argv[i + 1];
    return NULL;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--membw") == 0) return bench_membw_main(argc, argv);
    const char *path = model_path(argc, argv);
    if (path == NULL) return bench_llm_main(argc, argv); /* prints the usage */
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fluid-bench: cannot open %s\n", path);
        return 1;
    }
    char magic[4] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got == sizeof magic && memcmp(magic, "GGUF", 4) == 0) return bench_llm_main(argc, argv);
    return bench_whisper_main(argc, argv);
}

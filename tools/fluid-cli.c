/* fluid-cli: runs a model from the command line. The mode follows the model file's magic:
 * "GGUF" is a language model, "lmgg" (ggml's legacy magic) a whisper speech model. */
#include "fluid-cli/llm.h"
#include "fluid-cli/whisper.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static void usage(FILE *out) {
    fprintf(out, "usage: fluid-cli -m MODEL [options]\n"
                 "The model file decides the mode: a GGUF language model, or a ggml whisper "
                 "model.\n\n");
    cli_llm_usage(out);
}

/* The value of -m / --model, or NULL. */
static const char *model_path(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "-m") == 0 || strcmp(argv[i], "--model") == 0) return argv[i + 1];
    return NULL;
}

static bool wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) return true;
    return false;
}

int main(int argc, char **argv) {
    const char *path = model_path(argc, argv);
    if (path == NULL) {
        if (wants_help(argc, argv)) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "fluid-cli: no model given (-m MODEL); see fluid-cli --help\n");
        return 1;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fluid-cli: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char magic[4] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (got == sizeof magic && memcmp(magic, "GGUF", 4) == 0) return cli_llm_main(argc, argv);
    if (got == sizeof magic && memcmp(magic, "lmgg", 4) == 0) return cli_whisper_main(argc, argv);
    fprintf(stderr, "fluid-cli: %s is neither a GGUF model nor a ggml whisper model\n", path);
    return 1;
}

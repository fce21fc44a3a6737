/* fluid-synth: writes GGUF models with random weights in real architectures and shapes, for
 * tests and benchmarks. `--arch whisper` is handed to the Whisper writer whole. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid-synth/llm.h"
#include "fluid-synth/weights.h"
#include "fluid-synth/whisper.h"

static void usage(FILE *fp) {
    fprintf(fp, "usage: fluid-synth --arch ");
    synth_llm_print_archs(fp);
    fprintf(fp, " --preset ");
    synth_llm_print_presets(fp);
    fprintf(fp, "\n                   [--vocab VOCAB.gguf] [--type ");
    synth_ftype_print_names(fp);
    fprintf(fp, "] [--seed N] [--std S] [--layers N] [--pad-vocab N] -o OUT.gguf\n"
                "       fluid-synth --arch whisper ... (see fluid-synth --arch whisper --help)\n"
                "\n"
                "Writes a GGUF model with random weights: normal(0, S) matrices and biases, norm\n"
                "weights 1, in the standard tensor names and metadata keys of the architecture.\n"
                "  --vocab FILE  copy every tokenizer.* key from FILE (the model gets its token\n"
                "                count); without it a small built-in BPE vocabulary is written\n"
                "  --type T      weight matrix type (default f32); vectors are always f32\n"
                "  --seed N      random seed (default 1)\n"
                "  --std S       standard deviation of the weights (default 0.02)\n"
                "  --layers N    N layers instead of the preset's (same width; for quick tests)\n"
                "  --pad-vocab N N rows more in token_embd/output than the vocabulary has tokens\n"
                "                (as models padded to a round row count)\n"
                "  -o FILE       output file (written to FILE.tmp, then renamed)\n");
}

static bool is_whisper(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--arch=whisper") == 0) return true;
        if (strcmp(argv[i], "--arch") == 0 && i + 1 < argc && strcmp(argv[i + 1], "whisper") == 0) {
            return true;
        }
    }
    return false;
}

static bool parse_u64(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-') return false;
    *out = v;
    return true;
}

static bool parse_std(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0.0) return false;
    *out = v;
    return true;
}

static bool parse_number(const char *flag, const char *value, synth_llm_options *o) {
    if (strcmp(flag, "--std") == 0) return parse_std(value, &o->std);
    uint64_t v;
    if (!parse_u64(value, &v)) return false;
    if (strcmp(flag, "--seed") == 0) {
        o->seed = v;
        return true;
    }
    if (strcmp(flag, "--pad-vocab") == 0) {
        if (v > 1000000) return false;
        o->n_pad_vocab = (int64_t)v;
        return true;
    }
    if (v < 1 || v > 1000) return false;
    o->n_layer = (int64_t)v;
    return true;
}

/* Returns 0 to go on, or an exit code (help printed: 0 is returned as -1). */
static int parse_args(int argc, char **argv, synth_llm_options *o) {
    const char *type = "f32";
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "-h") == 0 || strcmp(flag, "--help") == 0) {
            usage(stdout);
            return -1;
        }
        const char **target = NULL;
        if (strcmp(flag, "--arch") == 0)
            target = &o->arch;
        else if (strcmp(flag, "--preset") == 0)
            target = &o->preset;
        else if (strcmp(flag, "--vocab") == 0)
            target = &o->vocab_path;
        else if (strcmp(flag, "--type") == 0)
            target = &type;
        else if (strcmp(flag, "-o") == 0 || strcmp(flag, "--output") == 0)
            target = &o->out_path;
        bool numeric = strcmp(flag, "--seed") == 0 || strcmp(flag, "--std") == 0 ||
                       strcmp(flag, "--layers") == 0 || strcmp(flag, "--pad-vocab") == 0;
        if (target == NULL && !numeric) {
            fprintf(stderr, "fluid-synth: unknown option '%s' (see --help)\n", flag);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "fluid-synth: %s needs a value\n", flag);
            return 2;
        }
        const char *value = argv[++i];
        if (target != NULL) {
            *target = value;
        } else if (!parse_number(flag, value, o)) {
            fprintf(stderr, "fluid-synth: bad value '%s' for %s\n", value, flag);
            return 2;
        }
    }
    if (!synth_ftype_find(type, &o->ftype)) {
        fprintf(stderr, "fluid-synth: unknown --type '%s' (one of ", type);
        synth_ftype_print_names(stderr);
        fprintf(stderr, ")\n");
        return 2;
    }
    if (o->arch == NULL || !synth_llm_arch_known(o->arch)) {
        fprintf(stderr, "fluid-synth: --arch must be one of ");
        synth_llm_print_archs(stderr);
        fprintf(stderr, "|whisper\n");
        return 2;
    }
    if (o->preset == NULL || !synth_llm_preset_known(o->preset)) {
        fprintf(stderr, "fluid-synth: --preset must be one of ");
        synth_llm_print_presets(stderr);
        fprintf(stderr, "\n");
        return 2;
    }
    if (o->out_path == NULL) {
        fprintf(stderr, "fluid-synth: -o OUT.gguf is required\n");
        return 2;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (is_whisper(argc, argv)) return synth_whisper(argc, argv);
    synth_llm_options o = {.seed = 1, .std = 0.02};
    int rc = parse_args(argc, argv, &o);
    if (rc != 0) return rc < 0 ? 0 : rc;
    return synth_llm(&o) ? 0 : 1;
}

/* fluid-synth --arch whisper: a random-weight Whisper model in whisper.cpp's ggml format with
 * the real vocabulary and mel filters of --from (see wh_synth_write). */
#include "fluid-synth/whisper.h"

#include "engine/whisper_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    fprintf(stderr, "usage: fluid-synth --arch whisper --preset tiny|base|small|test "
                    "--type f32|f16|q8_0|q5_0|q5_1|q4_0|q4_1|q2_k|q3_k|q4_k|q5_k|q6_k "
                    "--from ggml-model.bin -o OUT.bin [--seed N]\n");
}

static bool type_by_name(const char *name, fl_type *type) {
    for (uint32_t t = 0; t < FL_TYPE_COUNT; t++) {
        const fl_type_traits *tr = fl_type_traits_of(t);
        if (tr && strcmp(tr->name, name) == 0) {
            *type = (fl_type)t;
            return true;
        }
    }
    return false;
}

int synth_whisper(int argc, char **argv) {
    const char *preset = "tiny", *type_name = "f16", *from = NULL, *out = NULL;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return 0;
        }
        if (strncmp(a, "--arch=", 7) == 0) {
            i--; /* a flag without a separate value */
            continue;
        }
        if (strcmp(a, "--preset") == 0)
            preset = v;
        else if (strcmp(a, "--type") == 0)
            type_name = v;
        else if (strcmp(a, "--from") == 0)
            from = v;
        else if (strcmp(a, "-o") == 0)
            out = v;
        else if (strcmp(a, "--seed") == 0)
            seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--arch") != 0) {
            usage();
            return 2;
        }
    }
    fl_type type;
    if (!from || !out || !type_by_name(type_name, &type)) {
        usage();
        return 2;
    }
    fluid_error err = {0};
    if (wh_synth_write(from, out, preset, type, seed, &err) != FLUID_OK) {
        fprintf(stderr, "fluid-synth: %s\n", err.message);
        return 1;
    }
    return 0;
}

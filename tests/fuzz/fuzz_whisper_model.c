/* Whisper models in the ggml format: the loader (which only takes a path) on the fuzzer's bytes
 * through a memfd, then the token texts and model facts of what it accepts. */
#include <string.h>

#include "fluid/whisper.h"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_file file;
    const char *path = fz_file_open(&file, data, size);
    if (path == NULL) return 0;
    fluid_error err = {0};
    fluid_whisper *m = fluid_whisper_load(path, &err);
    if (m == NULL) {
        fz_check(err.code != FLUID_OK && err.message[0] != '\0', "a rejected model has a message");
    } else {
        fluid_whisper_info info;
        fluid_whisper_get_info(m, &info);
        for (int32_t t = -1; t <= info.n_vocab; t++) {
            const char *text = fluid_whisper_token_text(m, t);
            fz_check((text != NULL) == (t >= 0 && t < info.n_vocab),
                     "every token in range has a text, none outside");
            fz_check(text == NULL || strlen(text) < 4096, "token texts are short strings");
        }
        fluid_whisper_free(m);
    }
    fz_file_close(&file);
    return 0;
}

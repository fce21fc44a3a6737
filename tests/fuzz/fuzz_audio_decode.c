/* Audio uploads: fluid_audio_decode (libavformat probing, demuxing, decoding, resampling to
 * 16 kHz mono) on the fuzzer's bytes. */
#include <math.h>
#include <stdlib.h>

#include "fluid/whisper.h"
#include "harness.h"

/* libFuzzer calls this once: libav's complaints about the inputs go to fluid's log (debug,
 * hidden) rather than to stderr on every input. */
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    fluid_audio_log_to_fluid();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    float *pcm = NULL;
    size_t n = 0;
    fluid_error err = {0};
    if (fluid_audio_decode(data, size, &pcm, &n, &err) == FLUID_OK) {
        for (size_t i = 0; i < n; i++)
            fz_check(isfinite(pcm[i]) && fabsf(pcm[i]) <= 1.0f, "samples lie in [-1, 1]");
        free(pcm);
    } else {
        fz_check(pcm == NULL || n == 0, "no samples from a failed decode");
        fz_check(err.message[0] != '\0', "a failed decode has a message");
    }
    return 0;
}

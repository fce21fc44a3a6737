/* Audio uploads: fluid_audio_decode (libavformat probing, demuxing, decoding, resampling to
 * 16 kHz mono) on the fuzzer's bytes; what decodes must stop at a sample cap below its length
 * (fluid_audio_decode_max, the server's --max-audio-seconds). */
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

/* The same bytes with a cap below their length: refused, nothing returned. */
static void check_cap(const uint8_t *data, size_t size, size_t cap) {
    float *pcm = NULL;
    size_t n = 7;
    fluid_error err = {0};
    fluid_status st = fluid_audio_decode_max(data, size, cap, &pcm, &n, &err);
    fz_check(st == FLUID_ERR_LIMIT && pcm == NULL && n == 0,
             "a decode longer than its cap fails with FLUID_ERR_LIMIT and no samples");
    free(pcm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    float *pcm = NULL;
    size_t n = 0;
    fluid_error err = {0};
    if (fluid_audio_decode(data, size, &pcm, &n, &err) == FLUID_OK) {
        for (size_t i = 0; i < n; i++)
            fz_check(isfinite(pcm[i]) && fabsf(pcm[i]) <= 1.0f, "samples lie in [-1, 1]");
        free(pcm);
        if (n >= 2) check_cap(data, size, n / 2);
    } else {
        fz_check(pcm == NULL || n == 0, "no samples from a failed decode");
        fz_check(err.message[0] != '\0', "a failed decode has a message");
    }
    return 0;
}

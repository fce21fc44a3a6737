/* Test helper: dumps the engine's intermediate results for the numpy reference
 * (tests/test_whisper_reference.py). Usage: whisper-dump MODEL AUDIO OUTDIR [TOKENS...]
 * Writes OUTDIR/mel.f32 (n_mels x frames, audio + 30 s of silence), OUTDIR/enc.f32 (encoder
 * output of the first window) and OUTDIR/logits.f32 (decoder logits of every given token, fed
 * in one batch after the first two fed one by one, which exercises the KV cache).
 * whisper-dump synth FROM OUT TYPE SEED writes a random "test" model (as fluid-synth does). */
#include "engine/whisper_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int write_floats(const char *dir, const char *name, const float *x, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(x, sizeof(float), n, f) != n) {
        fprintf(stderr, "whisper-dump: cannot write %s\n", path);
        if (f) fclose(f);
        return 1;
    }
    return fclose(f) != 0;
}

static int fail(const fluid_error *err) {
    fprintf(stderr, "whisper-dump: %s\n", err->message);
    return 1;
}

static int synth(char **argv) {
    fluid_error err = {0};
    fl_type type = FL_TYPE_COUNT;
    for (uint32_t t = 0; t < FL_TYPE_COUNT; t++) {
        const fl_type_traits *tr = fl_type_traits_of(t);
        if (tr && strcmp(tr->name, argv[4]) == 0) type = (fl_type)t;
    }
    if (wh_synth_write(argv[2], argv[3], "test", type, strtoull(argv[5], NULL, 10), &err) !=
        FLUID_OK)
        return fail(&err);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "synth") == 0) return synth(argv);
    if (argc < 5) {
        fprintf(stderr, "usage: whisper-dump MODEL AUDIO OUTDIR TOKEN...\n");
        return 2;
    }
    fluid_error err = {0};
    fluid_whisper *m = fluid_whisper_load(argv[1], &err);
    if (!m) return fail(&err);
    float *pcm = NULL, *mel = NULL;
    size_t n = 0, frames = 0;
    if (fluid_audio_decode_file(argv[2], &pcm, &n, &err) != FLUID_OK) return fail(&err);
    if (wh_log_mel(pcm, n, WH_CHUNK_SAMPLES, m->mel_filters, m->hp.n_mels, m->n_fft_bins, &mel,
                   &frames, &err) != FLUID_OK)
        return fail(&err);
    int rc = write_floats(argv[3], "mel.f32", mel, (size_t)m->hp.n_mels * frames);
    fl_pool *pool = fl_pool_create(2);
    wh_state *st = wh_state_create(m, 1, &err);
    if (!st || wh_encode(st, mel, frames, pool, &err) != FLUID_OK) return fail(&err);
    rc |= write_floats(argv[3], "enc.f32", wh_encoder_output(st),
                       (size_t)m->hp.n_audio_ctx * m->hp.n_audio_state);
    int n_tok = argc - 4;
    int32_t *tok = malloc((size_t)n_tok * sizeof(int32_t));
    float *logits = malloc((size_t)n_tok * m->hp.n_vocab * sizeof(float));
    if (!tok || !logits) return 1;
    for (int i = 0; i < n_tok; i++) tok[i] = atoi(argv[4 + i]);
    for (int i = 0; i < n_tok; i++) {
        /* tokens 0 and 1 one at a time, the rest as one batch */
        int batch = i < 2 ? 1 : n_tok - i;
        if (wh_decode(st, 0, tok + i, batch, NULL, logits + (size_t)i * m->hp.n_vocab, pool,
                      &err) != FLUID_OK)
            return fail(&err);
        i += batch - 1;
    }
    rc |= write_floats(argv[3], "logits.f32", logits, (size_t)n_tok * m->hp.n_vocab);
    free(tok);
    free(logits);
    wh_state_free(st);
    fl_pool_free(pool);
    free(mel);
    free(pcm);
    fluid_whisper_free(m);
    return rc;
}

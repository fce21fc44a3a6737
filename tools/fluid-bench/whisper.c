/* fluid-bench on a whisper model: encoder time per 30 s window, decoder time per token (one
 * sequence, KV cache growing), and the real-time factor of a whole transcription of an audio
 * file (jfk.wav by default). Usage:
 *   fluid-bench -m ggml-model.bin [-f audio] [-t THREADS] [-r REPEATS] [--tokens N]
 *               [--beam-size N] [--fallback]
 * The transcription is greedy without temperature fallback unless asked: a random-weight model
 * would otherwise retry every window at six temperatures. */
#include "fluid-bench/whisper.h"

#include "engine/whisper_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct bench_opts {
    const char *model, *audio;
    int threads, repeats, tokens, beam_size;
    bool fallback;
} bench_opts;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool parse(int argc, char **argv, bench_opts *o) {
    *o = (bench_opts){NULL, NULL, 0, 3, 64, 1, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--fallback") == 0) {
            o->fallback = true;
            continue;
        }
        if (!v) return false;
        if (strcmp(a, "-m") == 0)
            o->model = v;
        else if (strcmp(a, "-f") == 0)
            o->audio = v;
        else if (strcmp(a, "-t") == 0)
            o->threads = atoi(v);
        else if (strcmp(a, "-r") == 0)
            o->repeats = atoi(v);
        else if (strcmp(a, "--tokens") == 0)
            o->tokens = atoi(v);
        else if (strcmp(a, "--beam-size") == 0)
            o->beam_size = atoi(v);
        else
            return false;
        i++;
    }
    return o->model && o->repeats > 0 && o->tokens > 0 && o->threads >= 0;
}

/* Encoder and decoder timings on the first window of the audio. */
static int bench_passes(const bench_opts *o, fluid_whisper *m, fl_pool *pool, const float *pcm,
                        size_t n) {
    fluid_error err = {0};
    float *mel = NULL;
    size_t frames = 0;
    wh_state *st = wh_state_create(m, 1, &err);
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
    int rc = 1;
    if (!st || !logits ||
        wh_log_mel(pcm, n < WH_CHUNK_SAMPLES ? n : WH_CHUNK_SAMPLES, WH_CHUNK_SAMPLES,
                   m->mel_filters, m->hp.n_mels, m->n_fft_bins, &mel, &frames, &err) != FLUID_OK)
        goto done;
    double t0 = now_ms();
    for (int r = 0; r < o->repeats; r++)
        if (wh_encode(st, mel, frames, pool, &err) != FLUID_OK) goto done;
    double enc_ms = (now_ms() - t0) / o->repeats;
    int32_t prompt[4] = {m->sp.sot, m->sp.multilingual ? m->sp.lang_begin : m->sp.sot,
                         m->sp.multilingual ? m->sp.transcribe : m->sp.notimestamps, m->sp.beg};
    int n_tok = o->tokens < m->hp.n_text_ctx - 4 ? o->tokens : m->hp.n_text_ctx - 4;
    double dec_ms = 0.0;
    for (int r = 0; r < o->repeats; r++) {
        wh_seq_rewind(st, 0, 0);
        if (wh_decode(st, 0, prompt, 4, logits, NULL, pool, &err) != FLUID_OK) goto done;
        t0 = now_ms();
        for (int i = 0; i < n_tok; i++) {
            int32_t tok = 400 + i; /* any text tokens: the cost does not depend on them */
            if (wh_decode(st, 0, &tok, 1, logits, NULL, pool, &err) != FLUID_OK) goto done;
        }
        dec_ms += (now_ms() - t0) / n_tok;
    }
    printf("encoder: %.1f ms per 30 s window (mean of %d)\n", enc_ms, o->repeats);
    printf("decoder: %.2f ms per token (mean over %d tokens after a 4-token prompt, %d runs)\n",
           dec_ms / o->repeats, n_tok, o->repeats);
    rc = 0;
done:
    if (rc) fprintf(stderr, "fluid-bench: %s\n", err.message);
    free(mel);
    free(logits);
    wh_state_free(st);
    return rc;
}

static int bench_transcribe(const bench_opts *o, fluid_whisper *m, fl_pool *pool, const float *pcm,
                            size_t n) {
    fluid_whisper_params p;
    fluid_whisper_params_defaults(&p);
    p.beam_size = o->beam_size;
    p.fallback = o->fallback;
    p.language = m->sp.multilingual ? "en" : NULL;
    fluid_whisper_result r;
    fluid_error err = {0};
    double t0 = now_ms();
    if (fluid_whisper_transcribe(m, pool, pcm, n, &p, &r, &err) != FLUID_OK) {
        fprintf(stderr, "fluid-bench: %s\n", err.message);
        return 1;
    }
    double ms = now_ms() - t0;
    printf("transcription: %.2f s of audio in %.2f s, real-time factor %.3f (%zu tokens, %d "
           "segments, beam %d, fallback %s)\n",
           r.duration, ms / 1e3, ms / 1e3 / r.duration, r.n_token_ids, (int)r.n_segments,
           o->beam_size, o->fallback ? "on" : "off");
    fluid_whisper_result_free(&r);
    return 0;
}

int bench_whisper_main(int argc, char **argv) {
    fluid_audio_log_to_fluid(); /* libav's complaints: debug lines, hidden by default */
    bench_opts o;
    if (!parse(argc, argv, &o)) {
        fprintf(stderr, "usage: fluid-bench -m ggml-model.bin [-f audio] [-t THREADS] [-r REPEATS] "
                        "[--tokens N] [--beam-size N] [--fallback]\n");
        return 2;
    }
    char default_audio[4096];
    if (!o.audio) {
        const char *dir = getenv("FLUID_TESTDATA");
        snprintf(default_audio, sizeof default_audio, "%s/jfk.wav",
                 dir ? dir : "../shared/testdata");
        o.audio = default_audio;
    }
    fluid_error err = {0};
    float *pcm = NULL;
    size_t n = 0;
    if (fluid_audio_decode_file(o.audio, &pcm, &n, &err) != FLUID_OK) {
        fprintf(stderr, "fluid-bench: %s: %s\n", o.audio, err.message);
        return 1;
    }
    fluid_whisper *m = fluid_whisper_load(o.model, &err);
    fl_pool *pool = m ? fl_pool_create(o.threads > 0 ? o.threads : 2) : NULL;
    int rc = 1;
    if (!m)
        fprintf(stderr, "fluid-bench: %s\n", err.message);
    else if (pool) {
        fluid_whisper_info info;
        fluid_whisper_get_info(m, &info);
        printf("model: %s (%s, %s, %.1f M parameters), %d threads, audio %s (%.2f s)\n", o.model,
               info.size_name, info.type_name, (double)info.n_params / 1e6, fl_pool_size(pool),
               o.audio, (double)n / FLUID_WHISPER_SAMPLE_RATE);
        rc = bench_passes(&o, m, pool, pcm, n);
        if (rc == 0) rc = bench_transcribe(&o, m, pool, pcm, n);
    }
    fl_pool_free(pool);
    fluid_whisper_free(m);
    free(pcm);
    return rc;
}

/* Audio decoding: clips made from jfk.wav with ffmpeg at test time, in every container/codec
 * the OpenAI transcription API accepts (and stereo 44.1 kHz / 8 kHz mono inputs), must decode
 * to the source's samples: after aligning (codecs add delay), high correlation and the same
 * loudness. Empty, garbage and truncated inputs must fail with a message, never crash. */
#include "fluid/whisper.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libavutil/log.h>

#include "util/log.h"

typedef struct clip {
    const char *file;       /* name in the temporary folder */
    const char *ffmpeg_out; /* ffmpeg output options */
    double min_corr;        /* lossy codecs and 8 kHz lose some detail */
} clip;

static const clip CLIPS[] = {
    {"a.wav", "-c:a pcm_s16le", 0.999},
    {"a.flac", "-c:a flac", 0.999},
    {"a.mp3", "-c:a libmp3lame -b:a 64k", 0.95},
    {"a.mpga", "-c:a libmp3lame -b:a 64k -f mp3", 0.95},
    {"a.mpeg", "-c:a mp2 -b:a 128k -f mpeg", 0.95},
    {"a.m4a", "-c:a aac -b:a 64k", 0.95},
    {"a.mp4", "-c:a aac -b:a 64k", 0.95},
    {"a.ogg", "-c:a libvorbis -q:a 4", 0.95},
    {"a.opus", "-c:a libopus -b:a 48k -f ogg", 0.93},
    {"a.webm", "-c:a libopus -b:a 48k", 0.93},
    {"stereo44k.wav", "-ac 2 -ar 44100 -c:a pcm_s16le", 0.99},
    {"stereo44k.mp3", "-ac 2 -ar 44100 -c:a libmp3lame -b:a 96k", 0.95},
    {"mono8k.wav", "-ac 1 -ar 8000 -c:a pcm_s16le", 0.9},
    {"mono8k.flac", "-ac 1 -ar 8000 -c:a flac", 0.9},
};

typedef struct fixture {
    char dir[64];
    char *src;
    float *ref;
    size_t n_ref;
} fixture;

static int setup(void **state) {
    const char *data = getenv("FLUID_TESTDATA");
    fixture *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    *state = f;
    if (!data || system("ffmpeg -version >/dev/null 2>&1") != 0) return 0;
    f->src = malloc(strlen(data) + 16);
    if (!f->src) return -1;
    sprintf(f->src, "%s/jfk.wav", data);
    if (access(f->src, R_OK) != 0) {
        free(f->src);
        f->src = NULL;
        return 0;
    }
    snprintf(f->dir, sizeof f->dir, "/tmp/fluid-audio-XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    fluid_error err = {0};
    return fluid_audio_decode_file(f->src, &f->ref, &f->n_ref, &err) == FLUID_OK ? 0 : -1;
}

static int teardown(void **state) {
    fixture *f = *state;
    if (f->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", f->dir);
    }
    free(f->src);
    free(f->ref);
    free(f);
    return 0;
}

static double dot(const float *a, const float *b, size_t n, size_t step) {
    double s = 0.0;
    for (size_t i = 0; i < n; i += step) s += (double)a[i] * b[i];
    return s;
}

/* The lag (x[i + lag] ~ ref[i]) in [-max, max] with the best correlation over a 2 s excerpt. */
static long best_lag(const float *ref, size_t n_ref, const float *x, size_t n_x, long max) {
    size_t at = 16000 * 2, len = 16000 * 2; /* from 2 s to 4 s: speech */
    long best = 0;
    double best_c = -1e30;
    assert_true(n_ref > at + len && n_x > at + len + (size_t)max);
    for (long lag = -max; lag <= max; lag++) {
        double c = dot(ref + at, x + at + lag, len, 4);
        if (c > best_c) {
            best_c = c;
            best = lag;
        }
    }
    return best;
}

static void compare_to_source(const fixture *f, const clip *c, const float *x, size_t n) {
    /* the same duration (codecs may pad a few ms) */
    assert_true(fabs((double)n - (double)f->n_ref) < 16000 * 0.1);
    long lag = best_lag(f->ref, f->n_ref, x, n, 2000);
    size_t begin = lag < 0 ? (size_t)-lag : 0;
    size_t end = f->n_ref < n - (size_t)(lag > 0 ? lag : 0) ? f->n_ref : n - (size_t)lag;
    double rr = 0.0, xx = 0.0, rx = 0.0;
    for (size_t i = begin; i < end; i++) {
        double a = f->ref[i], b = x[(long)i + lag];
        rr += a * a;
        xx += b * b;
        rx += a * b;
    }
    double corr = rx / sqrt(rr * xx), loudness = sqrt(xx / rr);
    printf("%-14s lag %5ld  correlation %.4f  rms ratio %.3f\n", c->file, lag, corr, loudness);
    assert_true(corr >= c->min_corr);
    assert_true(loudness > 0.85 && loudness < 1.15);
}

static void test_formats(void **state) {
    fixture *f = *state;
    if (!f->src) skip();
    for (size_t i = 0; i < sizeof CLIPS / sizeof CLIPS[0]; i++) {
        const clip *c = &CLIPS[i];
        char path[256], cmd[1024];
        snprintf(path, sizeof path, "%s/%s", f->dir, c->file);
        snprintf(cmd, sizeof cmd, "ffmpeg -nostdin -y -loglevel error -i %s %s %s", f->src,
                 c->ffmpeg_out, path);
        assert_int_equal(system(cmd), 0);
        float *x = NULL;
        size_t n = 0;
        fluid_error err = {0};
        fluid_status s = fluid_audio_decode_file(path, &x, &n, &err);
        if (s != FLUID_OK) fprintf(stderr, "%s: %s\n", c->file, err.message);
        assert_int_equal(s, FLUID_OK);
        compare_to_source(f, c, x, n);
        free(x);
    }
}

static void expect_failure(const void *data, size_t n) {
    float *x = (float *)1;
    size_t count = 7;
    fluid_error err = {0};
    assert_int_not_equal(fluid_audio_decode(data, n, &x, &count, &err), FLUID_OK);
    assert_null(x);
    assert_int_equal(count, 0);
    assert_true(strlen(err.message) > 0);
}

static void test_bad_input(void **state) {
    (void)state;
    expect_failure(NULL, 0);
    expect_failure("", 0);
    uint8_t noise[4096];
    uint64_t s = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        noise[i] = (uint8_t)(s >> 56);
    }
    expect_failure(noise, sizeof noise);
    const char *text = "This is not audio at all, just some text in a file.\n";
    expect_failure(text, strlen(text));
    fluid_error err = {0};
    float *x = NULL;
    size_t n = 0;
    assert_int_equal(fluid_audio_decode_file("/nonexistent/a.wav", &x, &n, &err), FLUID_ERR_IO);
}

/* Cut each clip at several places: either a clear error or (as ffmpeg does) the audio before
 * the cut; never a crash. A cut inside the header is always an error. */
static void test_truncated(void **state) {
    fixture *f = *state;
    if (!f->src) skip();
    for (size_t i = 0; i < sizeof CLIPS / sizeof CLIPS[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", f->dir, CLIPS[i].file);
        FILE *fp = fopen(path, "rb");
        if (!fp) continue; /* test_formats did not run */
        uint8_t *data = malloc(1 << 20);
        assert_non_null(data);
        size_t size = fread(data, 1, 1 << 20, fp);
        fclose(fp);
        expect_failure(data, 12 < size ? 12 : size);
        for (int k = 1; k < 8; k++) {
            float *x = NULL;
            size_t n = 0;
            fluid_error err = {0};
            size_t cut = size * (size_t)k / 8;
            if (fluid_audio_decode(data, cut, &x, &n, &err) == FLUID_OK) {
                assert_true(n > 0 && n <= f->n_ref + 16000);
                for (size_t j = 0; j < n; j++) assert_true(isfinite(x[j]));
            } else {
                assert_true(strlen(err.message) > 0);
            }
            free(x);
        }
        free(data);
    }
}

static void put_le(uint8_t *p, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* A mono 8-bit WAV of n samples (a slow sine) at rate Hz whose header claims claimed_bytes of
 * data (n when honest). At 1 kHz each byte of it decodes to 16 samples (64 bytes) at 16 kHz:
 * the kind of upload a length check after decoding would let through to memory first. */
static uint8_t *make_wav(uint32_t rate, uint32_t n, uint32_t claimed_bytes, size_t *size) {
    uint8_t *w = malloc(44 + (size_t)n);
    assert_non_null(w);
    memcpy(w, "RIFF", 4);
    put_le(w + 4, 36 + claimed_bytes, 4);
    memcpy(w + 8, "WAVEfmt ", 8);
    put_le(w + 16, 16, 4);   /* fmt chunk size */
    put_le(w + 20, 1, 2);    /* PCM */
    put_le(w + 22, 1, 2);    /* mono */
    put_le(w + 24, rate, 4); /* sample rate */
    put_le(w + 28, rate, 4); /* bytes per second */
    put_le(w + 32, 1, 2);    /* block align */
    put_le(w + 34, 8, 2);    /* bits per sample */
    memcpy(w + 36, "data", 4);
    put_le(w + 40, claimed_bytes, 4);
    for (uint32_t i = 0; i < n; i++) w[44 + i] = (uint8_t)(128 + 60 * sin(i * 0.05));
    *size = 44 + (size_t)n;
    return w;
}

/* The sample cap: audio longer than it fails with FLUID_ERR_LIMIT as soon as the output passes
 * the cap (nothing returned), audio within it decodes whole, and 0 means no cap. */
static void test_sample_cap(void **state) {
    (void)state;
    size_t size = 0;
    uint8_t *wav = make_wav(1000, 10 * 1000, 10 * 1000, &size); /* 10 s, 10 KB */
    float *x = NULL;
    size_t n_full = 0;
    fluid_error err = {0};
    assert_int_equal(fluid_audio_decode_max(wav, size, 0, &x, &n_full, &err), FLUID_OK);
    assert_true(n_full > 159000 && n_full <= 160000);
    free(x);
    assert_int_equal(fluid_audio_decode_max(wav, size, n_full, &x, &n_full, &err), FLUID_OK);
    free(x);

    x = (float *)1;
    size_t n = 7;
    assert_int_equal(fluid_audio_decode_max(wav, size, 16000, &x, &n, &err), FLUID_ERR_LIMIT);
    assert_null(x);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err.message, "longer than the limit of 16000 samples"));
    assert_int_equal(fluid_audio_decode_max(wav, size, n_full - 1, &x, &n, &err), FLUID_ERR_LIMIT);
    free(wav);
}

/* A header claiming far more data than the file holds decodes what is there; with a cap the
 * decoding of a 2 MB, 2000 s upload (128 MB of samples) stops at the cap. */
static void test_sample_cap_long_upload(void **state) {
    (void)state;
    size_t size = 0;
    uint8_t *wav = make_wav(1000, 2000, 0x7ffffff0u, &size);
    float *x = NULL;
    size_t n = 0;
    fluid_error err = {0};
    assert_int_equal(fluid_audio_decode(wav, size, &x, &n, &err), FLUID_OK);
    assert_true(n > 31000 && n <= 32000); /* 2 s, not what the header claims */
    free(x);
    free(wav);

    wav = make_wav(1000, 2000 * 1000, 2000 * 1000, &size);
    x = (float *)1;
    n = 7;
    assert_int_equal(fluid_audio_decode_max(wav, size, 5 * 16000, &x, &n, &err), FLUID_ERR_LIMIT);
    assert_null(x);
    assert_int_equal(n, 0);
    free(wav);
}

/* Decoding leaves libav's process-wide log level as the program set it. */
static void test_decode_keeps_log_level(void **state) {
    (void)state;
    int before = av_log_get_level();
    av_log_set_level(AV_LOG_INFO);
    static const char junk[] = "RIFF\x10\0\0\0WAVEnot really audio";
    float *pcm = NULL;
    size_t n = 0;
    fluid_error err = {0};
    assert_int_not_equal(fluid_audio_decode(junk, sizeof junk, &pcm, &n, &err), FLUID_OK);
    assert_int_equal(av_log_get_level(), AV_LOG_INFO);
    av_log_set_level(before);
}

/* After fluid_audio_log_to_fluid, a libav message is a debug line of fluid's log. */
static void test_libav_messages_in_fluid_log(void **state) {
    (void)state;
    fluid_audio_log_to_fluid();
    fl_log_level level = fl_log_get_level();
    fl_log_set_level(FL_LOG_DEBUG);
    FILE *capture = tmpfile();
    assert_non_null(capture);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0 && dup2(fileno(capture), STDERR_FILENO) >= 0);
    av_log(NULL, AV_LOG_ERROR, "probe %d\n", 42);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    fl_log_set_level(level);
    char text[512] = {0};
    rewind(capture);
    size_t got = fread(text, 1, sizeof text - 1, capture);
    fclose(capture);
    assert_true(got > 0);
    assert_non_null(strstr(text, "DEBUG"));
    assert_non_null(strstr(text, "libav: probe 42"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_keeps_log_level),
        cmocka_unit_test(test_libav_messages_in_fluid_log),
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_sample_cap),
        cmocka_unit_test(test_sample_cap_long_upload),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

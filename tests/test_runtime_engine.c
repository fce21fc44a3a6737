/* The runtime on the real engine: transcription jobs with a random-weight Whisper model, and
 * chat/completion jobs with a tiny synthetic LLM when the tokenizer is available. Skips the
 * parts whose inputs (testdata, engine pieces) are missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/whisper_internal.h"
#include "runtime/runtime.h"
#include "support/fake_hub.h"

typedef struct fixture {
    char *root;
    rt_config cfg;
    rt_manager *rt;
    void *audio;
    size_t audio_len;
} fixture;

static char *testdata(const char *name) {
    const char *dir = getenv("FLUID_TESTDATA");
    if (dir == NULL) return NULL;
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    if (p == NULL) return NULL;
    sprintf(p, "%s/%s", dir, name);
    if (access(p, R_OK) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->root = fake_hub_temp_dir();
    char dir[512];
    snprintf(dir, sizeof dir, "%s/whisper", f->root);
    mkdir(dir, 0755);
    rt_config_defaults(&f->cfg);
    f->cfg.model_path = f->root;
    f->cfg.llm_model = "";
    f->cfg.whisper_model = "whisper-test";
    f->cfg.warm_up = false;
    f->cfg.hf_endpoint = "http://127.0.0.1:1";
    f->cfg.progress_bar = false;
    f->cfg.n_threads = 1; /* tiny matrices: no gain from more, only hand-over cost */
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    rt_destroy(f->rt);
    fake_hub_rmtree(f->root);
    free(f->root);
    free(f->audio);
    free(f);
    return 0;
}

static void put_le(unsigned char *p, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* The first `seconds` of a recording as a 16 kHz 16-bit mono WAV file in memory (short clips
 * keep the random-weight transcriptions fast). */
static bool wav_clip(const char *path, double seconds, void **out, size_t *len) {
    float *pcm = NULL;
    size_t n = 0;
    fluid_error err = {0};
    if (fluid_audio_decode_file(path, &pcm, &n, &err) != FLUID_OK) return false;
    size_t keep = (size_t)(seconds * FLUID_WHISPER_SAMPLE_RATE);
    if (keep > n) keep = n;
    unsigned char *wav = malloc(44 + 2 * keep);
    if (wav == NULL) {
        free(pcm);
        return false;
    }
    memcpy(wav, "RIFF", 4);
    put_le(wav + 4, (uint32_t)(36 + 2 * keep), 4);
    memcpy(wav + 8, "WAVEfmt ", 8);
    put_le(wav + 16, 16, 4);
    put_le(wav + 20, 1, 2); /* PCM */
    put_le(wav + 22, 1, 2); /* mono */
    put_le(wav + 24, FLUID_WHISPER_SAMPLE_RATE, 4);
    put_le(wav + 28, 2 * FLUID_WHISPER_SAMPLE_RATE, 4);
    put_le(wav + 32, 2, 2);
    put_le(wav + 34, 16, 2);
    memcpy(wav + 36, "data", 4);
    put_le(wav + 40, (uint32_t)(2 * keep), 4);
    for (size_t i = 0; i < keep; i++) {
        float x = pcm[i] < -1 ? -1 : pcm[i] > 1 ? 1 : pcm[i];
        put_le(wav + 44 + 2 * i, (uint32_t)(uint16_t)(int16_t)(x * 32767), 2);
    }
    free(pcm);
    *out = wav;
    *len = 44 + 2 * keep;
    return true;
}

/* Writes whisper/ggml-test.bin (random weights on the tiny vocabulary) and loads jfk.wav. */
static bool prepare_whisper(fixture *f) {
    char *header = testdata("for-tests-ggml-tiny.bin");
    char *wav = testdata("jfk.wav");
    bool ok = header != NULL && wav != NULL;
    if (ok) {
        char out[512];
        snprintf(out, sizeof out, "%s/whisper/ggml-test.bin", f->root);
        fluid_error err = {0};
        ok = wh_synth_write(header, out, "test", FL_TYPE_F16, 3, &err) == FLUID_OK;
        if (!ok) fprintf(stderr, "synth: %s\n", err.message);
        ok = ok && wav_clip(wav, 2.0, &f->audio, &f->audio_len);
    }
    free(header);
    free(wav);
    return ok;
}

static void start(fixture *f) {
    rt_error err = {0};
    f->rt = rt_create(&f->cfg, &err);
    if (f->rt == NULL) fail_msg("rt_create: %s", err.message);
    assert_int_equal(rt_start(f->rt, &err), RT_OK);
}

static void test_transcription_job(void **state) {
    fixture *f = *state;
    if (!prepare_whisper(f)) skip();
    start(f);
    rt_transcription_request req = {.audio = f->audio,
                                    .audio_len = f->audio_len,
                                    .language = "en",
                                    .temperature = 0.2f,
                                    .segments = true};
    rt_job *job = NULL;
    rt_error err = {0};
    assert_int_equal(rt_submit_transcription(f->rt, &req, &job, &err), RT_OK);
    rt_event ev;
    int segments = 0;
    while (rt_job_next(job, 60000, &ev) && ev.type != RT_EVENT_FINISHED) {
        assert_int_equal(ev.type, RT_EVENT_SEGMENT);
        assert_int_equal(ev.segment->id, segments);
        assert_true(ev.segment->end >= ev.segment->start);
        segments++;
    }
    assert_int_equal(ev.type, RT_EVENT_FINISHED);
    if (ev.finish_reason != RT_FINISH_STOP) fail_msg("%s", ev.error.message);
    assert_string_equal(ev.language, "en");
    assert_string_equal(ev.model, "whisper-test");
    assert_true(ev.duration > 1.99 && ev.duration < 2.01); /* the clip */
    assert_non_null(ev.full_text);
    rt_job_release(job);
    rt_health_info h;
    rt_health(f->rt, &h);
    assert_int_equal(h.whisper.state, RT_STATE_READY);
    assert_true(h.memory_bytes > 0);
}

static void test_transcription_rejects_bad_audio(void **state) {
    fixture *f = *state;
    if (!prepare_whisper(f)) skip();
    start(f);
    rt_transcription_request req = {.audio = "not audio at all", .audio_len = 16};
    rt_job *job = NULL;
    assert_int_equal(rt_submit_transcription(f->rt, &req, &job, NULL), RT_OK);
    rt_event ev;
    while (rt_job_next(job, 60000, &ev) && ev.type != RT_EVENT_FINISHED) {
    }
    assert_int_equal(ev.finish_reason, RT_FINISH_ERROR);
    assert_int_equal(ev.error.status, RT_ERR_BAD_REQUEST);
    assert_non_null(strstr(ev.error.message, "audio"));
    rt_job_release(job);
}

static void test_transcription_cancel(void **state) {
    fixture *f = *state;
    if (!prepare_whisper(f)) skip();
    start(f);
    assert_int_equal(rt_load_model(f->rt, "whisper-test", 30, NULL), RT_OK);
    rt_transcription_request req = {.audio = f->audio, .audio_len = f->audio_len, .segments = true};
    rt_job *job = NULL;
    assert_int_equal(rt_submit_transcription(f->rt, &req, &job, NULL), RT_OK);
    rt_job_cancel(job);
    rt_event ev;
    while (rt_job_next(job, 60000, &ev) && ev.type != RT_EVENT_FINISHED) {
    }
    assert_int_equal(ev.finish_reason, RT_FINISH_CANCELLED);
    rt_job_release(job);
}

int main(void) {
#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_transcription_job),
        TEST(test_transcription_rejects_bad_audio),
        TEST(test_transcription_cancel),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

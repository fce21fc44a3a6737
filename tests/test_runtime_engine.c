/* The runtime on the real engine: transcription jobs with a random-weight Whisper model, and
 * chat/completion jobs with a tiny synthetic LLM when the tokenizer is available. Skips the
 * parts whose inputs (testdata, engine pieces) are missing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/whisper_internal.h"
#include "runtime/runtime.h"
#include "support/fake_hub.h"
#include "support/files.h"
#include "support/rt_config.h"

typedef struct fixture {
    char *root;
    rt_config cfg;
    rt_manager *rt;
    void *audio;
    size_t audio_len;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->root = fake_hub_temp_dir();
    char dir[512];
    snprintf(dir, sizeof dir, "%s/whisper", f->root);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/llm", f->root);
    mkdir(dir, 0755);
    test_rt_config(&f->cfg, f->root); /* one thread: tiny matrices gain nothing from more */
    f->cfg.whisper_model = "whisper-test";
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
    char *header = test_testdata_path("for-tests-ggml-tiny.bin");
    char *wav = test_testdata_path("jfk.wav");
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

/* Starts the runtime and runs a transcription that must fail as the client's fault; returns
 * its error. */
static rt_error transcription_refused(fixture *f, const rt_transcription_request *req) {
    start(f);
    rt_job *job = NULL;
    assert_int_equal(rt_submit_transcription(f->rt, req, &job, NULL), RT_OK);
    rt_event ev;
    while (rt_job_next(job, 60000, &ev) && ev.type != RT_EVENT_FINISHED) {
    }
    assert_int_equal(ev.finish_reason, RT_FINISH_ERROR);
    assert_int_equal(ev.error.status, RT_ERR_BAD_REQUEST);
    rt_job_release(job);
    return ev.error;
}

static void test_transcription_rejects_bad_audio(void **state) {
    fixture *f = *state;
    if (!prepare_whisper(f)) skip();
    rt_transcription_request req = {.audio = "not audio at all", .audio_len = 16};
    rt_error err = transcription_refused(f, &req);
    assert_non_null(strstr(err.message, "audio"));
}

/* Audio past max_seconds (the 2 s clip, 1.5 s allowed) stops decoding at the limit and fails
 * with OpenAI's shape of error for the file. */
static void test_transcription_too_long(void **state) {
    fixture *f = *state;
    if (!prepare_whisper(f)) skip();
    rt_transcription_request req = {
        .audio = f->audio, .audio_len = f->audio_len, .language = "en", .max_seconds = 1.5};
    rt_error err = transcription_refused(f, &req);
    assert_string_equal(err.code, "audio_too_long");
    assert_string_equal(err.param, "file");
    assert_non_null(strstr(err.message, "longer than 1.5 seconds"));
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

/* ---- language models --------------------------------------------------------------------- */

/* Writes llm/<name>.gguf with fluid-synth (tiny qwen2, its small built-in vocabulary). */
static bool synth_llm(fixture *f, const char *name, int seed) {
    const char *build = getenv("FLUID_BUILD_DIR");
    char tool[512], cmd[2048];
    snprintf(tool, sizeof tool, "%s/fluid-synth", build != NULL ? build : ".");
    if (access(tool, X_OK) != 0) return false;
    snprintf(cmd, sizeof cmd,
             "'%s' --arch qwen2 --preset tiny --type f32 --seed %d -o '%s/llm/%s.gguf' "
             ">/dev/null 2>&1",
             tool, seed, f->root, name);
    return system(cmd) == 0;
}

/* Writes the tiny LLM and starts the manager; skips the test when fluid-synth is not built. */
static void start_with_tiny_llm(fixture *f) {
    if (!synth_llm(f, "tiny", 1)) skip();
    start(f);
}

typedef struct chat_run {
    char text[4096];
    rt_event fin;
    int n_logprobs;
    rt_token_logprob logprobs[64];
} chat_run;

static rt_status chat(fixture *f, rt_chat_request *req, chat_run *out) {
    memset(out, 0, sizeof *out);
    rt_job *job = NULL;
    rt_error err = {0};
    rt_status st = rt_submit_chat(f->rt, req, &job, &err);
    if (st != RT_OK) {
        out->fin.error = err;
        return st;
    }
    rt_event ev;
    while (rt_job_next(job, 60000, &ev) && ev.type != RT_EVENT_FINISHED) {
        assert_int_equal(ev.type, RT_EVENT_TEXT);
        strncat(out->text, ev.text, sizeof out->text - strlen(out->text) - 1);
        for (size_t i = 0; i < ev.n_logprobs && out->n_logprobs < 64; i++)
            out->logprobs[out->n_logprobs++] = ev.logprobs[i];
    }
    assert_int_equal(ev.type, RT_EVENT_FINISHED);
    out->fin = ev;
    out->fin.model = NULL;
    rt_job_release(job);
    return RT_OK;
}

static const fluid_chat_message HELLO[] = {{"system", "You are terse."}, {"user", "Hello there"}};

static rt_chat_request greedy(const char *model, int max_tokens) {
    rt_chat_request req = {
        .model = model, .messages = HELLO, .n_messages = 2, .max_tokens = max_tokens};
    fluid_sampling_defaults(&req.sampling);
    req.sampling.temperature = 0;
    return req;
}

static void test_chat_job(void **state) {
    fixture *f = *state;
    f->cfg.llm_model = "tiny";
    start_with_tiny_llm(f);
    rt_chat_request req = greedy(NULL, 12); /* the default LLM */
    chat_run a, b;
    assert_int_equal(chat(f, &req, &a), RT_OK);
    if (a.fin.finish_reason == RT_FINISH_ERROR) fail_msg("%s", a.fin.error.message);
    assert_true(a.fin.usage.prompt_tokens > 4);
    assert_true(a.fin.usage.completion_tokens >= 1 && a.fin.usage.completion_tokens <= 12);
    if (a.fin.finish_reason == RT_FINISH_LENGTH)
        assert_int_equal(a.fin.usage.completion_tokens, 12);
    /* Greedy decoding is deterministic. */
    assert_int_equal(chat(f, &req, &b), RT_OK);
    assert_string_equal(a.text, b.text);
    assert_int_equal(a.fin.usage.completion_tokens, b.fin.usage.completion_tokens);
    /* The KV cache is given back when the job ends: only the weights stay. */
    rt_health_info h;
    rt_health(f->rt, &h);
    rt_model_info info;
    assert_int_equal(rt_get_model(f->rt, "tiny", &info, NULL), RT_OK);
    assert_int_equal(h.memory_bytes, info.size_bytes);
}

/* The first place where two plain ASCII bytes follow each other, after the start. */
static int ascii_pair(const char *text) {
    for (int i = 1; text[i] != '\0' && text[i + 1] != '\0'; i++)
        if ((unsigned char)text[i] < 0x80 && (unsigned char)text[i + 1] < 0x80 && text[i] != ' ')
            return i;
    return -1;
}

static void test_stop_string_cuts_text(void **state) {
    fixture *f = *state;
    start_with_tiny_llm(f);
    rt_chat_request req = greedy("tiny", 40);
    chat_run full, cut;
    assert_int_equal(chat(f, &req, &full), RT_OK);
    int at = ascii_pair(full.text);
    if (at < 0) skip(); /* this model's text has no plain ASCII pair to stop on */
    char stop[3] = {full.text[at], full.text[at + 1], '\0'};
    int first = (int)(strstr(full.text, stop) - full.text);
    req.stop[0] = stop;
    req.n_stop = 1;
    assert_int_equal(chat(f, &req, &cut), RT_OK);
    assert_int_equal(cut.fin.finish_reason, RT_FINISH_STOP);
    assert_int_equal((int)strlen(cut.text), first);
    assert_memory_equal(cut.text, full.text, (size_t)first);
    assert_null(strstr(cut.text, stop));
}

static void test_logprobs(void **state) {
    fixture *f = *state;
    start_with_tiny_llm(f);
    rt_chat_request req = greedy("tiny", 8);
    req.logprobs = true;
    req.top_logprobs = 3;
    chat_run r;
    assert_int_equal(chat(f, &req, &r), RT_OK);
    assert_int_equal(r.n_logprobs, r.fin.usage.completion_tokens);
    for (int i = 0; i < r.n_logprobs; i++) {
        const rt_token_logprob *lp = &r.logprobs[i];
        assert_true(lp->logprob <= 0);
        assert_int_equal(lp->n_top, 3);
        /* Greedy: the chosen token is the most likely one. */
        assert_float_equal(lp->top[0].logprob, lp->logprob, 1e-5);
        assert_memory_equal(lp->top[0].text, lp->text, lp->text_len);
        assert_true(lp->top[1].logprob <= lp->top[0].logprob);
    }
}

static void test_completion_with_echo(void **state) {
    fixture *f = *state;
    start_with_tiny_llm(f);
    rt_chat_request req = greedy("tiny", 4);
    req.messages = NULL;
    req.n_messages = 0;
    req.prompt = "Once upon a time";
    req.echo = true;
    chat_run r;
    assert_int_equal(chat(f, &req, &r), RT_OK);
    assert_int_equal(strncmp(r.text, "Once upon a time", 16), 0);
    assert_true(r.fin.usage.prompt_tokens > 0);
}

static void test_prompt_longer_than_context(void **state) {
    fixture *f = *state;
    f->cfg.n_ctx = 16;
    start_with_tiny_llm(f);
    char prompt[2048] = "";
    for (int i = 0; i < 100; i++) strcat(prompt, "words and ");
    rt_chat_request req = greedy("tiny", 4);
    req.messages = NULL;
    req.n_messages = 0;
    req.prompt = prompt;
    chat_run r;
    assert_int_equal(chat(f, &req, &r), RT_OK);
    assert_int_equal(r.fin.finish_reason, RT_FINISH_ERROR);
    assert_int_equal(r.fin.error.status, RT_ERR_BAD_REQUEST);
    assert_non_null(strstr(r.fin.error.message, "context"));
    /* A short prompt fills the small context and stops with "length". */
    req.prompt = "Hi";
    req.max_tokens = 0;
    assert_int_equal(chat(f, &req, &r), RT_OK);
    if (r.fin.finish_reason != RT_FINISH_STOP) {
        assert_int_equal(r.fin.finish_reason, RT_FINISH_LENGTH);
        assert_int_equal(r.fin.usage.prompt_tokens + r.fin.usage.completion_tokens, 16);
    }
}

/* A max_tokens from the client that does not fit beside the prompt is refused with OpenAI's
 * context_length_exceeded; one that just fits, or the same value as a server default, runs. */
static void test_max_tokens_beyond_context(void **state) {
    fixture *f = *state;
    f->cfg.n_ctx = 256;
    start_with_tiny_llm(f);
    rt_chat_request req = greedy("tiny", 1);
    req.max_tokens_explicit = true;
    chat_run r;
    assert_int_equal(chat(f, &req, &r), RT_OK);
    int room = 256 - r.fin.usage.prompt_tokens;
    assert_true(room > 1);

    req.max_tokens = room + 1;
    assert_int_equal(chat(f, &req, &r), RT_OK);
    assert_int_equal(r.fin.finish_reason, RT_FINISH_ERROR);
    assert_int_equal(r.fin.error.status, RT_ERR_BAD_REQUEST);
    assert_string_equal(r.fin.error.code, "context_length_exceeded");
    assert_string_equal(r.fin.error.param, "messages");
    char expected[128];
    snprintf(expected, sizeof expected,
             "maximum context length is 256 tokens. However, you "
             "requested 257 tokens (%d in the messages, %d in the completion)",
             256 - room, room + 1);
    assert_non_null(strstr(r.fin.error.message, expected));

    req.max_tokens = room;
    assert_int_equal(chat(f, &req, &r), RT_OK);
    assert_int_not_equal(r.fin.finish_reason, RT_FINISH_ERROR);
    req.max_tokens = room + 1;
    req.max_tokens_explicit = false; /* a server default: generate until the context is full */
    assert_int_equal(chat(f, &req, &r), RT_OK);
    assert_int_not_equal(r.fin.finish_reason, RT_FINISH_ERROR);
}

static void test_cancel_generation(void **state) {
    fixture *f = *state;
    start_with_tiny_llm(f);
    rt_chat_request req = greedy("tiny", 0);
    req.sampling.temperature = 1.0f; /* sampled: end-of-text is unlikely to end it first */
    req.sampling.seed = 5;
    rt_job *job = NULL;
    assert_int_equal(rt_submit_chat(f->rt, &req, &job, NULL), RT_OK);
    rt_event ev;
    assert_true(rt_job_next(job, 60000, &ev));
    rt_job_cancel(job);
    while (rt_job_next(job, 60000, &ev) && ev.type != RT_EVENT_FINISHED) {
    }
    assert_int_equal(ev.type, RT_EVENT_FINISHED);
    assert_true(ev.finish_reason == RT_FINISH_CANCELLED || ev.finish_reason == RT_FINISH_STOP);
    rt_job_release(job);
}

typedef struct client {
    fixture *f;
    const char *models[2];
    int ok;
} client;

static void *client_main(void *arg) {
    client *c = arg;
    for (int i = 0; i < 4; i++) {
        rt_chat_request req = greedy(c->models[i % 2], 4);
        chat_run *r = malloc(sizeof *r);
        if (r != NULL && chat(c->f, &req, r) == RT_OK && r->fin.finish_reason != RT_FINISH_ERROR)
            c->ok++;
        free(r);
    }
    return NULL;
}

static void test_switch_and_side_by_side(void **state) {
    fixture *f = *state;
    if (!synth_llm(f, "tiny", 1) || !synth_llm(f, "tiny2", 2) || !prepare_whisper(f)) skip();
    start(f);
    pthread_t threads[3];
    client clients[3] = {
        {f, {"tiny", "tiny2"}, 0}, {f, {"tiny2", "tiny"}, 0}, {f, {"tiny", "tiny"}, 0}};
    for (int i = 0; i < 3; i++) pthread_create(&threads[i], NULL, client_main, &clients[i]);
    /* The Whisper model loads beside the LLMs while they switch. */
    assert_int_equal(rt_load_model(f->rt, "whisper-test", 60, NULL), RT_OK);
    for (int i = 0; i < 3; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 3; i++) assert_int_equal(clients[i].ok, 4);
    rt_health_info h;
    rt_health(f->rt, &h);
    assert_int_equal(h.whisper.state, RT_STATE_READY);
    assert_true(h.llm.loaded_count >= 1);
    assert_int_equal(h.llm.state, RT_STATE_READY);
}

int main(void) {
#define TEST(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        TEST(test_transcription_job),
        TEST(test_transcription_rejects_bad_audio),
        TEST(test_transcription_too_long),
        TEST(test_transcription_cancel),
        TEST(test_chat_job),
        TEST(test_stop_string_cuts_text),
        TEST(test_logprobs),
        TEST(test_completion_with_echo),
        TEST(test_prompt_longer_than_context),
        TEST(test_max_tokens_beyond_context),
        TEST(test_cancel_generation),
        TEST(test_switch_and_side_by_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

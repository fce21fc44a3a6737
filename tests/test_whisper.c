/* Whisper engine: special tokens, languages, the header-only test files (vocabulary, tokenizer),
 * damaged model files, the timestamp rules on crafted logits, cutting windows into segments,
 * compression ratios, and transcription with a small random-weight model (greedy, beam search,
 * language detection, cancelling, a 3-minute input decoded in windows). */
#include "engine/whisper_decode.h"
#include "support/files.h"

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

/* ---- helpers ----------------------------------------------------------------------------- */

/* A random-weight "test" model (the writer behind fluid-synth), or NULL without testdata. */
static char *synth_model(const char *type_name) {
    char *header = test_testdata_path("for-tests-ggml-tiny.bin");
    if (!header) return NULL;
    fl_type type = strcmp(type_name, "q8_0") == 0 ? FL_TYPE_Q8_0 : FL_TYPE_F16;
    char *out = malloc(64);
    assert_non_null(out);
    snprintf(out, 64, "/tmp/fluid-whisper-test-%d-%s.bin", (int)getpid(), type_name);
    fluid_error err = {0};
    fluid_status s = wh_synth_write(header, out, "test", type, 3, &err);
    free(header);
    if (s != FLUID_OK) fprintf(stderr, "synth: %s\n", err.message);
    assert_int_equal(s, FLUID_OK);
    return out;
}

static float *jfk_pcm(size_t *n) {
    char *wav = test_testdata_path("jfk.wav");
    if (!wav) return NULL;
    float *pcm = NULL;
    fluid_error err = {0};
    fluid_status s = fluid_audio_decode_file(wav, &pcm, n, &err);
    free(wav);
    assert_int_equal(s, FLUID_OK);
    return pcm;
}

/* What the decoding tests run on: jfk.wav's samples, a loaded synthetic f16 model (its file
 * removed at close) and a pool of two threads. */
typedef struct synth_run {
    float *pcm;
    size_t n;
    char *path;
    fluid_whisper *model;
    fl_pool *pool;
} synth_run;

/* False, holding nothing, without testdata: the caller skips. */
static bool synth_run_open(synth_run *r) {
    *r = (synth_run){0};
    r->pcm = jfk_pcm(&r->n);
    r->path = r->pcm ? synth_model("f16") : NULL;
    if (r->path == NULL) {
        free(r->pcm);
        return false;
    }
    fluid_error err = {0};
    r->model = fluid_whisper_load(r->path, &err);
    if (r->model == NULL) fail_msg("%s", err.message);
    r->pool = fl_pool_create(2);
    assert_non_null(r->pool);
    return true;
}

static void synth_run_close(synth_run *r) {
    fl_pool_free(r->pool);
    fluid_whisper_free(r->model);
    unlink(r->path);
    free(r->path);
    free(r->pcm);
}

/* ---- special tokens and languages -------------------------------------------------------- */

static void test_specials(void **state) {
    (void)state;
    wh_specials sp;
    assert_true(wh_specials_from_vocab(51864, &sp)); /* English-only */
    assert_false(sp.multilingual);
    assert_int_equal(sp.eot, 50256);
    assert_int_equal(sp.sot, 50257);
    assert_int_equal(sp.translate, 50357);
    assert_int_equal(sp.transcribe, 50358);
    assert_int_equal(sp.prev, 50360);
    assert_int_equal(sp.notimestamps, 50362);
    assert_int_equal(sp.beg, 50363);
    assert_true(wh_specials_from_vocab(51865, &sp)); /* multilingual */
    assert_true(sp.multilingual);
    assert_int_equal(sp.eot, 50257);
    assert_int_equal(sp.sot, 50258);
    assert_int_equal(sp.lang_begin, 50259);
    assert_int_equal(sp.translate, 50358);
    assert_int_equal(sp.transcribe, 50359);
    assert_int_equal(sp.solm, 50360);
    assert_int_equal(sp.prev, 50361);
    assert_int_equal(sp.nospeech, 50362);
    assert_int_equal(sp.notimestamps, 50363);
    assert_int_equal(sp.beg, 50364);
    assert_true(wh_specials_from_vocab(51866, &sp)); /* large-v3: one more language */
    assert_int_equal(sp.n_lang, 100);
    assert_int_equal(sp.translate, 50359);
    assert_int_equal(sp.beg, 50365);
    assert_false(wh_specials_from_vocab(50000, &sp));
    assert_false(wh_specials_from_vocab(51867, &sp));
}

static void test_languages(void **state) {
    (void)state;
    assert_int_equal(fluid_whisper_lang_id("en"), 0);
    assert_int_equal(fluid_whisper_lang_id("English"), 0);
    assert_int_equal(fluid_whisper_lang_id("de"), 2);
    assert_int_equal(fluid_whisper_lang_id("haw"), 93);
    assert_int_equal(fluid_whisper_lang_id("yue"), 99);
    assert_int_equal(fluid_whisper_lang_id("xx"), -1);
    assert_int_equal(fluid_whisper_lang_id(NULL), -1);
    assert_string_equal(fluid_whisper_lang_code(1), "zh");
    assert_string_equal(fluid_whisper_lang_name(99), "cantonese");
    assert_null(fluid_whisper_lang_code(100));
    assert_null(fluid_whisper_lang_code(-1));
}

/* ---- the header-only files --------------------------------------------------------------- */

static void test_header_only_files(void **state) {
    (void)state;
    char *multi = test_testdata_path("for-tests-ggml-tiny.bin");
    char *en = test_testdata_path("for-tests-ggml-tiny.en.bin");
    if (!multi || !en) {
        free(multi);
        free(en);
        skip();
    }
    fluid_error err = {0};
    assert_null(fluid_whisper_load(multi, &err)); /* no tensors: a clear error */
    assert_int_equal(err.code, FLUID_ERR_FORMAT);
    assert_non_null(strstr(err.message, "no tensors"));

    fluid_whisper *m = wh_load_header(multi, &err);
    assert_non_null(m);
    assert_int_equal(m->hp.n_mels, 80);
    assert_int_equal(m->n_fft_bins, 201);
    assert_true(m->sp.multilingual);
    assert_string_equal(fluid_whisper_token_text(m, m->sp.sot), "<|startoftranscript|>");
    assert_string_equal(fluid_whisper_token_text(m, m->sp.lang_begin), "<|en|>");
    assert_string_equal(fluid_whisper_token_text(m, m->sp.beg), "<|0.00|>");
    assert_string_equal(fluid_whisper_token_text(m, m->sp.beg + 1500), "<|30.00|>");
    assert_string_equal(fluid_whisper_token_text(m, m->sp.notimestamps), "<|notimestamps|>");
    assert_null(fluid_whisper_token_text(m, m->hp.n_vocab));

    /* BPE: the tokens spell the text again, and merges happened (fewer tokens than bytes) */
    const char *text = " And so, my fellow Americans: ask not what your country can do for you";
    size_t n = 0;
    int32_t *ids = wh_tokenize(m, text, &n);
    assert_non_null(ids);
    assert_true(n > 5 && n < strlen(text) / 2);
    char *back = wh_tokens_text(m, ids, n);
    assert_string_equal(back, text);
    free(back);
    free(ids);
    ids = wh_tokenize(m, " Americans", &n);
    assert_int_equal(n, 1); /* a common word is one token */
    free(ids);
    size_t n_ns = 0;
    int32_t *ns = wh_non_speech_tokens(m, &n_ns);
    assert_non_null(ns);
    assert_true(n_ns > 40);
    for (size_t i = 0; i < n_ns; i++) assert_true(ns[i] >= 0 && ns[i] < m->sp.eot);
    free(ns);
    fluid_whisper_free(m);

    m = wh_load_header(en, &err);
    assert_non_null(m);
    assert_false(m->sp.multilingual);
    assert_string_equal(fluid_whisper_token_text(m, 50256), "<|endoftext|>");
    assert_string_equal(fluid_whisper_token_text(m, 50363), "<|0.00|>");
    fluid_whisper_free(m);
    free(multi);
    free(en);
}

/* ---- damaged files ----------------------------------------------------------------------- */

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_bad_files(void **state) {
    (void)state;
    fluid_error err = {0};
    assert_null(fluid_whisper_load("/nonexistent/model.bin", &err));
    assert_int_equal(err.code, FLUID_ERR_IO);
    char path[64];
    snprintf(path, sizeof path, "/tmp/fluid-whisper-bad-%d.bin", (int)getpid());
    write_file(path, "GGUFxxxxxxxx", 12);
    assert_null(fluid_whisper_load(path, &err));
    assert_int_equal(err.code, FLUID_ERR_FORMAT);
    uint32_t head[12] = {0x67676d6c, 51865, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1};
    write_file(path, head, sizeof head); /* ends after the hparams */
    assert_null(fluid_whisper_load(path, &err));
    assert_non_null(strstr(err.message, "truncated"));
    head[1] = 123; /* not a whisper vocabulary */
    write_file(path, head, sizeof head);
    assert_null(fluid_whisper_load(path, &err));
    head[1] = 51865;
    head[4] = 7; /* heads do not divide the state */
    write_file(path, head, sizeof head);
    assert_null(fluid_whisper_load(path, &err));
    unlink(path);
}

static void test_truncated_model(void **state) {
    (void)state;
    char *model = synth_model("f16");
    if (!model) skip();
    size_t n;
    uint8_t *data = (uint8_t *)test_read_file(model, &n);
    assert_non_null(data);
    fluid_error err = {0};
    fluid_whisper *m = fluid_whisper_load(model, &err);
    assert_non_null(m);
    fluid_whisper_free(m);
    char path[64];
    snprintf(path, sizeof path, "/tmp/fluid-whisper-cut-%d.bin", (int)getpid());
    /* cut everywhere in the header, then at 40 places through the tensors */
    for (size_t cut = 0; cut < n; cut += cut < 4096 ? 97 : n / 40) {
        write_file(path, data, cut);
        err.message[0] = '\0';
        m = fluid_whisper_load(path, &err);
        assert_null(m);
        assert_true(strlen(err.message) > 0);
    }
    unlink(path);
    unlink(model);
    free(data);
    free(model);
}

/* ---- decoding rules ---------------------------------------------------------------------- */

typedef struct rules_fixture {
    wh_specials sp;
    wh_rules r;
    float *logits;
    int32_t blank[2];
} rules_fixture;

static void rules_setup(rules_fixture *f, float text_logit, float ts_logit) {
    assert_true(wh_specials_from_vocab(51865, &f->sp));
    f->blank[0] = 220; /* " " */
    f->blank[1] = f->sp.eot;
    wh_rules r = {&f->sp, 51865, NULL, 0, f->blank, 2, true, 50};
    f->r = r;
    f->logits = malloc(51865 * sizeof(float));
    assert_non_null(f->logits);
    for (int i = 0; i < 51865; i++) f->logits[i] = i < f->sp.beg ? text_logit : ts_logit;
}

/* The rules applied after seq[0..n) to logits 0 for text and -20 for timestamps. */
static void rules_after(rules_fixture *f, const int32_t *seq, size_t n) {
    rules_setup(f, 0.0f, -20.0f);
    wh_apply_rules(&f->r, seq, n, f->logits);
}

static void test_timestamp_rules(void **state) {
    (void)state;
    rules_fixture f;
    int32_t b;
    /* first token: a timestamp of at most 1.0 s */
    rules_after(&f, NULL, 0);
    b = f.sp.beg;
    assert_true(isinf(f.logits[100]) && isinf(f.logits[f.sp.eot]) && isinf(f.logits[220]));
    assert_true(isinf(f.logits[f.sp.notimestamps]));
    assert_false(isinf(f.logits[b]));
    assert_false(isinf(f.logits[b + 50]));
    assert_true(isinf(f.logits[b + 51]));
    free(f.logits);

    /* after the opening timestamp: text (or the end), no timestamp */
    int32_t seq1[] = {b + 10};
    rules_after(&f, seq1, 1);
    assert_false(isinf(f.logits[100]));
    assert_true(isinf(f.logits[b + 20]));
    free(f.logits);

    /* after text: timestamps may follow but not go back (strictly later than the last) */
    int32_t seq2[] = {b + 10, 100};
    rules_after(&f, seq2, 2);
    assert_false(isinf(f.logits[100]));
    assert_true(isinf(f.logits[b + 10]));
    assert_false(isinf(f.logits[b + 11]));
    free(f.logits);

    /* after text + a closing timestamp: another timestamp (>= it) or the end, never text */
    int32_t seq3[] = {b + 10, 100, b + 20};
    rules_after(&f, seq3, 3);
    assert_true(isinf(f.logits[100]));
    assert_false(isinf(f.logits[f.sp.eot]));
    assert_true(isinf(f.logits[b + 19]));
    assert_false(isinf(f.logits[b + 20]));
    free(f.logits);

    /* after a complete pair: text next */
    int32_t seq4[] = {b + 10, 100, b + 20, b + 20};
    rules_after(&f, seq4, 4);
    assert_false(isinf(f.logits[100]));
    assert_true(isinf(f.logits[b + 30]));
    free(f.logits);

    /* the timestamps together outweigh every text token: a timestamp is forced */
    int32_t seq5[] = {b + 10, 100};
    rules_setup(&f, 0.0f, -20.0f);
    f.logits[b + 40] = 3.0f; /* any text token has logit 0 */
    wh_apply_rules(&f.r, seq5, 2, f.logits);
    assert_true(isinf(f.logits[100]));
    assert_false(isinf(f.logits[b + 40]));
    free(f.logits);
}

static void test_log_softmax_and_compression(void **state) {
    (void)state;
    float x[4] = {1.0f, 2.0f, -INFINITY, 3.0f};
    wh_log_softmax(x, 4);
    double sum = 0.0;
    for (int i = 0; i < 4; i++) sum += exp(x[i]);
    assert_true(fabs(sum - 1.0) < 1e-5);
    assert_true(isinf(x[2]));
    char rep[1001];
    for (int i = 0; i < 1000; i++) rep[i] = "ab "[i % 3];
    rep[1000] = '\0';
    assert_true(wh_compression_ratio(rep, 1000) > 2.4f); /* a repetition loop */
    const char *speech = " And so my fellow Americans, ask not what your country can do for you.";
    assert_true(wh_compression_ratio(speech, strlen(speech)) < 2.4f);
}

static void test_split_window(void **state) {
    (void)state;
    const int32_t b = 50364;
    wh_span sp[16];
    size_t adv, n;
    /* two segments, the second ending on a lone timestamp: the whole window is done */
    int32_t t1[] = {b, 100, 101, b + 50, b + 50, 102, b + 100};
    n = wh_split_window(t1, 7, b, 3000, sp, &adv);
    assert_int_equal(n, 2);
    assert_int_equal(sp[0].begin, 0);
    assert_int_equal(sp[0].end, 4);
    assert_true(fabs(sp[0].start) < 1e-9 && fabs(sp[0].stop - 1.0) < 1e-9);
    assert_int_equal(sp[1].begin, 4);
    assert_int_equal(sp[1].end, 7);
    assert_true(fabs(sp[1].start - 1.0) < 1e-9 && fabs(sp[1].stop - 2.0) < 1e-9);
    assert_int_equal(adv, 3000);
    /* ends on a pair: continue from the last timestamp (1.6 s = 160 frames) */
    int32_t t2[] = {b, 100, b + 50, b + 50, 101, b + 80, b + 80};
    n = wh_split_window(t2, 7, b, 3000, sp, &adv);
    assert_int_equal(n, 2);
    assert_int_equal(sp[1].end, 6);
    assert_int_equal(adv, 160);
    /* no pair, cut off without a closing timestamp: one segment over the whole window */
    int32_t t3[] = {b, 100, 101};
    n = wh_split_window(t3, 3, b, 1200, sp, &adv);
    assert_int_equal(n, 1);
    assert_true(fabs(sp[0].stop - 12.0) < 1e-9);
    assert_int_equal(adv, 1200);
    /* no pair, closed: the segment ends at the last timestamp */
    int32_t t4[] = {b, 100, b + 40};
    n = wh_split_window(t4, 3, b, 3000, sp, &adv);
    assert_int_equal(n, 1);
    assert_true(fabs(sp[0].stop - 0.8) < 1e-9);
    assert_int_equal(adv, 3000);
    assert_int_equal(wh_split_window(NULL, 0, b, 3000, sp, &adv), 0);
}

static void test_utf8_sanitize(void **state) {
    (void)state;
    struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"plain", 5, "plain"},
        {"caf\xC3\xA9", 5, "caf\xC3\xA9"},                                   /* é kept */
        {"\xE6\x97\xA5\xE6\x9C", 5, "\xE6\x97\xA5\xEF\xBF\xBD\xEF\xBF\xBD"}, /* cut */
        {"\x80x", 2, "\xEF\xBF\xBDx"},                               /* a stray continuation byte */
        {"\xC0\xAF", 2, "\xEF\xBF\xBD\xEF\xBF\xBD"},                 /* overlong '/' */
        {"\xED\xA0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"}, /* a surrogate */
        {"\xF0\x9F\x98\x80", 4, "\xF0\x9F\x98\x80"},                 /* an emoji kept */
        {"", 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = wh_utf8_sanitize(cases[i].in, cases[i].n);
        assert_non_null(got);
        assert_string_equal(got, cases[i].out);
        free(got);
    }
}

/* ---- transcription with a random-weight model -------------------------------------------- */

typedef struct seg_log {
    int n;
    double last_start, last_end;
    int64_t last_seek;
    int n_windows;
    bool ok;
    int stop_after; /* return false from the callback after this many (0 = never) */
} seg_log;

/* Is s valid UTF-8 (sanitizing changes nothing)? */
static bool valid_utf8(const char *s) {
    char *clean = wh_utf8_sanitize(s, strlen(s));
    bool same = clean && strcmp(clean, s) == 0;
    free(clean);
    return same;
}

static bool log_segment(const fluid_whisper_segment *s, void *user) {
    seg_log *l = user;
    if (!valid_utf8(s->text)) l->ok = false;
    for (size_t i = 0; i < s->n_words; i++)
        if (!valid_utf8(s->words[i].text) || s->words[i].start < s->start - 1e-9 ||
            s->words[i].end > s->end + 1e-9)
            l->ok = false;
    if (s->id != l->n || s->start < l->last_start - 1e-9 || s->end < s->start ||
        s->seek < l->last_seek || !s->text || s->n_tokens == 0)
        l->ok = false;
    if (l->n == 0 || s->seek != l->last_seek) l->n_windows++;
    for (size_t i = 0; i + 1 < s->n_words; i++)
        if (s->words[i].end > s->words[i + 1].start + 1e-9) l->ok = false;
    l->last_start = s->start;
    l->last_end = s->end;
    l->last_seek = s->seek;
    l->n++;
    return l->stop_after == 0 || l->n < l->stop_after;
}

static fluid_whisper_params quick_params(seg_log *log) {
    fluid_whisper_params p;
    fluid_whisper_params_defaults(&p);
    p.language = "en";
    p.beam_size = 1;
    p.fallback = false;
    p.max_tokens = 12;
    p.on_segment = log_segment;
    p.on_segment_user = log;
    return p;
}

static void test_transcribe_synthetic(void **state) {
    (void)state;
    synth_run run;
    if (!synth_run_open(&run)) skip();
    fluid_error err = {0};
    fluid_whisper_info info;
    fluid_whisper_get_info(run.model, &info);
    assert_int_equal(info.n_audio_state, 64);
    assert_string_equal(info.type_name, "f16");
    assert_true(info.multilingual);

    /* greedy, twice: the same tokens */
    seg_log log = {0};
    log.ok = true;
    fluid_whisper_params p = quick_params(&log);
    fluid_whisper_result r1, r2;
    assert_int_equal(fluid_whisper_transcribe(run.model, run.pool, run.pcm, run.n, &p, &r1, &err),
                     FLUID_OK);
    assert_true(log.ok);
    assert_string_equal(r1.language, "en");
    assert_true(fabs(r1.duration - 11.0) < 0.01);
    assert_true(r1.n_token_ids > 0);
    for (size_t i = 0; i < r1.n_token_ids; i++) {
        assert_true(r1.token_ids[i] >= 0 && r1.token_ids[i] < info.n_vocab);
        assert_true(r1.token_ids[i] != run.model->sp.sot);
    }
    memset(&log, 0, sizeof log);
    log.ok = true;
    assert_int_equal(fluid_whisper_transcribe(run.model, run.pool, run.pcm, run.n, &p, &r2, &err),
                     FLUID_OK);
    assert_int_equal(r1.n_token_ids, r2.n_token_ids);
    assert_memory_equal(r1.token_ids, r2.token_ids, r1.n_token_ids * sizeof(int32_t));
    assert_string_equal(r1.text, r2.text);
    fluid_whisper_result_free(&r2);

    /* beam search, sampling with fallback, word timestamps, a prompt, translation */
    memset(&log, 0, sizeof log);
    log.ok = true;
    p.beam_size = 3;
    p.word_timestamps = true;
    p.initial_prompt = "President Kennedy.";
    p.translate = true;
    assert_int_equal(fluid_whisper_transcribe(run.model, run.pool, run.pcm, run.n, &p, &r2, &err),
                     FLUID_OK);
    assert_true(log.ok);
    fluid_whisper_result_free(&r2);
    p.beam_size = 1;
    p.best_of = 2;
    p.fallback = true;
    p.temperature_increment = 0.5f;
    p.max_tokens = 4;
    memset(&log, 0, sizeof log);
    log.ok = true;
    assert_int_equal(fluid_whisper_transcribe(run.model, run.pool, run.pcm, run.n, &p, &r2, &err),
                     FLUID_OK);
    assert_true(log.ok);
    fluid_whisper_result_free(&r2);

    /* language detection (the model is random: any language, with a probability) */
    float prob = 0.0f;
    int32_t lang = fluid_whisper_detect_language(run.model, run.pool, run.pcm, run.n, &prob, &err);
    assert_true(lang >= 0 && lang < 99);
    assert_true(prob > 0.0f && prob <= 1.0f);
    p = quick_params(&log);
    p.language = NULL;
    memset(&log, 0, sizeof log);
    log.ok = true;
    assert_int_equal(fluid_whisper_transcribe(run.model, run.pool, run.pcm, run.n, &p, &r2, &err),
                     FLUID_OK);
    assert_string_equal(r2.language, fluid_whisper_lang_code(lang));
    fluid_whisper_result_free(&r2);

    /* errors: unknown language, stop from the callback */
    p.language = "klingon";
    assert_int_equal(fluid_whisper_transcribe(run.model, run.pool, run.pcm, run.n, &p, &r2, &err),
                     FLUID_ERR_ARGUMENT);
    p.language = "en";
    memset(&log, 0, sizeof log);
    log.ok = true;
    log.stop_after = 1;
    if (r1.n_segments >= 1) {
        assert_int_equal(
            fluid_whisper_transcribe(run.model, run.pool, run.pcm, run.n, &p, &r2, &err),
            FLUID_ERR_CANCELLED);
    }
    /* empty audio: nothing to say */
    memset(&log, 0, sizeof log);
    log.ok = true;
    log.stop_after = 0;
    assert_int_equal(fluid_whisper_transcribe(run.model, run.pool, run.pcm, 0, &p, &r2, &err),
                     FLUID_OK);
    assert_int_equal(r2.n_segments, 0);
    assert_string_equal(r2.text, "");
    fluid_whisper_result_free(&r2);

    fluid_whisper_result_free(&r1);
    synth_run_close(&run);
}

/* Several sequences stepped together give each the logits it gets alone. */
static void test_decode_step_matches(void **state) {
    (void)state;
    synth_run run;
    if (!synth_run_open(&run)) skip();
    fluid_error err = {0};
    wh_state *st = wh_state_create(run.model, 3, &err);
    assert_non_null(st);
    float *mel = NULL;
    size_t frames = 0;
    assert_int_equal(wh_log_mel(run.pcm, run.n, WH_CHUNK_SAMPLES, run.model->mel_filters,
                                run.model->hp.n_mels, run.model->n_fft_bins, &mel, &frames, &err),
                     FLUID_OK);
    assert_int_equal(wh_encode(st, mel, frames, run.pool, &err), FLUID_OK);
    size_t nv = (size_t)run.model->hp.n_vocab;
    float *alone = malloc(3 * 4 * nv * sizeof(float)), *together = malloc(3 * nv * sizeof(float));
    assert_non_null(alone);
    assert_non_null(together);
    const int32_t prompt[3] = {50258, 50259, 50359};
    const int32_t steps[3][4] = {{50364, 400, 401, 402}, {50370, 500, 501, 502}, {50364, 1, 2, 3}};
    /* each sequence alone: the prompt, then its tokens one by one */
    for (int q = 0; q < 3; q++) {
        wh_seq_rewind(st, q, 0);
        assert_int_equal(wh_decode(st, q, prompt, 3, together, NULL, run.pool, &err), FLUID_OK);
        for (int t = 0; t < 4; t++)
            assert_int_equal(
                wh_decode(st, q, &steps[q][t], 1, alone + (q * 4 + t) * nv, NULL, run.pool, &err),
                FLUID_OK);
    }
    /* all three together, step by step (sequence 1 copied from 0 after the prompt) */
    wh_seq_rewind(st, 0, 0);
    assert_int_equal(wh_decode(st, 0, prompt, 3, together, NULL, run.pool, &err), FLUID_OK);
    wh_seq_copy(st, 1, 0);
    wh_seq_copy(st, 2, 0);
    int seqs[3] = {2, 0, 1}; /* in any order */
    for (int t = 0; t < 4; t++) {
        int32_t toks[3] = {steps[2][t], steps[0][t], steps[1][t]};
        assert_int_equal(wh_decode_step(st, seqs, toks, 3, together, run.pool, &err), FLUID_OK);
        for (int r = 0; r < 3; r++) {
            const float *want = alone + (seqs[r] * 4 + t) * nv, *got = together + r * nv;
            float worst = 0.0f, scale = 0.0f;
            for (size_t i = 0; i < nv; i++) {
                worst = fmaxf(worst, fabsf(got[i] - want[i]));
                scale = fmaxf(scale, fabsf(want[i]));
            }
            assert_true(worst <= 1e-4f * scale);
        }
    }
    assert_int_equal(wh_seq_past(st, 0), 7);
    int twice[2] = {0, 0};
    int32_t two[2] = {1, 2};
    assert_int_equal(wh_decode_step(st, twice, two, 2, together, run.pool, &err),
                     FLUID_ERR_ARGUMENT);
    free(alone);
    free(together);
    free(mel);
    wh_state_free(st);
    synth_run_close(&run);
}

static bool abort_now(void *user) {
    (void)user;
    return true;
}

static void test_long_audio_windows(void **state) {
    (void)state;
    synth_run run;
    if (!synth_run_open(&run)) skip();
    /* 3 minutes: jfk.wav (11 s) 17 times */
    size_t reps = 17, total = run.n * reps;
    float *pcm = malloc(total * sizeof(float));
    assert_non_null(pcm);
    for (size_t i = 0; i < reps; i++) memcpy(pcm + i * run.n, run.pcm, run.n * sizeof(float));
    fluid_error err = {0};
    seg_log log = {0};
    log.ok = true;
    fluid_whisper_params p = quick_params(&log);
    p.max_tokens = 6;
    fluid_whisper_result r;
    assert_int_equal(fluid_whisper_transcribe(run.model, run.pool, pcm, total, &p, &r, &err),
                     FLUID_OK);
    assert_true(log.ok);             /* ids in order, start/seek never go back, end >= start */
    assert_true(log.n_windows >= 6); /* 187 s need at least 7 windows */
    assert_true(log.last_seek >= 150 * 100);        /* the last window is near the end */
    assert_true(log.last_end <= r.duration + 30.0); /* within the last window */
    fluid_whisper_result_free(&r);
    p.should_abort = abort_now;
    assert_int_equal(fluid_whisper_transcribe(run.model, run.pool, pcm, total, &p, &r, &err),
                     FLUID_ERR_CANCELLED);
    free(pcm);
    synth_run_close(&run);
}

/* A large-v3 style header (51866 tokens, 128 mel bins) made from the tiny header file. */
static char *v3_header(void) {
    char *tiny = test_testdata_path("for-tests-ggml-tiny.bin");
    if (!tiny) return NULL;
    size_t n;
    uint8_t *d = (uint8_t *)test_read_file(tiny, &n);
    assert_non_null(d);
    free(tiny);
    int32_t hp[11], n_mel, n_fft;
    memcpy(hp, d + 4, sizeof hp);
    memcpy(&n_mel, d + 48, 4);
    memcpy(&n_fft, d + 52, 4);
    size_t filters_end = 56 + (size_t)n_mel * n_fft * 4;
    hp[0] = 51866;
    hp[9] = 128;
    char *path = malloc(64);
    assert_non_null(path);
    snprintf(path, 64, "/tmp/fluid-whisper-v3-%d.bin", (int)getpid());
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    int32_t mel_dims[2] = {128, n_fft};
    fwrite(d, 1, 4, f);
    fwrite(hp, 4, 11, f);
    fwrite(mel_dims, 4, 2, f);
    for (int row = 0; row < 128; row++) /* 128 filters: the 80 real ones, then again */
        fwrite(d + 56 + (size_t)(row % n_mel) * n_fft * 4, 4, (size_t)n_fft, f);
    fwrite(d + filters_end, 1, n - filters_end, f); /* the vocabulary */
    fclose(f);
    free(d);
    return path;
}

static void test_large_v3_layout(void **state) {
    (void)state;
    size_t n = 0;
    float *pcm = jfk_pcm(&n);
    char *header = v3_header();
    if (!pcm || !header) {
        free(pcm);
        free(header);
        skip();
    }
    char model[64];
    snprintf(model, sizeof model, "/tmp/fluid-whisper-v3m-%d.bin", (int)getpid());
    fluid_error err = {0};
    assert_int_equal(wh_synth_write(header, model, "test", FL_TYPE_Q8_0, 4, &err), FLUID_OK);
    fluid_whisper *m = fluid_whisper_load(model, &err);
    assert_non_null(m);
    fluid_whisper_info info;
    fluid_whisper_get_info(m, &info);
    assert_int_equal(info.n_mels, 128);
    assert_int_equal(info.n_languages, 100);
    assert_string_equal(info.type_name, "q8_0");
    assert_string_equal(fluid_whisper_token_text(m, m->sp.lang_begin + 99), "<|yue|>");
    assert_string_equal(fluid_whisper_token_text(m, 50359), "<|translate|>");
    assert_string_equal(fluid_whisper_token_text(m, 50365), "<|0.00|>");
    fl_pool *pool = fl_pool_create(2);
    seg_log log = {0};
    log.ok = true;
    fluid_whisper_params p = quick_params(&log);
    p.language = "yue"; /* the hundredth language exists only in large-v3 */
    fluid_whisper_result r;
    assert_int_equal(fluid_whisper_transcribe(m, pool, pcm, n, &p, &r, &err), FLUID_OK);
    assert_true(log.ok);
    assert_string_equal(r.language, "yue");
    assert_true(r.n_token_ids > 0 && r.token_ids[0] >= 50365);
    fluid_whisper_result_free(&r);
    fl_pool_free(pool);
    fluid_whisper_free(m);

    /* a 99-language model refuses it */
    char *tiny_model = synth_model("f16");
    m = fluid_whisper_load(tiny_model, &err);
    assert_non_null(m);
    assert_int_equal(fluid_whisper_transcribe(m, NULL, pcm, n, &p, &r, &err), FLUID_ERR_ARGUMENT);
    fluid_whisper_free(m);
    unlink(tiny_model);
    free(tiny_model);
    unlink(model);
    unlink(header);
    free(header);
    free(pcm);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_specials),
        cmocka_unit_test(test_languages),
        cmocka_unit_test(test_header_only_files),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_truncated_model),
        cmocka_unit_test(test_timestamp_rules),
        cmocka_unit_test(test_log_softmax_and_compression),
        cmocka_unit_test(test_split_window),
        cmocka_unit_test(test_utf8_sanitize),
        cmocka_unit_test(test_transcribe_synthetic),
        cmocka_unit_test(test_decode_step_matches),
        cmocka_unit_test(test_long_audio_windows),
        cmocka_unit_test(test_large_v3_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

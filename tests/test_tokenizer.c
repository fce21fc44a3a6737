/* Tokenizers on small vocabularies written by the test itself (no outside files): byte-level
 * BPE with merges and special tokens, SentencePiece with scores and byte fallback, the
 * streaming detokenizer, validation of malformed vocabularies, and random input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/vocab.h"
#include "engine/vocab_impl.h"
#include "support/tiny_llm.h"
#include "support/detok.h"
#include "support/rng.h"

/* ---- writing vocabularies ---- */

typedef struct vocab_spec {
    const char *model, *pre;
    const char **tokens;
    int32_t *types;
    float *scores;
    int n, n_scores; /* n_scores 0: as many as tokens */
    const char **merges;
    int n_merges;
    int32_t bos, eos; /* -1: key not written */
    int add_bos;      /* -1: key not written */
} vocab_spec;

static fluid_vocab *load_spec(const vocab_spec *s, fluid_error *err) {
    gguf_writer *w = gguf_writer_create();
    assert_non_null(w);
    if (s->model) gguf_writer_set_str(w, "tokenizer.ggml.model", s->model);
    if (s->pre) gguf_writer_set_str(w, "tokenizer.ggml.pre", s->pre);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", s->tokens, (uint64_t)s->n);
    if (s->types)
        gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, s->types,
                            (uint64_t)s->n);
    if (s->scores)
        gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, s->scores,
                            (uint64_t)(s->n_scores ? s->n_scores : s->n));
    if (s->merges)
        gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", s->merges, (uint64_t)s->n_merges);
    if (s->bos >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)s->bos);
    if (s->eos >= 0) gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)s->eos);
    if (s->add_bos >= 0) gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", s->add_bos);
    char *path = tiny_llm_temp_path();
    char msg[256];
    assert_true(gguf_writer_write(w, path, msg, sizeof msg));
    gguf_writer_free(w);
    fluid_vocab *v = fluid_vocab_load(path, err);
    remove(path);
    free(path);
    return v;
}

/* The byte-level BPE vocabulary fluid-synth also writes: 256 byte tokens, a few merges,
 * <|endoftext|> <|im_start|> <|im_end|>. */
enum { N_BYTES = 256, N_MERGED = 6, N_SPECIAL = 3, N_BPE = N_BYTES + N_MERGED + N_SPECIAL };
static const char *const MERGES[N_MERGED] = {"h e",    "l l",        "he ll",
                                             "hell o", "\xc4\xa0 w", "\xc4\xa0w o"};
static const char *const MERGED[N_MERGED] = {"he",    "ll",        "hell",
                                             "hello", "\xc4\xa0w", "\xc4\xa0wo"};
static const char *const SPECIALS[N_SPECIAL] = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
enum { ID_HELLO = N_BYTES + 3, ID_SPACE_WO = N_BYTES + 5, ID_EOT = N_BYTES + N_MERGED };

typedef struct bpe_spec {
    char byte_text[N_BYTES][4];
    const char *tokens[N_BPE];
    int32_t types[N_BPE];
    vocab_spec spec;
} bpe_spec;

static void bpe_spec_init(bpe_spec *b) {
    memset(b, 0, sizeof *b);
    for (int i = 0; i < N_BYTES; i++) {
        size_t n = fl_utf8_encode(fl_byte_to_cp((uint8_t)i), b->byte_text[i]);
        b->byte_text[i][n] = '\0';
        b->tokens[i] = b->byte_text[i];
        b->types[i] = 1;
    }
    for (int i = 0; i < N_MERGED; i++) {
        b->tokens[N_BYTES + i] = MERGED[i];
        b->types[N_BYTES + i] = 1;
    }
    for (int i = 0; i < N_SPECIAL; i++) {
        b->tokens[ID_EOT + i] = SPECIALS[i];
        b->types[ID_EOT + i] = 3;
    }
    b->spec = (vocab_spec){.model = "gpt2",
                           .pre = "qwen2",
                           .tokens = b->tokens,
                           .types = b->types,
                           .n = N_BPE,
                           .merges = (const char **)MERGES,
                           .n_merges = N_MERGED,
                           .bos = ID_EOT,
                           .eos = ID_EOT,
                           .add_bos = -1};
}

static fluid_vocab *bpe_vocab(int add_bos) {
    bpe_spec b;
    bpe_spec_init(&b);
    b.spec.add_bos = add_bos;
    fluid_error err = {0};
    fluid_vocab *v = load_spec(&b.spec, &err);
    if (!v) print_message("%s\n", err.message);
    assert_non_null(v);
    return v;
}

static size_t tokenize(const fluid_vocab *v, const char *text, bool add_special, bool parse_special,
                       int32_t *out, size_t cap) {
    int32_t *ids;
    size_t n;
    assert_int_equal(
        fluid_tokenize(v, text, strlen(text), add_special, parse_special, &ids, &n, NULL),
        FLUID_OK);
    assert_true(n <= cap);
    memcpy(out, ids, n * sizeof *ids);
    free(ids);
    return n;
}

/* ---- byte-level BPE ---- */

static void bpe_merges_by_rank(void **state) {
    (void)state;
    fluid_vocab *v = bpe_vocab(-1);
    int32_t ids[64];
    size_t n = tokenize(v, "hello world", false, false, ids, 64);
    /* "hello" merges fully; " world" gets only " wo" (no further merges), then bytes */
    assert_int_equal(n, 5);
    assert_int_equal(ids[0], ID_HELLO);
    assert_int_equal(ids[1], ID_SPACE_WO);
    assert_int_equal(ids[2], 'r'); /* the byte tokens are in byte order */
    assert_string_equal(fl_vocab_token_text(v, ids[3]), "l");
    assert_string_equal(fl_vocab_token_text(v, ids[4]), "d");
    assert_int_equal(fl_vocab_find(v, "hello"), ID_HELLO);
    assert_int_equal(fl_vocab_find(v, "nope"), -1);
    assert_int_equal(fluid_vocab_size(v), N_BPE);
    /* qwen2 splits digits one by one */
    n = tokenize(v, "123", false, false, ids, 64);
    assert_int_equal(n, 3);
    fluid_vocab_free(v);
}

static void bpe_special_tokens(void **state) {
    (void)state;
    fluid_vocab *v = bpe_vocab(-1);
    const char *text = "<|im_start|>hello<|im_end|>";
    int32_t ids[64];
    size_t n = tokenize(v, text, false, true, ids, 64);
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], ID_EOT + 1);
    assert_int_equal(ids[1], ID_HELLO);
    assert_int_equal(ids[2], ID_EOT + 2);
    /* not parsed: the text is tokenized as text */
    n = tokenize(v, text, false, false, ids, 64);
    assert_true(n > 3);
    for (size_t i = 0; i < n; i++) assert_true(ids[i] < ID_EOT);
    /* end of generation: <|im_end|> and <|endoftext|> */
    assert_true(fluid_token_is_eog(v, ID_EOT));
    assert_true(fluid_token_is_eog(v, ID_EOT + 2));
    assert_false(fluid_token_is_eog(v, ID_EOT + 1));
    assert_false(fluid_token_is_eog(v, ID_HELLO));
    assert_false(fluid_token_is_eog(v, -1));
    assert_false(fluid_token_is_eog(v, N_BPE));
    /* control tokens have text only when rendered */
    char buf[32];
    assert_int_equal(fluid_token_bytes(v, ID_EOT + 2, false, buf, sizeof buf), 0);
    assert_int_equal(fluid_token_bytes(v, ID_EOT + 2, true, buf, sizeof buf), 10);
    assert_memory_equal(buf, "<|im_end|>", 10);
    fluid_vocab_free(v);
}

static void bpe_adds_bos_when_asked(void **state) {
    (void)state;
    fluid_vocab *v = bpe_vocab(1);
    int32_t ids[64];
    assert_int_equal(fluid_token_bos(v), ID_EOT);
    assert_int_equal(fluid_token_eos(v), ID_EOT);
    size_t n = tokenize(v, "hello", true, false, ids, 64);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], ID_EOT);
    n = tokenize(v, "hello", false, false, ids, 64);
    assert_int_equal(n, 1);
    n = tokenize(v, "", true, false, ids, 64);
    assert_int_equal(n, 1);
    fluid_vocab_free(v);
    v = bpe_vocab(-1); /* qwen2 adds no BOS by default */
    assert_int_equal(tokenize(v, "hello", true, false, ids, 64), 1);
    fluid_vocab_free(v);
}

static void bpe_round_trips_text(void **state) {
    (void)state;
    fluid_vocab *v = bpe_vocab(-1);
    const char *texts[] = {"hello world",
                           "  spaces\n\ttabs\r\n",
                           "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
                           "emoji \xf0\x9f\x98\x81!",
                           "<|im_end|> as text",
                           ""};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        int32_t ids[256];
        char out[512];
        size_t n = tokenize(v, texts[t], false, false, ids, 256);
        size_t len = test_detok_all(v, ids, n, false, out, sizeof out);
        assert_int_equal(len, strlen(texts[t]));
        assert_memory_equal(out, texts[t], len);
    }
    fluid_vocab_free(v);
}

/* A character split across tokens is held back until complete; a leftover becomes U+FFFD. */
static void detok_streams_whole_utf8(void **state) {
    (void)state;
    fluid_vocab *v = bpe_vocab(-1);
    int32_t ids[16];
    size_t n = tokenize(v, "\xf0\x9f\x98\x81", false, false, ids, 16); /* one emoji, 4 bytes */
    assert_int_equal(n, 4);
    fluid_detok *d = fluid_detok_create(v, false);
    size_t len;
    for (int i = 0; i < 3; i++) {
        assert_non_null(fluid_detok_push(d, ids[i], &len));
        assert_int_equal(len, 0);
    }
    const char *s = fluid_detok_push(d, ids[3], &len);
    assert_int_equal(len, 4);
    assert_memory_equal(s, "\xf0\x9f\x98\x81", 4);
    /* an unfinished character at the end becomes U+FFFD on flush */
    fluid_detok_push(d, ids[0], &len);
    fluid_detok_push(d, ids[1], &len);
    assert_int_equal(len, 0);
    s = fluid_detok_flush(d, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(s, "\xef\xbf\xbd", 3);
    /* a broken sequence is replaced at once, and what follows it comes through */
    fluid_detok_push(d, ids[0], &len);
    s = fluid_detok_push(d, ID_HELLO, &len);
    assert_int_equal(len, 8);
    assert_memory_equal(s, "\xef\xbf\xbdhello", 8);
    s = fluid_detok_flush(d, &len);
    assert_int_equal(len, 0);
    fluid_detok_free(d);
    fluid_vocab_free(v);
}

/* ---- SentencePiece ---- */

static void spm_scores_and_byte_fallback(void **state) {
    (void)state;
    enum { N = 3 + 256 + 5 };
    static char bytes[256][8];
    const char *tokens[N] = {"<unk>", "<s>", "</s>"};
    int32_t types[N] = {2, 3, 3};
    float scores[N] = {0};
    for (int i = 0; i < 256; i++) {
        snprintf(bytes[i], sizeof bytes[i], "<0x%02X>", i);
        tokens[3 + i] = bytes[i];
        types[3 + i] = 6;
    }
    const char *pieces[5] = {"\xe2\x96\x81", "\xe2\x96\x81h", "\xe2\x96\x81he", "h", "e"};
    const float piece_scores[5] = {-1, -3, -2, -5, -5};
    for (int i = 0; i < 5; i++) {
        tokens[259 + i] = pieces[i];
        types[259 + i] = 1;
        scores[259 + i] = piece_scores[i];
    }
    vocab_spec s = {.model = "llama",
                    .tokens = tokens,
                    .types = types,
                    .scores = scores,
                    .n = N,
                    .bos = 1,
                    .eos = 2,
                    .add_bos = -1};
    fluid_error err = {0};
    fluid_vocab *v = load_spec(&s, &err);
    assert_non_null(v);
    int32_t ids[16];
    /* dummy prefix, then the best-scoring merges; é has no token: its two bytes */
    size_t n = tokenize(v, "he\xc3\xa9", true, false, ids, 16);
    assert_int_equal(n, 4);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 261);
    assert_int_equal(ids[2], 3 + 0xc3);
    assert_int_equal(ids[3], 3 + 0xa9);
    char out[32];
    size_t len = test_detok_all(v, ids, n, false, out, sizeof out);
    assert_int_equal(len, 5);
    assert_memory_equal(out, " he\xc3\xa9", 5);
    assert_true(fluid_token_is_eog(v, 2));
    fluid_vocab_free(v);
}

/* ---- malformed vocabularies ---- */

static void expect_rejected(vocab_spec *s, fluid_status code, const char *needle) {
    fluid_error err = {0};
    fluid_vocab *v = load_spec(s, &err);
    if (v) print_message("accepted: %s\n", needle);
    assert_null(v);
    assert_int_equal(err.code, code);
    if (!strstr(err.message, needle)) print_message("message: %s\n", err.message);
    assert_non_null(strstr(err.message, needle));
}

static void bad_vocabularies_are_rejected(void **state) {
    (void)state;
    bpe_spec b;
    bpe_spec_init(&b);
    vocab_spec s = b.spec;
    s.bos = N_BPE; /* out of range */
    expect_rejected(&s, FLUID_ERR_FORMAT, "bos_token_id");
    s = b.spec;
    s.model = "klingon";
    expect_rejected(&s, FLUID_ERR_UNSUPPORTED, "klingon");
    s = b.spec;
    s.model = NULL;
    expect_rejected(&s, FLUID_ERR_FORMAT, "tokenizer.ggml.model");
    s = b.spec;
    s.pre = "no-such-pre";
    expect_rejected(&s, FLUID_ERR_UNSUPPORTED, "no-such-pre");
    s = b.spec;
    s.merges = NULL;
    expect_rejected(&s, FLUID_ERR_FORMAT, "merges");
    s = b.spec;
    float scores[4] = {0};
    s.scores = scores;
    s.n_scores = 4;
    expect_rejected(&s, FLUID_ERR_FORMAT, "scores");

    /* token types that are not integers */
    gguf_writer *w = gguf_writer_create();
    gguf_writer_set_str(w, "tokenizer.ggml.model", "gpt2");
    gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", b.tokens, N_BPE);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.token_type", b.tokens, N_BPE);
    gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", MERGES, N_MERGED);
    char *path = tiny_llm_temp_path(), msg[256];
    assert_true(gguf_writer_write(w, path, msg, sizeof msg));
    gguf_writer_free(w);
    fluid_error err = {0};
    assert_null(fluid_vocab_load(path, &err));
    assert_int_equal(err.code, FLUID_ERR_FORMAT);
    assert_non_null(strstr(err.message, "token_type"));
    remove(path);
    free(path);
    assert_null(fluid_vocab_load("/nonexistent/vocab.gguf", &err));
    assert_int_equal(err.code, FLUID_ERR_IO);
}

static void utf8_validation(void **state) {
    (void)state;
    assert_int_equal(fl_utf8_valid_prefix("a\xc3\xa9\xf0\x9f\x98\x81", 7), 7);
    assert_int_equal(fl_utf8_valid_prefix("\xf8\x90\x80\x80", 4), 0); /* no such lead byte */
    assert_int_equal(fl_utf8_valid_prefix("\xc0\xaf", 2), 0);         /* overlong */
    assert_int_equal(fl_utf8_valid_prefix("\xed\xa0\x80", 3), 0);     /* surrogate */
    assert_int_equal(fl_utf8_valid_prefix("\xf4\x90\x80\x80", 4), 0); /* beyond U+10FFFF */
    assert_int_equal(fl_utf8_valid_prefix("ab\xe6\x97", 4), 2);       /* truncated */
    for (int b = 0; b < 256; b++) assert_int_equal(fl_cp_to_byte(fl_byte_to_cp((uint8_t)b)), b);
}

/* ---- random input ---- */

static void random_input_never_crashes(void **state) {
    (void)state;
    fluid_vocab *v = bpe_vocab(1);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char text[300], out[4096];
    const char *alphabet[] = {"a", " ",  "\n",       "<|im_end|>", "\xc3", "\xa9", "\xe6\x97\xa5",
                              "1", "'s", "\xf0\x9f", "\xff",       "\t"};
    for (int iter = 0; iter < 400; iter++) {
        size_t len = test_rng_next(&seed) % 200;
        if (iter % 2) { /* random bytes */
            for (size_t i = 0; i < len; i++) text[i] = (char)test_rng_next(&seed);
        } else { /* pieces that exercise the splitters and special tokens */
            size_t o = 0;
            while (o + 12 < len) {
                const char *p = alphabet[test_rng_next(&seed) % 12];
                memcpy(text + o, p, strlen(p));
                o += strlen(p);
            }
            len = o;
        }
        int32_t *ids;
        size_t n;
        assert_int_equal(fluid_tokenize(v, text, len, iter % 3 == 0, iter % 4 == 0, &ids, &n, NULL),
                         FLUID_OK);
        for (size_t i = 0; i < n; i++) assert_true(ids[i] >= 0 && ids[i] < N_BPE);
        size_t got = test_detok_all(v, ids, n, iter % 2, out, sizeof out);
        assert_int_equal(fl_utf8_valid_prefix(out, got), got); /* always valid UTF-8 */
        free(ids);
    }
    fluid_vocab_free(v);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bpe_merges_by_rank),
        cmocka_unit_test(bpe_special_tokens),
        cmocka_unit_test(bpe_adds_bos_when_asked),
        cmocka_unit_test(bpe_round_trips_text),
        cmocka_unit_test(detok_streams_whole_utf8),
        cmocka_unit_test(spm_scores_and_byte_fallback),
        cmocka_unit_test(bad_vocabularies_are_rejected),
        cmocka_unit_test(utf8_validation),
        cmocka_unit_test(random_input_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

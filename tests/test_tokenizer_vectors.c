/* The tokenizers against the reference tokenizations in $FLUID_TESTDATA (ggml-vocab-*.gguf with
 * .inp/.out pairs): every expected tokenization must match exactly. Also, for the same
 * vocabularies: decoding gives back the text (byte-level BPE), and random bytes never crash
 * the tokenizer or the detokenizer. Each vocabulary is loaded once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/vocab.h"
#include "engine/vocab_impl.h"
#include "support/detok.h"
#include "support/files.h"
#include "support/rng.h"

static const char *const VOCABS[] = {
    "bert-bge", "deepseek-coder", "deepseek-llm", "falcon",    "gemma-4",
    "gpt-2",    "llama-bpe",      "llama-spm",    "mpt",       "phi-3",
    "qwen2",    "qwen35",         "refact",       "starcoder",
};
enum { N_VOCABS = sizeof VOCABS / sizeof VOCABS[0] };

typedef struct vector_file {
    char *inp, *out; /* file contents */
    char **texts;    /* the test strings (point into inp) */
    size_t *lens;
    char **expected; /* one line of ids per string (point into out) */
    size_t n;
} vector_file;

typedef struct suite {
    const char *dir;
    fluid_vocab *vocab[N_VOCABS];
    vector_file vec[N_VOCABS];
} suite;

/* .inp: strings separated by "\n__ggml_vocab_test__\n" (the last one may or may not be followed
 * by the separator); .out: one line of space-separated ids per string. */
static void parse_vectors(vector_file *vf) {
    static const char SEP[] = "\n__ggml_vocab_test__\n";
    size_t cap = 64;
    vf->texts = malloc(sizeof *vf->texts * cap);
    vf->lens = malloc(sizeof *vf->lens * cap);
    vf->expected = malloc(sizeof *vf->expected * cap);
    char *p = vf->inp;
    for (;;) {
        char *sep = strstr(p, SEP);
        if (!sep && *p == '\0') break;
        if (vf->n == cap) {
            cap *= 2;
            vf->texts = realloc(vf->texts, sizeof *vf->texts * cap);
            vf->lens = realloc(vf->lens, sizeof *vf->lens * cap);
            vf->expected = realloc(vf->expected, sizeof *vf->expected * cap);
        }
        vf->texts[vf->n] = p;
        vf->lens[vf->n] = sep ? (size_t)(sep - p) : strlen(p);
        vf->n++;
        if (!sep) break;
        p = sep + strlen(SEP);
    }
    char *line = vf->out;
    for (size_t i = 0; i < vf->n; i++) {
        char *nl = line ? strchr(line, '\n') : NULL;
        vf->expected[i] = line;
        if (nl) *nl = '\0';
        line = nl ? nl + 1 : NULL;
    }
}

static int setup(void **state) {
    const char *dir = getenv("FLUID_TESTDATA");
    char path[1024];
    if (!dir) return 0;
    snprintf(path, sizeof path, "%s/ggml-vocab-qwen2.gguf", dir);
    FILE *probe = fopen(path, "rb");
    if (!probe) return 0;
    fclose(probe);
    suite *s = calloc(1, sizeof *s);
    s->dir = dir;
    for (int i = 0; i < N_VOCABS; i++) {
        fluid_error err = {0};
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, VOCABS[i]);
        s->vocab[i] = fluid_vocab_load(path, &err);
        if (!s->vocab[i]) print_message("%s: %s\n", VOCABS[i], err.message);
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf.inp", dir, VOCABS[i]);
        s->vec[i].inp = test_read_file(path, NULL);
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf.out", dir, VOCABS[i]);
        s->vec[i].out = test_read_file(path, NULL);
        if (s->vec[i].inp && s->vec[i].out) parse_vectors(&s->vec[i]);
    }
    *state = s;
    return 0;
}

static int teardown(void **state) {
    suite *s = *state;
    if (!s) return 0;
    for (int i = 0; i < N_VOCABS; i++) {
        fluid_vocab_free(s->vocab[i]);
        free(s->vec[i].inp);
        free(s->vec[i].out);
        free(s->vec[i].texts);
        free(s->vec[i].lens);
        free(s->vec[i].expected);
    }
    free(s);
    return 0;
}

static suite *need_testdata(void **state) {
    if (!*state) {
        print_message("FLUID_TESTDATA (ggml-vocab-*.gguf) not found: skipping\n");
        skip();
    }
    return *state;
}

static void print_escaped(const char *what, const char *s, size_t len) {
    printf("    %s \"", what);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n')
            printf("\\n");
        else if (c == '\t')
            printf("\\t");
        else if (c < 0x20)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    printf("\"\n");
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    printf("    %s", what);
    for (size_t i = 0; i < n; i++) printf(" %d", ids[i]);
    printf("\n");
}

/* Tokenizes one string and compares with the expected line; prints the difference. */
static bool vector_matches(const fluid_vocab *v, const char *text, size_t len, const char *want) {
    int32_t *ids = NULL, expected[4096];
    size_t n = 0, n_expected = 0;
    fluid_error err = {0};
    for (char *end; n_expected < 4096; want = end) {
        long id = strtol(want, &end, 10);
        if (end == want) break;
        expected[n_expected++] = (int32_t)id;
    }
    if (fluid_tokenize(v, text, len, false, false, &ids, &n, &err) != FLUID_OK) {
        printf("    tokenize failed: %s\n", err.message);
        return false;
    }
    bool ok = n == n_expected && memcmp(ids, expected, n * sizeof *ids) == 0;
    if (!ok) {
        print_escaped("input", text, len);
        print_ids("want:", expected, n_expected);
        print_ids("got: ", ids, n);
    }
    free(ids);
    return ok;
}

static void every_vector_matches(void **state) {
    suite *s = need_testdata(state);
    size_t total = 0, passed = 0;
    for (int i = 0; i < N_VOCABS; i++) {
        const vector_file *vf = &s->vec[i];
        size_t ok = 0;
        if (s->vocab[i] && vf->n > 0)
            for (size_t k = 0; k < vf->n; k++)
                ok += vector_matches(s->vocab[i], vf->texts[k], vf->lens[k], vf->expected[k]);
        printf("%-16s %zu/%zu\n", VOCABS[i], ok, vf->n);
        total += vf->n;
        passed += ok;
    }
    printf("all vocabularies: %zu/%zu\n", passed, total);
    assert_int_equal(passed, total);
    assert_true(total > 600);
}

/* BPE vocabularies give back every test string exactly (the streaming detokenizer included). */
static void bpe_vocabularies_round_trip(void **state) {
    suite *s = need_testdata(state);
    static char out[1 << 16];
    for (int i = 0; i < N_VOCABS; i++) {
        const fluid_vocab *v = s->vocab[i];
        if (!v || v->kind != FL_VOCAB_BPE) continue;
        size_t ok = 0;
        for (size_t k = 0; k < s->vec[i].n; k++) {
            int32_t *ids;
            size_t n;
            const char *text = s->vec[i].texts[k];
            size_t len = s->vec[i].lens[k];
            assert_int_equal(fluid_tokenize(v, text, len, false, false, &ids, &n, NULL), FLUID_OK);
            size_t got = test_detok_all(v, ids, n, false, out, sizeof out);
            free(ids);
            if (got == len && memcmp(out, text, len) == 0)
                ok++;
            else
                print_escaped("does not round-trip:", text, len);
        }
        printf("%-16s round trip %zu/%zu\n", VOCABS[i], ok, s->vec[i].n);
        assert_int_equal(ok, s->vec[i].n);
    }
}

/* Random bytes and random UTF-8 never crash the tokenizer or the detokenizer, ids stay in
 * range and decoded text is always valid UTF-8. */
static void random_input_never_crashes(void **state) {
    suite *s = need_testdata(state);
    const char *sanitize = getenv("FLUID_SANITIZE");
    int rounds = sanitize && strcmp(sanitize, "1") == 0 ? 12 : 60;
    static char text[2048], out[1 << 16];
    uint64_t seed = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < N_VOCABS; i++) {
        const fluid_vocab *v = s->vocab[i];
        if (!v) continue;
        for (int r = 0; r < rounds; r++) {
            size_t len = test_rng_next(&seed) % 1500, o = 0;
            while (o < len) {
                uint64_t x = test_rng_next(&seed);
                if (r % 2) { /* raw bytes */
                    text[o++] = (char)x;
                    continue;
                }
                /* valid UTF-8 of any plane, whitespace and specials' first bytes mixed in */
                uint32_t cp = (x >> 8) % 4 == 0 ? (uint32_t)(x >> 16) % 0x110000
                                                : (uint32_t)(x >> 16) % 0x3000;
                if (cp >= 0xd800 && cp <= 0xdfff) cp = ' ';
                if ((x & 7) == 0) cp = "<|> \n\t'"[(x >> 3) % 7];
                o += fl_utf8_encode(cp, text + o);
            }
            int32_t *ids;
            size_t n;
            assert_int_equal(fluid_tokenize(v, text, o, r % 3 == 0, r % 4 == 0, &ids, &n, NULL),
                             FLUID_OK);
            for (size_t k = 0; k < n; k++) assert_true(ids[k] >= 0 && ids[k] < v->n_tokens);
            size_t got = test_detok_all(v, ids, n, r % 2, out, sizeof out);
            assert_int_equal(fl_utf8_valid_prefix(out, got), got);
            free(ids);
        }
    }
}

static int main_tests(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_vector_matches),
        cmocka_unit_test(bpe_vocabularies_round_trip),
        cmocka_unit_test(random_input_never_crashes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

int main(void) {
    return main_tests();
}

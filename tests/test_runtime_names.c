/* Model names, discovery on disk and the stop-string matcher. */
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

#include "runtime/discovery.h"
#include "runtime/names.h"
#include "runtime/stopmatch.h"
#include "support/fake_hub.h"
#include "support/files.h"

/* ---- names ------------------------------------------------------------------------------- */

/* What rt_name_parse must make of a name; NULL fields are not checked. */
typedef struct name_case {
    const char *input;
    rt_model_type type;
    bool on_hub;
    const char *id, *rel_path, *hub_repo, *hub_file;
} name_case;

static void expect_names(const name_case *cases, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const name_case *c = &cases[i];
        rt_name got;
        rt_error err = {0};
        if (rt_name_parse(c->input, &got, &err) != RT_OK) fail_msg("%s: %s", c->input, err.message);
        assert_int_equal(got.type, c->type);
        assert_int_equal(got.on_hub, c->on_hub);
        if (c->id) assert_string_equal(got.id, c->id);
        if (c->rel_path) assert_string_equal(got.rel_path, c->rel_path);
        if (c->hub_repo) assert_string_equal(got.hub_repo, c->hub_repo);
        if (c->hub_file) assert_string_equal(got.hub_file, c->hub_file);
    }
}

#define DEFAULT_LLM_ID "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m"

static void test_llm_names(void **state) {
    (void)state;
    static const name_case cases[] = {
        {"qwen2.5-0.5b-instruct-q8_0", RT_MODEL_LLM, false, "qwen2.5-0.5b-instruct-q8_0",
         "llm/qwen2.5-0.5b-instruct-q8_0.gguf", NULL, NULL},
        /* the .gguf suffix is optional */
        {"sub/model.gguf", RT_MODEL_LLM, false, "sub/model", NULL, NULL, NULL},
        {RT_DEFAULT_LLM, RT_MODEL_LLM, true, DEFAULT_LLM_ID, "llm/" DEFAULT_LLM_ID ".gguf",
         "Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf"},
        {DEFAULT_LLM_ID, RT_MODEL_LLM, true, DEFAULT_LLM_ID, NULL, NULL, NULL},
        /* a file in a sub-folder of a repository */
        {"o/r/dir/f.gguf", RT_MODEL_LLM, true, NULL, NULL, "o/r", "dir/f.gguf"},
    };
    expect_names(cases, sizeof cases / sizeof cases[0]);
}

static void test_whisper_names(void **state) {
    (void)state;
    static const name_case cases[] = {
        {"whisper-base.en", RT_MODEL_WHISPER, true, "whisper-base.en", "whisper/ggml-base.en.bin",
         "ggerganov/whisper.cpp", "ggml-base.en.bin"},
        {"whisper-large-v3-turbo", RT_MODEL_WHISPER, true, NULL, NULL, NULL,
         "ggml-large-v3-turbo.bin"},
        {"whisper-tiny.bin", RT_MODEL_WHISPER, true, "whisper-tiny", NULL, NULL, NULL},
    };
    expect_names(cases, sizeof cases / sizeof cases[0]);
}

static void test_unsafe_names_are_refused(void **state) {
    (void)state;
    const char *bad[] = {
        "",         "../etc/passwd",       "a/../../b", "/etc/passwd",  "a//b",     "./a",
        ".hidden",  "a/.hidden/b",         "a\\b",      "whisper-../x", "whisper-", "whisper-a/b",
        "a/\x01/b", "o/r/../../../x.gguf", "..",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rt_name n;
        rt_error err = {0};
        if (rt_name_parse(bad[i], &n, &err) != RT_ERR_BAD_REQUEST)
            fail_msg("'%s' was accepted as %s", bad[i], n.rel_path);
        assert_int_equal(err.status, RT_ERR_BAD_REQUEST);
        assert_non_null(strstr(err.message, "invalid model name"));
    }
    char long_name[400];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    rt_name n;
    assert_int_equal(rt_name_parse(long_name, &n, NULL), RT_ERR_BAD_REQUEST);
}

static void test_file_names(void **state) {
    (void)state;
    char id[RT_ID_MAX];
    assert_true(rt_name_from_whisper_file("ggml-base.en.bin", id));
    assert_string_equal(id, "whisper-base.en");
    assert_true(rt_name_from_whisper_file("custom.bin", id));
    assert_string_equal(id, "whisper-custom");
    assert_false(rt_name_from_whisper_file("ggml-base.bin.part", id));
    assert_false(rt_name_from_whisper_file("notes.txt", id));
    assert_true(rt_name_from_llm_file("a/b/c.gguf", id));
    assert_string_equal(id, "a/b/c");
    assert_false(rt_name_from_llm_file("c.gguf.part", id));
    assert_false(rt_name_from_llm_file("c.bin", id));
    assert_true(rt_name_is_temporary("x.gguf.part"));
    assert_true(rt_name_is_temporary(".x.gguf"));
    assert_true(rt_name_is_temporary("x.gguf.tmp"));
    assert_false(rt_name_is_temporary("x.gguf"));
}

/* ---- discovery --------------------------------------------------------------------------- */

static void test_discovery(void **state) {
    (void)state;
    char *root = fake_hub_temp_dir();
    char *outside = fake_hub_temp_dir();
    assert_non_null(root);
    test_make_file(root, "llm/qwen2.5-0.5b-instruct-q8_0.gguf", "", 10);
    test_make_file(root, "llm/Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf",
                   "", 20);
    test_make_file(root, "llm/partial.gguf.part", "", 5);
    test_make_file(root, "llm/.hidden.gguf", "", 5);
    test_make_file(root, "llm/readme.txt", "", 5);
    test_make_file(root, "whisper/ggml-base.en.bin", "", 30);
    test_make_file(root, "whisper/ggml-tiny.bin.part", "", 3);
    test_make_file(root, "cache/ignored.gguf", "", 3);
    test_make_file(outside, "secret.gguf", "", 7);
    /* A link inside the folder is fine; one leading outside is not. */
    char target[1024], link_path[1024];
    snprintf(target, sizeof target, "%s/llm/qwen2.5-0.5b-instruct-q8_0.gguf", root);
    snprintf(link_path, sizeof link_path, "%s/llm/alias.gguf", root);
    assert_int_equal(symlink(target, link_path), 0);
    snprintf(target, sizeof target, "%s/secret.gguf", outside);
    snprintf(link_path, sizeof link_path, "%s/llm/escape.gguf", root);
    assert_int_equal(symlink(target, link_path), 0);
    snprintf(link_path, sizeof link_path, "%s/llm/linked-dir", root);
    assert_int_equal(symlink(outside, link_path), 0);

    rt_found *found = NULL;
    size_t n = 0;
    assert_int_equal(rt_discover(root, &found, &n, NULL), RT_OK);
    const char *want[] = {"Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m", "alias",
                          "qwen2.5-0.5b-instruct-q8_0", "whisper-base.en"};
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) assert_string_equal(found[i].id, want[i]);
    assert_int_equal(found[0].size, 20);
    assert_int_equal(found[3].type, RT_MODEL_WHISPER);
    assert_int_equal(found[3].size, 30);
    assert_true(found[3].mtime > 0);
    free(found);
    /* A missing folder is an empty list. */
    assert_int_equal(rt_discover("/nonexistent/models", &found, &n, NULL), RT_OK);
    assert_int_equal(n, 0);
    fake_hub_rmtree(root);
    fake_hub_rmtree(outside);
    free(root);
    free(outside);
}

/* ---- stop strings ------------------------------------------------------------------------ */

/* Feeds pieces and returns everything released (pieces joined), as a client would see it. */
static void run_stopper(const char *const *stops, size_t n_stops, const char *const *pieces,
                        size_t n_pieces, char *out, bool *matched) {
    rt_stopper s;
    rt_stopper_init(&s, stops, n_stops);
    out[0] = '\0';
    for (size_t i = 0; i < n_pieces && !s.matched; i++) {
        assert_true(rt_stopper_push(&s, pieces[i], strlen(pieces[i])));
        size_t ready = rt_stopper_ready(&s, false);
        strncat(out, s.buf, ready);
        rt_stopper_consume(&s, ready);
    }
    if (!s.matched) {
        size_t ready = rt_stopper_ready(&s, true);
        strncat(out, s.buf, ready);
        rt_stopper_consume(&s, ready);
    }
    *matched = s.matched;
    rt_stopper_free(&s);
}

static void test_stop_strings(void **state) {
    (void)state;
    char out[256];
    bool matched;
    const char *stops[] = {"END", "\n\n"};
    const char *p1[] = {"Hello E", "N", "D of text"};
    run_stopper(stops, 2, p1, 3, out, &matched);
    assert_true(matched);
    assert_string_equal(out, "Hello ");
    /* A partial match that does not complete is released. */
    const char *p2[] = {"EN", "dless"};
    run_stopper(stops, 2, p2, 2, out, &matched);
    assert_false(matched);
    assert_string_equal(out, "ENdless");
    /* Held back text is released when generation ends. */
    const char *p3[] = {"tail E"};
    run_stopper(stops, 2, p3, 1, out, &matched);
    assert_false(matched);
    assert_string_equal(out, "tail E");
    /* The earliest of several stops wins; a stop inside one piece. */
    const char *p4[] = {"a\n\nb END"};
    run_stopper(stops, 2, p4, 1, out, &matched);
    assert_true(matched);
    assert_string_equal(out, "a");
    /* No stops: everything at once. */
    rt_stopper s;
    rt_stopper_init(&s, NULL, 0);
    assert_true(rt_stopper_push(&s, "abc", 3));
    assert_int_equal(rt_stopper_ready(&s, false), 3);
    rt_stopper_free(&s);
    /* Nothing partial is ever released: "x EN" holds back "EN"... and " E" before. */
    rt_stopper_init(&s, stops, 2);
    assert_true(rt_stopper_push(&s, "x EN", 4));
    assert_int_equal(rt_stopper_ready(&s, false), 2);
    rt_stopper_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llm_names),
        cmocka_unit_test(test_whisper_names),
        cmocka_unit_test(test_unsafe_names_are_refused),
        cmocka_unit_test(test_file_names),
        cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_stop_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

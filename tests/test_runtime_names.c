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

/* ---- names ------------------------------------------------------------------------------- */

static void test_local_llm_names(void **state) {
    (void)state;
    rt_name n;
    assert_int_equal(rt_name_parse("qwen2.5-0.5b-instruct-q8_0", &n, NULL), RT_OK);
    assert_int_equal(n.type, RT_MODEL_LLM);
    assert_string_equal(n.id, "qwen2.5-0.5b-instruct-q8_0");
    assert_string_equal(n.rel_path, "llm/qwen2.5-0.5b-instruct-q8_0.gguf");
    assert_false(n.on_hub);
    /* The .gguf suffix is optional. */
    assert_int_equal(rt_name_parse("sub/model.gguf", &n, NULL), RT_OK);
    assert_string_equal(n.id, "sub/model");
    assert_false(n.on_hub);
}

static void test_hub_llm_names(void **state) {
    (void)state;
    rt_name n;
    assert_int_equal(rt_name_parse(RT_DEFAULT_LLM, &n, NULL), RT_OK);
    assert_string_equal(n.id, "Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m");
    assert_string_equal(n.rel_path,
                        "llm/Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf");
    assert_true(n.on_hub);
    assert_string_equal(n.hub_repo, "Qwen/Qwen2.5-0.5B-Instruct-GGUF");
    assert_string_equal(n.hub_file, "qwen2.5-0.5b-instruct-q4_k_m.gguf");
    /* The same model without .gguf, and a file in a sub-folder of a repository. */
    rt_name m;
    assert_int_equal(rt_name_parse(n.id, &m, NULL), RT_OK);
    assert_string_equal(m.id, n.id);
    assert_int_equal(rt_name_parse("o/r/dir/f.gguf", &m, NULL), RT_OK);
    assert_string_equal(m.hub_repo, "o/r");
    assert_string_equal(m.hub_file, "dir/f.gguf");
}

static void test_whisper_names(void **state) {
    (void)state;
    rt_name n;
    assert_int_equal(rt_name_parse("whisper-base.en", &n, NULL), RT_OK);
    assert_int_equal(n.type, RT_MODEL_WHISPER);
    assert_string_equal(n.id, "whisper-base.en");
    assert_string_equal(n.rel_path, "whisper/ggml-base.en.bin");
    assert_true(n.on_hub);
    assert_string_equal(n.hub_repo, "ggerganov/whisper.cpp");
    assert_string_equal(n.hub_file, "ggml-base.en.bin");
    assert_int_equal(rt_name_parse("whisper-large-v3-turbo", &n, NULL), RT_OK);
    assert_string_equal(n.hub_file, "ggml-large-v3-turbo.bin");
    assert_int_equal(rt_name_parse("whisper-tiny.bin", &n, NULL), RT_OK);
    assert_string_equal(n.id, "whisper-tiny");
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

static void touch(const char *root, const char *rel, size_t size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p != '\0'; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < size; i++) fputc('x', f);
    fclose(f);
}

static void test_discovery(void **state) {
    (void)state;
    char *root = fake_hub_temp_dir();
    char *outside = fake_hub_temp_dir();
    assert_non_null(root);
    touch(root, "llm/qwen2.5-0.5b-instruct-q8_0.gguf", 10);
    touch(root, "llm/Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf", 20);
    touch(root, "llm/partial.gguf.part", 5);
    touch(root, "llm/.hidden.gguf", 5);
    touch(root, "llm/readme.txt", 5);
    touch(root, "whisper/ggml-base.en.bin", 30);
    touch(root, "whisper/ggml-tiny.bin.part", 3);
    touch(root, "cache/ignored.gguf", 3);
    touch(outside, "secret.gguf", 7);
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
        cmocka_unit_test(test_local_llm_names), cmocka_unit_test(test_hub_llm_names),
        cmocka_unit_test(test_whisper_names),   cmocka_unit_test(test_unsafe_names_are_refused),
        cmocka_unit_test(test_file_names),      cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_stop_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The HTTP layer without sockets: multipart parser, router, settings, API key, CORS. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/config.h"
#include "server/http.h"
#include "server/multipart.h"
#include "server/router.h"

/* ---- multipart ---- */

static bool parse(const char *body, api_form *form, char *err) {
    return mp_parse(body, strlen(body), "XyZ", form, err, 128);
}

static void test_multipart_fields_and_file(void **state) {
    (void)state;
    const char *body =
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"model\"\r\n\r\n"
        "whisper-1\r\n"
        "--XyZ\r\n"
        "Content-Disposition: form-data; name=\"file\"; filename=\"a \\\"b\\\".wav\"\r\n"
        "Content-Type: audio/wav\r\n\r\n"
        "RIFF\r\n--X\0\xff"
        "\r\n--XyZ--\r\n";
    size_t len = 0;
    /* The file holds a NUL and a near-boundary: length by hand. */
    const char *end = body;
    while (memcmp(end, "\r\n--XyZ--", 9) != 0) end++;
    len = (size_t)(end - body) + 11;
    api_form form;
    char err[128];
    assert_true(mp_parse(body, len, "XyZ", &form, err, sizeof err));
    assert_int_equal(form.n, 2);
    const api_form_part *model = api_form_get(&form, "model");
    assert_non_null(model);
    assert_int_equal(model->len, 9);
    assert_memory_equal(model->data, "whisper-1", 9);
    assert_false(model->has_filename);
    const api_form_part *file = api_form_get(&form, "file");
    assert_non_null(file);
    assert_true(file->has_filename);
    assert_string_equal(file->filename, "a \"b\".wav");
    assert_string_equal(file->content_type, "audio/wav");
    assert_int_equal(file->len, 11);
    assert_memory_equal(file->data, "RIFF\r\n--X\0\xff", 11);
    assert_null(api_form_get(&form, "language"));
}

static void test_multipart_preamble_and_empty_value(void **state) {
    (void)state;
    api_form form;
    char err[128];
    assert_true(parse("preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n"
                      "\r\n--XyZ--",
                      &form, err));
    assert_int_equal(form.n, 1);
    assert_string_equal(form.parts[0].name, "a");
    assert_int_equal(form.parts[0].len, 0);
}

static void test_multipart_rejects_broken_bodies(void **state) {
    (void)state;
    static const char *const bad[] = {
        "",
        "no boundary at all",
        "--XyZ",                                                        /* ends at once */
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx", /* no closing */
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n",      /* headers never end */
        "--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--",        /* no disposition */
        "--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--", /* no name */
        "--XyZ\r\nbroken header line\r\n\r\nx\r\n--XyZ--",
        "--XyZgarbage",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        api_form form;
        char err[128] = "";
        assert_false(parse(bad[i], &form, err));
        assert_true(err[0] != '\0');
    }
}

static void test_multipart_limits(void **state) {
    (void)state;
    char *body = malloc(70 * 80 + 64);
    assert_non_null(body);
    size_t n = 0;
    for (int i = 0; i < API_FORM_MAX_PARTS + 1; i++)
        n += (size_t)sprintf(
            body + n, "--XyZ\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nv\r\n", i);
    n += (size_t)sprintf(body + n, "--XyZ--\r\n");
    api_form form;
    char err[128];
    assert_false(mp_parse(body, n, "XyZ", &form, err, sizeof err));
    assert_non_null(strstr(err, "too many"));
    free(body);

    char longname[400];
    snprintf(longname, sizeof longname,
             "--XyZ\r\nContent-Disposition: form-data; name=\"%0100d\"\r\n\r\nv\r\n--XyZ--", 0);
    assert_false(parse(longname, &form, err));
}

static void test_multipart_boundary(void **state) {
    (void)state;
    char b[MP_MAX_BOUNDARY + 1];
    assert_true(mp_boundary("multipart/form-data; boundary=abc123", b, sizeof b));
    assert_string_equal(b, "abc123");
    assert_true(mp_boundary("multipart/form-data; charset=x; boundary=\"a b:c\"", b, sizeof b));
    assert_string_equal(b, "a b:c");
    assert_true(mp_boundary("multipart/form-data;boundary=--x--;foo=bar", b, sizeof b));
    assert_string_equal(b, "--x--");
    assert_false(mp_boundary("multipart/form-data", b, sizeof b));
    assert_false(mp_boundary("multipart/form-data; boundary=", b, sizeof b));
    assert_false(mp_boundary("multipart/form-data; boundary=\"unterminated", b, sizeof b));
    assert_false(mp_boundary("multipart/form-data; xboundary=abc", b, sizeof b));
    char huge[200];
    snprintf(huge, sizeof huge, "multipart/form-data; boundary=%080d", 1);
    assert_false(mp_boundary(huge, b, sizeof b));
}

/* Every prefix of a valid body must be rejected or parsed without reading past its end (ASan
 * checks the reads: each prefix is copied into a buffer of exactly its size). */
static void test_multipart_every_truncation(void **state) {
    (void)state;
    const char *body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a\"\r\n"
                       "Content-Type: audio/wav\r\n\r\nDATA\r\n--XyZ\r\n"
                       "Content-Disposition: form-data; name=\"m\"\r\n\r\nv\r\n--XyZ--\r\n";
    size_t len = strlen(body);
    for (size_t n = 0; n <= len; n++) {
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, body, n);
        api_form form;
        char err[128];
        bool ok = mp_parse(copy, n, "XyZ", &form, err, sizeof err);
        if (n >= len - 2)
            assert_true(ok);
        else
            assert_false(ok);
        free(copy);
    }
}

/* ---- router ---- */

static void test_router(void **state) {
    (void)state;
    const route *r;
    const char *param;
    char allow[64];
    assert_int_equal(router_find("GET", "/health", &r, &param, allow, sizeof allow), ROUTE_FOUND);
    assert_ptr_equal(r->handler, api_health);
    assert_false(router_path_needs_auth(r->path));
    assert_int_equal(router_find("HEAD", "/v1/models", &r, &param, allow, sizeof allow),
                     ROUTE_FOUND);
    assert_ptr_equal(r->handler, api_models_list);
    assert_true(router_path_needs_auth(r->path));
    assert_int_equal(
        router_find("GET", "/v1/models/Qwen/Repo/file.gguf", &r, &param, allow, sizeof allow),
        ROUTE_FOUND);
    assert_ptr_equal(r->handler, api_models_get);
    assert_string_equal(param, "Qwen/Repo/file.gguf");
    assert_int_equal(router_find("POST", "/v1/models/download", &r, &param, allow, sizeof allow),
                     ROUTE_FOUND);
    assert_ptr_equal(r->handler, api_models_download);
    assert_int_equal(router_find("GET", "/v1/chat/completions", &r, &param, allow, sizeof allow),
                     ROUTE_BAD_METHOD);
    assert_string_equal(allow, "POST, OPTIONS");
    assert_int_equal(router_find("GET", "/v1/nothing", &r, &param, allow, sizeof allow),
                     ROUTE_NOT_FOUND);
    assert_int_equal(router_find("GET", "/v1/models/", &r, &param, allow, sizeof allow),
                     ROUTE_NOT_FOUND);
    assert_int_equal(router_find("POST", "/v1/embeddings", &r, &param, allow, sizeof allow),
                     ROUTE_FOUND);
}

/* ---- settings ---- */

static const char *fake_env(const char *name) {
    if (strcmp(name, "FLUID_PORT") == 0) return "4000";
    if (strcmp(name, "FLUID_API_KEY") == 0) return "from-env";
    if (strcmp(name, "FLUID_NO_WARM_UP") == 0) return "true";
    if (strcmp(name, "FLUID_MAX_MEMORY") == 0) return "2.5";
    return NULL;
}

static fs_config_result parse_args(fs_config *cfg, const char *(*env)(const char *), ...) {
    char *argv[32] = {"fluid-server"};
    int argc = 1;
    va_list ap;
    va_start(ap, env);
    for (char *a; argc < 31 && (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
    va_end(ap);
    fs_config_defaults(cfg);
    FILE *sink = fopen("/dev/null", "w");
    fs_config_result r = fs_config_parse(cfg, argc, argv, env, sink, sink);
    fclose(sink);
    return r;
}

static void test_config_defaults_env_and_flags(void **state) {
    (void)state;
    fs_config cfg;
    assert_int_equal(parse_args(&cfg, NULL, NULL), FS_CONFIG_RUN);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.port, 3847);
    assert_int_equal(cfg.max_body_mb, 25);
    assert_string_equal(cfg.cors_origin, "*");
    assert_false(cfg.no_warm_up);
    /* every default of the option table (it also prints them in --help) */
    assert_string_equal(cfg.api_key, "");
    assert_int_equal(cfg.max_connections, 64);
    assert_int_equal(cfg.client_timeout_s, 60);
    assert_int_equal(cfg.shutdown_timeout_s, 30);
    assert_int_equal(cfg.keepalive_s, 10);
    assert_string_equal(cfg.model_path, "./models");
    assert_string_equal(cfg.device, "auto");
    assert_true(cfg.idle_timeout_min == 5 && cfg.idle_check_interval_s == 60);
    assert_true(cfg.max_memory_gb == 0);
    assert_int_equal(cfg.max_models_per_type, 1);
    assert_int_equal(cfg.threads, 0);
    assert_int_equal(cfg.queue_size, 8);
    assert_int_equal(cfg.ctx_size, 0);
    assert_int_equal(cfg.max_tokens_limit, 4096);
    assert_int_equal(cfg.max_messages, 1024);
    assert_int_equal(cfg.max_input_kb, 1024);
    assert_true(cfg.max_audio_seconds == 1800);
    assert_string_equal(cfg.log_level, "info");
    char *help = NULL;
    size_t help_len = 0;
    FILE *mem = open_memstream(&help, &help_len);
    assert_non_null(mem);
    fs_config_print_help(mem);
    fclose(mem);
    assert_non_null(strstr(help, "0 picks a free port and prints it (3847) [FLUID_PORT]\n"));
    free(help);

    assert_int_equal(parse_args(&cfg, fake_env, NULL), FS_CONFIG_RUN);
    assert_int_equal(cfg.port, 4000);
    assert_string_equal(cfg.api_key, "from-env");
    assert_true(cfg.no_warm_up);
    assert_true(cfg.max_memory_gb == 2.5);

    /* A flag wins over its variable; both --flag value and --flag=value work. */
    assert_int_equal(parse_args(&cfg, fake_env, "--port", "5000", "--api-key=flag", "--log-level",
                                "DEBUG", "--idle-check-interval", "0.5", NULL),
                     FS_CONFIG_RUN);
    assert_int_equal(cfg.port, 5000);
    assert_string_equal(cfg.api_key, "flag");
    assert_true(cfg.idle_check_interval_s == 0.5);
}

static void test_config_rejects_bad_values(void **state) {
    (void)state;
    fs_config cfg;
    assert_int_equal(parse_args(&cfg, NULL, "--port", "abc", NULL), FS_CONFIG_ERROR);
    assert_int_equal(parse_args(&cfg, NULL, "--port", "65536", NULL), FS_CONFIG_ERROR);
    assert_int_equal(parse_args(&cfg, NULL, "--port", NULL), FS_CONFIG_ERROR);
    assert_int_equal(parse_args(&cfg, NULL, "--max-body-mb", "0", NULL), FS_CONFIG_ERROR);
    assert_int_equal(parse_args(&cfg, NULL, "--max-memory", "nan", NULL), FS_CONFIG_ERROR);
    assert_int_equal(parse_args(&cfg, NULL, "--log-level", "loud", NULL), FS_CONFIG_ERROR);
    assert_int_equal(parse_args(&cfg, NULL, "--device", "tpu", NULL), FS_CONFIG_ERROR);
    assert_int_equal(parse_args(&cfg, NULL, "--no-warm-up=maybe", NULL), FS_CONFIG_ERROR);
    assert_int_equal(parse_args(&cfg, NULL, "--unknown", NULL), FS_CONFIG_ERROR);
    assert_int_equal(parse_args(&cfg, NULL, "stray", NULL), FS_CONFIG_ERROR);
    assert_int_equal(parse_args(&cfg, NULL, "--help", NULL), FS_CONFIG_EXIT);
    assert_int_equal(parse_args(&cfg, NULL, "--version", NULL), FS_CONFIG_EXIT);
}

/* ---- API key and CORS ---- */

static void test_auth(void **state) {
    (void)state;
    assert_true(http_auth_ok(NULL, ""));
    assert_true(http_auth_ok("Bearer anything", NULL));
    assert_true(http_auth_ok("Bearer sekret", "sekret"));
    assert_true(http_auth_ok("bearer  sekret ", "sekret"));
    assert_false(http_auth_ok(NULL, "sekret"));
    assert_false(http_auth_ok("sekret", "sekret"));
    assert_false(http_auth_ok("Bearer sekre", "sekret"));
    assert_false(http_auth_ok("Bearer sekret2", "sekret"));
    assert_false(http_auth_ok("Bearer ", "sekret"));
    assert_false(http_auth_ok("Basic c2VrcmV0", "sekret"));
}

static void test_cors(void **state) {
    (void)state;
    assert_string_equal(http_cors_allow("*", NULL), "*");
    assert_string_equal(http_cors_allow("*", "http://x"), "*");
    const char *list = "http://a.test, http://b.test:8080";
    assert_string_equal(http_cors_allow(list, "http://b.test:8080"), "http://b.test:8080");
    assert_string_equal(http_cors_allow(list, "http://a.test"), "http://a.test");
    assert_null(http_cors_allow(list, "http://a.tes"));
    assert_null(http_cors_allow(list, "http://evil.test"));
    assert_null(http_cors_allow(list, NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipart_fields_and_file),
        cmocka_unit_test(test_multipart_preamble_and_empty_value),
        cmocka_unit_test(test_multipart_rejects_broken_bodies),
        cmocka_unit_test(test_multipart_limits),
        cmocka_unit_test(test_multipart_boundary),
        cmocka_unit_test(test_multipart_every_truncation),
        cmocka_unit_test(test_router),
        cmocka_unit_test(test_config_defaults_env_and_flags),
        cmocka_unit_test(test_config_rejects_bad_values),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_cors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

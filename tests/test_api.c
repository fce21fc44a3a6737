/* The API layer without sockets: every handler is called with a built request and its response
 * checked. Validation errors must name the parameter; no runtime call is needed for those. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/audio.h"
#include "runtime/runtime.h"
#include "server/router.h"
#include "support/rt_config.h"

typedef struct fixture {
    rt_manager *rt;
    api_ctx ctx;
    char dir[64];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/fluid-test-api-XXXXXX");
    if (mkdtemp(f->dir) == NULL) return -1;
    rt_config rc;
    test_rt_config(&rc, f->dir);
    rc.auto_download = false;
    rt_error err;
    f->rt = rt_create(&rc, &err);
    if (f->rt == NULL) return -1;
    f->ctx = (api_ctx){.rt = f->rt, .version = "test", .keepalive_ms = 200};
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    rt_destroy(f->rt);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) return -1;
    free(f);
    return 0;
}

/* Calls handler with a JSON body; returns the parsed response body (NULL if not JSON). */
static json_t *call(fixture *f, api_handler handler, const char *content_type, const char *body,
                    api_response *res) {
    api_request req = {.method = "POST",
                       .path = "/test",
                       .route_param = "",
                       .content_type = content_type,
                       .body = body,
                       .body_len = strlen(body),
                       .request_id = "req_test"};
    memset(res, 0, sizeof *res);
    handler(&f->ctx, &req, res);
    return res->body ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
}

/* Asserts the response is an OpenAI error with this status and param (NULL = null). */
static void expect_error(fixture *f, api_handler handler, const char *body, int status,
                         const char *param) {
    api_response res;
    json_t *doc = call(f, handler, "application/json", body, &res);
    if (res.status != status)
        fail_msg("body %s: status %d, want %d (%s)", body, res.status, status, res.body);
    json_t *err = json_object_get(doc, "error");
    assert_non_null(err);
    assert_true(json_is_string(json_object_get(err, "message")));
    assert_true(json_is_string(json_object_get(err, "type")));
    json_t *p = json_object_get(err, "param");
    if (param == NULL)
        assert_true(json_is_null(p));
    else if (!json_is_string(p) || strcmp(json_string_value(p), param) != 0)
        fail_msg("body %s: param %s, want %s", body, json_string_value(p), param);
    assert_non_null(json_object_get(err, "code"));
    json_decref(doc);
    api_response_free(&res);
}

#define MSG "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static void test_chat_validation(void **state) {
    fixture *f = *state;
    api_handler h = api_chat_completions;
    expect_error(f, h, "", 400, NULL);
    expect_error(f, h, "{", 400, NULL);
    expect_error(f, h, "[1]", 400, NULL);
    expect_error(f, h, "{\"a\":1,\"a\":2}", 400, NULL);
    expect_error(f, h, "{}", 400, "messages");
    expect_error(f, h, "{\"messages\":[]}", 400, "messages");
    expect_error(f, h, "{\"messages\":\"hi\"}", 400, "messages");
    expect_error(f, h, "{\"messages\":[1]}", 400, "messages[0]");
    expect_error(f, h, "{\"messages\":[{\"content\":\"x\"}]}", 400, "messages[0].role");
    expect_error(f, h, "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}", 400,
                 "messages[0].role");
    expect_error(f, h, "{\"messages\":[{\"role\":\"user\"}]}", 400, "messages[0].content");
    expect_error(f, h, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400,
                 "messages[0].content");
    expect_error(f, h,
                 "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                 "\"image_url\":{\"url\":\"x\"}}]}]}",
                 400, "messages[0].content[0]");
    /* The JSON reader refuses \u0000 itself. */
    expect_error(f, h, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]}", 400, NULL);
    expect_error(f, h, "{" MSG ",\"temperature\":2.5}", 400, "temperature");
    expect_error(f, h, "{" MSG ",\"temperature\":\"hot\"}", 400, "temperature");
    expect_error(f, h, "{" MSG ",\"top_p\":-0.1}", 400, "top_p");
    expect_error(f, h, "{" MSG ",\"presence_penalty\":3}", 400, "presence_penalty");
    expect_error(f, h, "{" MSG ",\"frequency_penalty\":-3}", 400, "frequency_penalty");
    expect_error(f, h, "{" MSG ",\"n\":2}", 400, "n");
    expect_error(f, h, "{" MSG ",\"n\":0}", 400, "n");
    expect_error(f, h, "{" MSG ",\"max_tokens\":0}", 400, "max_tokens");
    expect_error(f, h, "{" MSG ",\"max_tokens\":1.5}", 400, "max_tokens");
    expect_error(f, h, "{" MSG ",\"max_tokens\":99999999}", 400, "max_tokens");
    expect_error(f, h, "{" MSG ",\"max_completion_tokens\":-1}", 400, "max_completion_tokens");
    expect_error(f, h, "{" MSG ",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", 400, "stop");
    expect_error(f, h, "{" MSG ",\"stop\":5}", 400, "stop");
    expect_error(f, h, "{" MSG ",\"stop\":[\"\"]}", 400, "stop");
    expect_error(f, h, "{" MSG ",\"logit_bias\":{\"abc\":1}}", 400, "logit_bias");
    expect_error(f, h, "{" MSG ",\"logit_bias\":{\"5\":101}}", 400, "logit_bias");
    expect_error(f, h, "{" MSG ",\"logit_bias\":[1]}", 400, "logit_bias");
    expect_error(f, h, "{" MSG ",\"top_logprobs\":3}", 400, "top_logprobs");
    expect_error(f, h, "{" MSG ",\"logprobs\":true,\"top_logprobs\":21}", 400, "top_logprobs");
    expect_error(f, h, "{" MSG ",\"logprobs\":1}", 400, "logprobs");
    expect_error(f, h, "{" MSG ",\"stream\":\"yes\"}", 400, "stream");
    expect_error(f, h, "{" MSG ",\"stream_options\":{\"include_usage\":true}}", 400,
                 "stream_options");
    expect_error(f, h, "{" MSG ",\"seed\":\"x\"}", 400, "seed");
    expect_error(f, h, "{" MSG ",\"model\":7}", 400, "model");
    expect_error(f, h, "{" MSG ",\"tools\":[{\"type\":\"function\"}]}", 400, "tools");
    expect_error(f, h, "{" MSG ",\"response_format\":{\"type\":\"json_object\"}}", 400,
                 "response_format");
}

static void test_chat_wrong_content_type(void **state) {
    fixture *f = *state;
    api_response res;
    json_t *doc = call(f, api_chat_completions, "text/plain", "{" MSG "}", &res);
    assert_int_equal(res.status, 415);
    json_decref(doc);
    api_response_free(&res);
}

/* A valid request reaches the runtime, which knows no such model: 404 model_not_found. */
static void test_chat_unknown_model(void **state) {
    fixture *f = *state;
    api_response res;
    json_t *doc = call(f, api_chat_completions, "application/json",
                       "{\"model\":\"no-such-model\"," MSG ",\"temperature\":0,\"top_p\":1,"
                       "\"stop\":[\"x\"],\"logit_bias\":{\"1\":-100},\"seed\":3,\"user\":\"u\","
                       "\"max_tokens\":4,\"n\":1}",
                       &res);
    assert_true(res.status == 404 || res.status == 500); /* 500 only while the runtime is a stub */
    assert_non_null(json_object_get(doc, "error"));
    json_decref(doc);
    api_response_free(&res);
}

static void test_completions_validation(void **state) {
    fixture *f = *state;
    api_handler h = api_completions;
    expect_error(f, h, "{}", 400, "prompt");
    expect_error(f, h, "{\"prompt\":5}", 400, "prompt");
    expect_error(f, h, "{\"prompt\":[1,2,3]}", 400, "prompt");
    expect_error(f, h, "{\"prompt\":[\"a\",\"b\"]}", 400, "prompt");
    expect_error(f, h, "{\"prompt\":\"a\",\"suffix\":\"b\"}", 400, "suffix");
    expect_error(f, h, "{\"prompt\":\"a\",\"logprobs\":6}", 400, "logprobs");
    expect_error(f, h, "{\"prompt\":\"a\",\"best_of\":2}", 400, "best_of");
    expect_error(f, h, "{\"prompt\":\"a\",\"echo\":\"yes\"}", 400, "echo");
    expect_error(f, h, "{\"prompt\":\"a\",\"temperature\":-1}", 400, "temperature");
}

/* ---- audio ---- */

static json_t *call_form(fixture *f, api_handler h, const api_form *form, api_response *res) {
    api_request req = {.method = "POST",
                       .path = "/v1/audio/transcriptions",
                       .route_param = "",
                       .content_type = "multipart/form-data",
                       .body = "",
                       .form = form};
    memset(res, 0, sizeof *res);
    h(&f->ctx, &req, res);
    return res->body ? json_loadb(res->body, res->body_len, 0, NULL) : NULL;
}

static void add_part(api_form *form, const char *name, const char *value) {
    api_form_part *p = &form->parts[form->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->data = value;
    p->len = strlen(value);
}

static void expect_audio_error(fixture *f, api_handler h, const api_form *form, int status,
                               const char *param) {
    api_response res;
    json_t *doc = call_form(f, h, form, &res);
    assert_int_equal(res.status, status);
    json_t *p = json_object_get(json_object_get(doc, "error"), "param");
    if (param != NULL) assert_string_equal(json_string_value(p), param);
    json_decref(doc);
    api_response_free(&res);
}

/* An upload the audio routes refuse with 400: its form parts (unused slots NULL) and the
 * parameter the error names. */
typedef struct {
    api_handler handler;
    const char *parts[3][2]; /* name, value */
    const char *param;
} bad_upload;

#define WAV_PART                                                                                   \
    { "file", "RIFF...." }
static const bad_upload bad_uploads[] = {
    {api_audio_transcriptions, {{NULL}}, "file"},
    {api_audio_transcriptions, {{"file", ""}}, "file"},
    {api_audio_transcriptions, {WAV_PART, {"response_format", "xml"}}, "response_format"},
    {api_audio_transcriptions, {WAV_PART, {"temperature", "1.5"}}, "temperature"},
    {api_audio_transcriptions,
     {WAV_PART, {"timestamp_granularities[]", "word"}},
     "timestamp_granularities"},
    {api_audio_transcriptions,
     {WAV_PART, {"response_format", "verbose_json"}, {"timestamp_granularities[]", "letter"}},
     "timestamp_granularities"},
    {api_audio_transcriptions,
     {WAV_PART, {"response_format", "srt"}, {"stream", "true"}},
     "stream"},
    {api_audio_transcriptions, {WAV_PART, {"stream", "perhaps"}}, "stream"},
    {api_audio_transcriptions, {WAV_PART, {"language", "e n"}}, "language"},
    {api_audio_translations, {WAV_PART, {"stream", "true"}}, "stream"},
};

static void test_audio_validation(void **state) {
    fixture *f = *state;
    api_response res;
    json_t *doc = call(f, api_audio_transcriptions, "application/json", "{}", &res);
    assert_int_equal(res.status, 415);
    json_decref(doc);
    api_response_free(&res);

    for (size_t i = 0; i < sizeof bad_uploads / sizeof bad_uploads[0]; i++) {
        const bad_upload *b = &bad_uploads[i];
        api_form form = {0};
        for (size_t k = 0; k < 3 && b->parts[k][0] != NULL; k++)
            add_part(&form, b->parts[k][0], b->parts[k][1]);
        expect_audio_error(f, b->handler, &form, 400, b->param);
    }
}

static void test_subtitles(void **state) {
    (void)state;
    char t[32];
    api_subtitle_time(0, ',', t, sizeof t);
    assert_string_equal(t, "00:00:00,000");
    api_subtitle_time(3725.4567, '.', t, sizeof t);
    assert_string_equal(t, "01:02:05.457");
    api_subtitle_time(-3, ',', t, sizeof t);
    assert_string_equal(t, "00:00:00,000");
    json_t *segs =
        json_pack("[{s:f, s:f, s:s}, {s:f, s:f, s:s}]", "start", 0.0, "end", 2.5, "text",
                  " Hello there. ", "start", 2.5, "end", 61.0, "text", " General Kenobi!");
    fl_buf b = {0};
    assert_true(api_subtitles(segs, false, &b));
    assert_string_equal(b.data, "1\n00:00:00,000 --> 00:00:02,500\nHello there.\n\n"
                                "2\n00:00:02,500 --> 00:01:01,000\nGeneral Kenobi!\n\n");
    fl_buf_free(&b);
    assert_true(api_subtitles(segs, true, &b));
    assert_string_equal(b.data, "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello there.\n\n"
                                "00:00:02.500 --> 00:01:01.000\nGeneral Kenobi!\n\n");
    fl_buf_free(&b);
    json_decref(segs);
}

/* ---- the other routes ---- */

static void test_error_shape_and_types(void **state) {
    (void)state;
    api_response res = {0};
    api_error(&res, 429, "model", "busy", "bad byte \xff here");
    json_t *doc = json_loadb(res.body, res.body_len, 0, NULL);
    assert_non_null(doc);
    json_t *err = json_object_get(doc, "error");
    assert_string_equal(json_string_value(json_object_get(err, "type")), "rate_limit_error");
    assert_string_equal(json_string_value(json_object_get(err, "param")), "model");
    assert_string_equal(json_string_value(json_object_get(err, "code")), "busy");
    assert_non_null(strstr(json_string_value(json_object_get(err, "message")), "\xEF\xBF\xBD"));
    json_decref(doc);
    api_response_free(&res);
    assert_string_equal(api_error_type(400), "invalid_request_error");
    assert_string_equal(api_error_type(401), "authentication_error");
    assert_string_equal(api_error_type(500), "server_error");
}

static void test_embeddings_and_model_names(void **state) {
    fixture *f = *state;
    expect_error(f, api_embeddings, "{\"input\":\"x\",\"model\":\"m\"}", 404, "model");
    api_request req = {.method = "GET", .path = "/v1/models/x", .content_type = "", .body = ""};
    static const char *const bad[] = {"../etc/passwd", "a/../../b", "..", "/abs", "a\\b", "a\nb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        api_response res = {0};
        req.route_param = bad[i];
        api_models_get(&f->ctx, &req, &res);
        assert_int_equal(res.status, 404);
        api_response_free(&res);
    }
    expect_error(f, api_models_download, "{}", 400, "model");
    expect_error(f, api_models_download, "{\"model\":\"../../x\"}", 400, "model");
}

/* The value a local "$ref" ("#/a/b") points to in doc, or NULL. */
static json_t *resolve_ref(json_t *doc, const char *ref) {
    if (strncmp(ref, "#/", 2) != 0) return NULL;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", ref + 2);
    json_t *at = doc;
    for (char *save = NULL, *key = strtok_r(buf, "/", &save); key && at;
         key = strtok_r(NULL, "/", &save))
        at = json_object_get(at, key);
    return at;
}

/* Every "$ref" under node resolves in doc. */
static void expect_refs_resolve(json_t *doc, json_t *node) {
    const char *key;
    json_t *value;
    size_t i;
    if (json_is_object(node)) {
        json_object_foreach(node, key, value) {
            if (strcmp(key, "$ref") == 0 && resolve_ref(doc, json_string_value(value)) == NULL)
                fail_msg("openapi: $ref %s does not resolve", json_string_value(value));
            expect_refs_resolve(doc, value);
        }
    } else if (json_is_array(node)) {
        json_array_foreach(node, i, value) expect_refs_resolve(doc, value);
    }
}

/* The operation documenting route r: its path (a prefix route's path + "{param}") and method. */
static json_t *documented_operation(json_t *paths, const route *r) {
    const char *key;
    json_t *item = NULL, *value;
    json_object_foreach(paths, key, value) {
        size_t n = strlen(r->path);
        bool match =
            r->prefix ? strncmp(key, r->path, n) == 0 && key[n] == '{' : strcmp(key, r->path) == 0;
        if (match) item = value;
    }
    char method[16];
    size_t i = 0;
    for (; r->method[i] != '\0' && i + 1 < sizeof method; i++)
        method[i] = (char)(r->method[i] - 'A' + 'a');
    method[i] = '\0';
    return json_object_get(item, method);
}

/* /openapi.json is OpenAPI 3.x, documents every route of the router with its responses, and its
 * references resolve: a route added without documentation fails here. */
static void expect_openapi_document(json_t *doc) {
    const char *version = json_string_value(json_object_get(doc, "openapi"));
    assert_non_null(version);
    assert_true(strncmp(version, "3.", 2) == 0);
    json_t *paths = json_object_get(doc, "paths");
    size_t n = 0;
    const route *routes = router_routes(&n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++) {
        json_t *op = documented_operation(paths, &routes[i]);
        if (!json_is_object(json_object_get(op, "responses")))
            fail_msg("openapi lacks %s %s", routes[i].method, routes[i].path);
    }
    expect_refs_resolve(doc, doc);
}

static void test_health_root_openapi(void **state) {
    fixture *f = *state;
    api_response res;
    json_t *doc = call(f, api_health, "", "", &res);
    assert_int_equal(res.status, 200);
    const char *status = json_string_value(json_object_get(doc, "status"));
    assert_true(strcmp(status, "starting") == 0 || strcmp(status, "ready") == 0 ||
                strcmp(status, "degraded") == 0);
    assert_non_null(json_object_get(json_object_get(doc, "runtimes"), "llm"));
    assert_non_null(json_object_get(json_object_get(doc, "runtimes"), "whisper"));
    assert_true(json_is_number(json_object_get(doc, "uptime_s")));
    assert_true(json_integer_value(
                    json_object_get(json_object_get(doc, "memory"), "process_rss_bytes")) > 0);
    json_decref(doc);
    api_response_free(&res);

    doc = call(f, api_models_list, "", "", &res);
    assert_int_equal(res.status, 200);
    assert_string_equal(json_string_value(json_object_get(doc, "object")), "list");
    assert_true(json_is_array(json_object_get(doc, "data")));
    json_decref(doc);
    api_response_free(&res);

    doc = call(f, api_openapi_json, "", "", &res);
    assert_int_equal(res.status, 200);
    expect_openapi_document(doc);
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "info"), "version")),
                        "test");
    json_decref(doc);
    api_response_free(&res);

    memset(&res, 0, sizeof res);
    api_request req = {.method = "GET", .path = "/docs", .content_type = "", .body = ""};
    api_docs(&f->ctx, &req, &res);
    assert_int_equal(res.status, 200);
    assert_non_null(strstr(res.body, "/openapi.json"));
    assert_null(strstr(res.body, "https://"));
    assert_null(strstr(res.body, "http://"));
    api_response_free(&res);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_validation),
        cmocka_unit_test(test_chat_wrong_content_type),
        cmocka_unit_test(test_chat_unknown_model),
        cmocka_unit_test(test_completions_validation),
        cmocka_unit_test(test_audio_validation),
        cmocka_unit_test(test_subtitles),
        cmocka_unit_test(test_error_shape_and_types),
        cmocka_unit_test(test_embeddings_and_model_names),
        cmocka_unit_test(test_health_root_openapi),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

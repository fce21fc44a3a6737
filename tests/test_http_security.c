/* Hostile requests against the real HTTP server (in this process, on 127.0.0.1 with a port the
 * kernel picks) and a real model manager on a temporary folder:
 *   - with an API key set, every /v1 route of the router table (and unknown /v1 paths, wrong
 *     methods, HEAD) refuses a missing or wrong key with 401 in OpenAI's shape; the rest is open;
 *   - model names that try to leave the model folder (.., absolute paths, backslashes, control
 *     characters, encoded forms, overlong names) get a clean 4xx on every route that takes one,
 *     and no file outside the model folder is touched;
 *   - symbolic links: a link to a file inside the model folder is followed, one leading outside
 *     is ignored, and a download never writes through a link (a linked folder or .part). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "runtime/runtime.h"
#include "server/http.h"
#include "server/router.h"
#include "support/fake_hub.h"
#include "support/rt_config.h"
#include "util/buf.h"

#define KEY "sekret-key-1234"

typedef struct fixture {
    char *root; /* models/ and outside/ */
    char models[512], outside[512];
    fake_hub hub;
    rt_manager *rt;
    api_ctx ctx;
    http_server *http;
    char base[64];
    CURL *curl;
} fixture;

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void join(char *out, size_t size, const char *dir, const char *rel) {
    snprintf(out, size, "%s/%s", dir, rel);
}

/* models/llm: real.gguf, link-in.gguf -> real.gguf, link-out.gguf -> outside/secret.gguf,
 * evil -> outside/ (a folder link); models/whisper/ggml-out.bin -> outside/ggml-secret.bin. */
static void make_tree(fixture *f) {
    char a[1024], b[1024];
    join(f->models, sizeof f->models, f->root, "models");
    join(f->outside, sizeof f->outside, f->root, "outside");
    const char *dirs[] = {"models", "models/llm", "models/whisper", "outside"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        join(a, sizeof a, f->root, dirs[i]);
        assert_int_equal(mkdir(a, 0755), 0);
    }
    join(a, sizeof a, f->outside, "secret.gguf");
    write_file(a, "SECRET");
    join(a, sizeof a, f->outside, "ggml-secret.bin");
    write_file(a, "SECRET");
    join(a, sizeof a, f->models, "llm/real.gguf");
    write_file(a, "GGUF");
    join(a, sizeof a, f->models, "llm/link-in.gguf");
    assert_int_equal(symlink("real.gguf", a), 0);
    join(a, sizeof a, f->models, "llm/link-out.gguf");
    join(b, sizeof b, f->outside, "secret.gguf");
    assert_int_equal(symlink(b, a), 0);
    join(a, sizeof a, f->models, "llm/evil");
    assert_int_equal(symlink(f->outside, a), 0);
    join(a, sizeof a, f->models, "whisper/ggml-out.bin");
    join(b, sizeof b, f->outside, "ggml-secret.bin");
    assert_int_equal(symlink(b, a), 0);
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->root = fake_hub_temp_dir();
    assert_non_null(f->root);
    make_tree(f);
    if (!fake_hub_start(&f->hub)) {
        fake_hub_rmtree(f->root);
        free(f->root);
        free(f);
        return -1;
    }
    rt_config rc;
    test_rt_config(&rc, f->models);
    rc.hf_endpoint = f->hub.url;
    rc.hf_token = "";
    rc.download_retries = 0;
    rc.load_wait_s = 10;
    rt_error err = {0};
    f->rt = rt_create(&rc, &err);
    if (f->rt == NULL) fail_msg("rt_create: %s", err.message);
    assert_int_equal(rt_start(f->rt, &err), RT_OK);
    f->ctx = (api_ctx){.rt = f->rt, .version = "test", .auth_required = true, .keepalive_ms = 200};
    http_options opts = {.host = "127.0.0.1",
                         .port = 0,
                         .api_key = KEY,
                         .cors_origin = "*",
                         .max_body_bytes = 1 << 20,
                         .max_connections = 16,
                         .connection_timeout_s = 30};
    fluid_error herr = {0};
    f->http = http_start(&opts, &f->ctx, &herr);
    if (f->http == NULL) fail_msg("http_start: %s", herr.message);
    snprintf(f->base, sizeof f->base, "http://127.0.0.1:%d", http_port(f->http));
    f->curl = curl_easy_init();
    assert_non_null(f->curl);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    curl_easy_cleanup(f->curl);
    http_stop(f->http);
    rt_destroy(f->rt);
    fake_hub_stop(&f->hub);
    fake_hub_rmtree(f->root);
    free(f->root);
    free(f);
    return 0;
}

/* ---- a small HTTP client ---- */

typedef struct reply {
    long status;
    fl_buf body;
} reply;

static size_t on_data(char *data, size_t size, size_t n, void *user) {
    return fl_buf_append(user, data, size * n) ? size * n : 0;
}

/* Sends method path (as is: no dot-segment clean-up) with an optional Authorization value and
 * body of the given type; a NULL type with a non-NULL body means multipart form (mime). */
static reply send_req(fixture *f, const char *method, const char *path, const char *auth,
                      const char *type, const char *body, curl_mime *form) {
    reply r = {0};
    char url[4096], header_auth[256], header_type[128];
    snprintf(url, sizeof url, "%s%s", f->base, path);
    struct curl_slist *headers = NULL;
    if (auth != NULL) {
        snprintf(header_auth, sizeof header_auth, "Authorization: %s", auth);
        headers = curl_slist_append(headers, header_auth);
    }
    if (type != NULL) {
        snprintf(header_type, sizeof header_type, "Content-Type: %s", type);
        headers = curl_slist_append(headers, header_type);
    }
    CURL *c = f->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (form != NULL)
        curl_easy_setopt(c, CURLOPT_MIMEPOST, form);
    else if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) fail_msg("%s %s: %s", method, path, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    fl_buf_append(&r.body, "", 0);
    curl_slist_free_all(headers);
    return r;
}

/* The reply is an OpenAI error object (with this code unless code is NULL). */
static void expect_openai_error(const reply *r, const char *what, const char *code) {
    json_t *doc = json_loads(r->body.data ? r->body.data : "", 0, NULL);
    json_t *err = json_object_get(doc, "error");
    if (!json_is_string(json_object_get(err, "message")) ||
        !json_is_string(json_object_get(err, "type")) || json_object_get(err, "param") == NULL ||
        json_object_get(err, "code") == NULL)
        fail_msg("%s: not an OpenAI error: %s", what, r->body.data);
    if (code != NULL && !json_is_string(json_object_get(err, "code")))
        fail_msg("%s: code is not a string: %s", what, r->body.data);
    if (code != NULL && strcmp(json_string_value(json_object_get(err, "code")), code) != 0)
        fail_msg("%s: code %s, want %s", what, json_string_value(json_object_get(err, "code")),
                 code);
    json_decref(doc);
}

/* ---- API key on every /v1 route ---- */

/* A request path for a route: prefix routes get a parameter. */
static void route_path(const route *r, char *out, size_t size) {
    snprintf(out, size, "%s%s", r->path, r->prefix ? "some-model" : "");
}

static void expect_refused(fixture *f, const char *method, const char *path, const char *auth) {
    bool post = strcmp(method, "POST") == 0;
    reply r =
        send_req(f, method, path, auth, post ? "application/json" : NULL, post ? "{}" : NULL, NULL);
    char what[512];
    snprintf(what, sizeof what, "%s %s with %s", method, path, auth ? auth : "no key");
    if (r.status != 401) fail_msg("%s: status %ld, want 401", what, r.status);
    if (strcmp(method, "HEAD") != 0) expect_openai_error(&r, what, "invalid_api_key");
    fl_buf_free(&r.body);
}

static void test_every_v1_route_needs_the_key(void **state) {
    fixture *f = *state;
    size_t n = 0;
    const route *routes = router_routes(&n);
    size_t protected_routes = 0;
    for (size_t i = 0; i < n; i++) {
        char path[256];
        route_path(&routes[i], path, sizeof path);
        const char *method = routes[i].method;
        if (!router_path_needs_auth(path)) {
            /* /, /health, /openapi.json, /docs stay open. */
            reply r = send_req(f, method, path, NULL, NULL, NULL, NULL);
            if (r.status != 200) fail_msg("%s %s without a key: %ld", method, path, r.status);
            fl_buf_free(&r.body);
            continue;
        }
        protected_routes++;
        expect_refused(f, method, path, NULL);
        expect_refused(f, method, path, "Bearer wrong-key");
        expect_refused(f, method, path, "Bearer " KEY "x");
        expect_refused(f, method, path, "Basic " KEY);
        expect_refused(f, method, path, KEY);
        if (strcmp(method, "GET") == 0) expect_refused(f, "HEAD", path, NULL);
        bool post = strcmp(method, "POST") == 0;
        reply r = send_req(f, method, path, "Bearer " KEY, post ? "application/json" : NULL,
                           post ? "{}" : NULL, NULL);
        if (r.status == 401) fail_msg("%s %s with the key: 401", method, path);
        fl_buf_free(&r.body);
    }
    assert_true(protected_routes >= 8); /* the table really was walked */
    /* Paths no route serves, and methods a route does not take, answer 401 too: without the
     * key nothing tells which /v1 paths exist. */
    const char *others[][2] = {{"GET", "/v1/nothing"},
                               {"GET", "/v1"},
                               {"POST", "/v1/"},
                               {"DELETE", "/v1/models/x"},
                               {"PUT", "/v1/chat/completions"},
                               {"GET", "/v1/chat/completions"},
                               {"PATCH", "/v1/models"}};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        expect_refused(f, others[i][0], others[i][1], NULL);
    reply r = send_req(f, "GET", "/v1/nothing", "Bearer " KEY, NULL, NULL, NULL);
    assert_int_equal(r.status, 404);
    fl_buf_free(&r.body);
    /* Browsers send the CORS preflight without credentials: it stays open (and runs nothing). */
    r = send_req(f, "OPTIONS", "/v1/chat/completions", NULL, NULL, NULL, NULL);
    assert_int_equal(r.status, 204);
    fl_buf_free(&r.body);
}

/* ---- names that try to leave the model folder ---- */

/* Names a client may send in "model" fields: each must be refused or not found. */
static const char *const hostile_names[] = {
    "../outside/secret",
    "../../outside/secret.gguf",
    "..",
    ".",
    "./real",
    "/etc/passwd",
    "/tmp/x.gguf",
    "a/../../outside/secret",
    "owner/repo/../../../outside/secret.gguf",
    "owner/repo/../../../../outside/x.gguf",
    "owner/../../outside/x.gguf",
    "owner/repo/..",
    "owner//file.gguf",
    "owner/repo/.hidden.gguf",
    "trailing/",
    "..\\..\\outside\\secret",
    "owner\\repo\\file.gguf",
    "%2e%2e%2f%2e%2e%2foutside%2fsecret",
    "..%2F..%2Foutside%2Fsecret.gguf",
    "whisper-../../outside/secret",
    "whisper-/etc/passwd",
    "whisper-..",
    "whisper-.hidden",
    "whisper-a\\b",
    "ctl\x01name",
    "del\x7fname",
    "new\nline",
    "link-out",
    "evil/secret",
    "evil/secret.gguf",
};

/* Paths for GET /v1/models/{id} as a client could write them (URL-encoded forms included). */
static const char *const hostile_paths[] = {
    "/v1/models/..%2F..%2Foutside%2Fsecret",
    "/v1/models/%2e%2e%2f%2e%2e%2foutside%2fsecret",
    "/v1/models/%2Fetc%2Fpasswd",
    "/v1/models//etc/passwd",
    "/v1/models/../../outside/secret",
    "/v1/models/..%5C..%5Coutside%5Csecret",
    "/v1/models/abc%00..%2F..%2Fx",
    "/v1/models/%00",
    "/v1/models/link-out",
    "/v1/models/evil/secret",
    "/v1/models/whisper-..%2F..%2Foutside%2Fsecret",
};

/* A long name: 300 bytes, and a Hub-shaped one whose file part is 250 bytes. */
static void long_names(char one[301], char hub[300]) {
    memset(one, 'a', 300);
    one[300] = '\0';
    snprintf(hub, 300, "owner/repo/%0250d.gguf", 0);
}

static void expect_4xx(const reply *r, const char *what) {
    if (r->status < 400 || r->status > 499)
        fail_msg("%s: status %ld, want 4xx (%s)", what, r->status, r->body.data);
    expect_openai_error(r, what, NULL);
}

/* Sends name as "model" to the JSON routes and the audio route. */
static void send_hostile_name(fixture *f, const char *name) {
    const char *auth = "Bearer " KEY;
    char what[512];
    json_t *chat = json_pack("{s:s, s:[{s:s, s:s}], s:i}", "model", name, "messages", "role",
                             "user", "content", "hi", "max_tokens", 1);
    json_t *completion =
        json_pack("{s:s, s:s, s:i}", "model", name, "prompt", "hi", "max_tokens", 1);
    json_t *download = json_pack("{s:s}", "model", name);
    struct {
        const char *path;
        json_t *doc;
    } json_routes[] = {{"/v1/chat/completions", chat},
                       {"/v1/completions", completion},
                       {"/v1/models/download", download}};
    for (size_t k = 0; k < sizeof json_routes / sizeof json_routes[0]; k++) {
        char *body = json_dumps(json_routes[k].doc, JSON_COMPACT);
        assert_non_null(body);
        reply r = send_req(f, "POST", json_routes[k].path, auth, "application/json", body, NULL);
        snprintf(what, sizeof what, "%s with model '%s'", json_routes[k].path, name);
        expect_4xx(&r, what);
        fl_buf_free(&r.body);
        free(body);
        json_decref(json_routes[k].doc);
    }
    curl_mime *form = curl_mime_init(f->curl);
    curl_mimepart *part = curl_mime_addpart(form);
    curl_mime_name(part, "model");
    curl_mime_data(part, name, CURL_ZERO_TERMINATED);
    part = curl_mime_addpart(form);
    curl_mime_name(part, "file");
    curl_mime_filename(part, "../../outside/pwned.wav");
    curl_mime_data(part, "RIFF....WAVE", CURL_ZERO_TERMINATED);
    reply r = send_req(f, "POST", "/v1/audio/transcriptions", auth, NULL, NULL, form);
    snprintf(what, sizeof what, "transcription with model '%s'", name);
    expect_4xx(&r, what);
    fl_buf_free(&r.body);
    curl_mime_free(form);
}

/* Every entry of dir, sorted, joined with '|' (to see that nothing appeared or vanished). */
static void listing(const char *dir, char *out, size_t size) {
    struct dirent **list = NULL;
    int n = scandir(dir, &list, NULL, alphasort);
    assert_true(n >= 0);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        strncat(out, list[i]->d_name, size - strlen(out) - 1);
        strncat(out, "|", size - strlen(out) - 1);
        free(list[i]);
    }
    free(list);
}

static void test_hostile_names_stay_inside(void **state) {
    fixture *f = *state;
    char outside_before[1024], root_before[1024], after[1024];
    listing(f->outside, outside_before, sizeof outside_before);
    listing(f->root, root_before, sizeof root_before);
    for (size_t i = 0; i < sizeof hostile_names / sizeof hostile_names[0]; i++)
        send_hostile_name(f, hostile_names[i]);
    char one[301], hub[300];
    long_names(one, hub);
    send_hostile_name(f, one);
    send_hostile_name(f, hub);
    for (size_t i = 0; i < sizeof hostile_paths / sizeof hostile_paths[0]; i++) {
        reply r = send_req(f, "GET", hostile_paths[i], "Bearer " KEY, NULL, NULL, NULL);
        expect_4xx(&r, hostile_paths[i]);
        fl_buf_free(&r.body);
    }
    /* A NUL inside a JSON string is refused by the JSON reader. */
    reply r = send_req(f, "POST", "/v1/chat/completions", "Bearer " KEY, "application/json",
                       "{\"model\":\"real\\u0000/../../x\",\"messages\":[]}", NULL);
    expect_4xx(&r, "model with \\u0000");
    fl_buf_free(&r.body);
    listing(f->outside, after, sizeof after);
    assert_string_equal(after, outside_before);
    listing(f->root, after, sizeof after);
    assert_string_equal(after, root_before);
}

/* ---- symbolic links ---- */

static bool listed(const char *list_body, const char *id) {
    json_t *doc = json_loads(list_body, 0, NULL);
    bool found = false;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(doc, "data"), i, m) {
        found = found || strcmp(json_string_value(json_object_get(m, "id")), id) == 0;
    }
    json_decref(doc);
    return found;
}

static void test_links_inside_followed_outside_ignored(void **state) {
    fixture *f = *state;
    reply r = send_req(f, "GET", "/v1/models", "Bearer " KEY, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_true(listed(r.body.data, "real"));
    assert_true(listed(r.body.data, "link-in"));
    assert_false(listed(r.body.data, "link-out"));
    assert_false(listed(r.body.data, "whisper-out"));
    assert_false(listed(r.body.data, "evil/secret"));
    fl_buf_free(&r.body);
    r = send_req(f, "GET", "/v1/models/link-in", "Bearer " KEY, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    fl_buf_free(&r.body);
}

/* Runs a streamed download of name to its end; returns the whole event stream. */
static char *download(fixture *f, const char *name) {
    char body[512];
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"stream\":true}", name);
    reply r =
        send_req(f, "POST", "/v1/models/download", "Bearer " KEY, "application/json", body, NULL);
    if (r.status != 200) fail_msg("download %s: %ld %s", name, r.status, r.body.data);
    return fl_buf_take(&r.body, NULL);
}

static void test_downloads_never_write_through_links(void **state) {
    fixture *f = *state;
    const char *files[] = {"evil/repo/f.gguf", "o2/r2/f.gguf", "ok/repo/f.gguf"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        assert_true(fake_hub_put(&f->hub, files[i], "GGUF-from-the-hub", 17));
    /* A .part planted as a link to a file outside. */
    char path[1024], victim[1024];
    join(victim, sizeof victim, f->outside, "victim");
    write_file(victim, "untouched");
    join(path, sizeof path, f->models, "llm/o2");
    assert_int_equal(mkdir(path, 0755), 0);
    join(path, sizeof path, f->models, "llm/o2/r2");
    assert_int_equal(mkdir(path, 0755), 0);
    join(path, sizeof path, f->models, "llm/o2/r2/f.gguf.part");
    assert_int_equal(symlink(victim, path), 0);
    char outside_before[1024], after[1024];
    listing(f->outside, outside_before, sizeof outside_before);

    /* Through the linked folder llm/evil -> outside/. */
    char *events = download(f, "evil/repo/f.gguf");
    if (strstr(events, "\"state\":\"failed\"") == NULL || strstr(events, "symbolic link") == NULL)
        fail_msg("download through a linked folder: %s", events);
    free(events);
    /* Into a .part that is a link. */
    events = download(f, "o2/r2/f.gguf");
    if (strstr(events, "\"state\":\"failed\"") == NULL || strstr(events, "symbolic link") == NULL)
        fail_msg("download into a linked .part: %s", events);
    free(events);
    /* Over a Whisper file that is a link (whisper/ggml-out.bin -> outside/). */
    events = download(f, "whisper-out");
    if (strstr(events, "\"state\":\"failed\"") == NULL || strstr(events, "symbolic link") == NULL)
        fail_msg("download over a linked model file: %s", events);
    free(events);
    listing(f->outside, after, sizeof after);
    assert_string_equal(after, outside_before);
    FILE *v = fopen(victim, "rb");
    char text[32] = "";
    assert_non_null(v);
    assert_non_null(fgets(text, sizeof text, v));
    fclose(v);
    assert_string_equal(text, "untouched");

    /* A plain Hub download still lands inside. */
    events = download(f, "ok/repo/f.gguf");
    if (strstr(events, "\"state\":\"done\"") == NULL) fail_msg("plain download: %s", events);
    free(events);
    join(path, sizeof path, f->models, "llm/ok/repo/f.gguf");
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_v1_route_needs_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_names_stay_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_inside_followed_outside_ignored, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_downloads_never_write_through_links, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Downloads from a fake Hub: checksums, resume, faults, tokens, redirects, single-flight and
 * a downloader killed half-way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/discovery.h"
#include "runtime/fetch.h"
#include "runtime/runtime.h"
#include "support/fake_hub.h"

#define FILE_SIZE (300 * 1024)
#define REL "org/tiny-GGUF/tiny-q4_k_m.gguf"

typedef struct fixture {
    fake_hub hub;
    char *dir; /* where downloads go (a model_path) */
    unsigned char *data;
    char sha[65];
} fixture;

static void fill_random(unsigned char *p, size_t n, uint32_t seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (unsigned char)(seed >> 24);
    }
}

static fixture *fixture_new(void) {
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || !fake_hub_start(&f->hub)) {
        free(f);
        return NULL;
    }
    f->dir = fake_hub_temp_dir();
    f->data = malloc(FILE_SIZE);
    fill_random(f->data, FILE_SIZE, 7);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", f->hub.root, REL);
    if (f->dir == NULL || f->data == NULL || !fake_hub_put(&f->hub, REL, f->data, FILE_SIZE) ||
        !rt_sha256_file(path, f->sha, NULL)) {
        fake_hub_stop(&f->hub);
        return NULL;
    }
    return f;
}

static void fixture_free(fixture *f) {
    fake_hub_stop(&f->hub);
    fake_hub_rmtree(f->dir);
    free(f->dir);
    free(f->data);
    free(f);
}

/* Each test starts with no faults, no counters and an empty download folder. */
static int reset(void **state) {
    fixture *f = *state;
    fake_hub_get(&f->hub, "/_reset", NULL, 0);
    fake_hub_rmtree(f->dir);
    mkdir(f->dir, 0755);
    return 0;
}

typedef struct fetch_run {
    rt_fetch_progress progress;
    rt_fetch_request req;
    char url[512], dest[512];
    rt_error err;
} fetch_run;

static void prepare(fixture *f, fetch_run *r, const char *rel, const char *token, int retries) {
    memset(r, 0, sizeof *r);
    rt_fetch_request_defaults(&r->req);
    snprintf(r->url, sizeof r->url, "%s/%.*s/resolve/main/%s", f->hub.url,
             (int)(strchr(strchr(rel, '/') + 1, '/') - rel), rel,
             strchr(strchr(rel, '/') + 1, '/') + 1);
    snprintf(r->dest, sizeof r->dest, "%s/model.gguf", f->dir);
    r->req.url = r->url;
    r->req.dest = r->dest;
    r->req.token = token;
    r->req.retries = retries;
    r->req.backoff_s = 0.01;
    r->req.stall_timeout_s = 5;
    r->req.progress = &r->progress;
}

static rt_status fetch(fetch_run *r) {
    return rt_fetch(&r->req, &r->err);
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Request i of rel in table ("resolve_auth" or "cdn_auth") had the Authorization header want
 * ("" for none). */
static void assert_auth(fake_hub *hub, const char *table, const char *rel, int i,
                        const char *want) {
    char auth[128];
    assert_true(fake_hub_auth(hub, table, rel, i, auth, sizeof auth));
    assert_string_equal(auth, want);
}

static void assert_file_is_data(fixture *f, const char *path) {
    assert_int_equal(file_size(path), FILE_SIZE);
    char sha[65];
    assert_true(rt_sha256_file(path, sha, NULL));
    assert_string_equal(sha, f->sha);
}

static void assert_contains(const char *haystack, const char *needle) {
    if (strstr(haystack, needle) == NULL) fail_msg("'%s' does not contain '%s'", haystack, needle);
}

/* URLs in logs and errors: no user:password@, no query string (signed CDN URLs), no
 * fragment; everything else as it was, and an '@' after the host part is not a password. */
static void test_url_for_log(void **state) {
    (void)state;
    static const char *const cases[][2] = {
        {"https://huggingface.co/a/b/resolve/main/x.gguf",
         "https://huggingface.co/a/b/resolve/main/x.gguf"},
        {"http://user:s3cret@127.0.0.1:8080/a/b/resolve/main/x.gguf",
         "http://127.0.0.1:8080/a/b/resolve/main/x.gguf"},
        {"https://token@hub.example/", "https://hub.example/"},
        {"https://cdn.example/x.gguf?X-Amz-Signature=abc&X-Amz-Credential=k",
         "https://cdn.example/x.gguf"},
        {"https://u:p@cdn.example?sig=1#frag", "https://cdn.example"},
        {"https://cdn.example/a@b/c.gguf#part", "https://cdn.example/a@b/c.gguf"},
        {"/cdn/a/b.gguf?sig=1", "/cdn/a/b.gguf"},
        {"/cdn/b.gguf?next=http://u:p@h/x", "/cdn/b.gguf"},
        {"", ""},
    };
    char out[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(rt_url_for_log(cases[i][0], out, sizeof out), cases[i][1]);
    char tiny[8];
    assert_string_equal(rt_url_for_log("http://u:p@host/path", tiny, sizeof tiny), "http://");
}

static void test_plain_download_verifies_checksum(void **state) {
    fixture *f = *state;
    fetch_run r;
    prepare(f, &r, REL, NULL, 0);
    assert_int_equal(fetch(&r), RT_OK);
    assert_file_is_data(f, r.dest);
    char part[600];
    snprintf(part, sizeof part, "%s.part", r.dest);
    assert_int_equal(file_size(part), -1);
    assert_int_equal(atomic_load(&r.progress.bytes), FILE_SIZE);
    assert_int_equal(atomic_load(&r.progress.phase), RT_DOWNLOAD_DONE);
    assert_int_equal(fake_hub_count(&f->hub, "resolve_gets", REL), 1);
    assert_int_equal(fake_hub_count(&f->hub, "cdn_gets", REL), 1);
}

static void test_resume_after_cut(void **state) {
    fixture *f = *state;
    fetch_run r;
    prepare(f, &r, REL, NULL, 0);
    assert_true(fake_hub_fault(&f->hub, REL, "cut", 1, 0));
    /* The first attempt is cut half-way and not retried: half a .part stays. */
    assert_int_equal(fetch(&r), RT_ERR_UNAVAILABLE);
    char part[600];
    snprintf(part, sizeof part, "%s.part", r.dest);
    long half = file_size(part);
    assert_int_equal(half, FILE_SIZE / 2);
    assert_int_equal(file_size(r.dest), -1);
    /* The next one asks only for the rest and completes the file. */
    assert_int_equal(fetch(&r), RT_OK);
    assert_file_is_data(f, r.dest);
    char range[64];
    assert_true(fake_hub_range(&f->hub, REL, 1, range, sizeof range));
    char want[64];
    snprintf(want, sizeof want, "bytes=%ld-", half);
    assert_string_equal(range, want);
}

static void test_resume_within_retries(void **state) {
    fixture *f = *state;
    fetch_run r;
    prepare(f, &r, REL, NULL, 2);
    assert_true(fake_hub_fault(&f->hub, REL, "cut", 1, 0));
    assert_int_equal(fetch(&r), RT_OK);
    assert_file_is_data(f, r.dest);
    assert_int_equal(fake_hub_count(&f->hub, "cdn_gets", REL), 2);
    assert_int_equal(atomic_load(&r.progress.attempt), 2);
}

static void test_corrupt_file_is_refused(void **state) {
    fixture *f = *state;
    fetch_run r;
    prepare(f, &r, REL, NULL, 1);
    assert_true(fake_hub_fault(&f->hub, REL, "corrupt", -1, 0));
    assert_int_equal(fetch(&r), RT_ERR_UNAVAILABLE);
    assert_contains(r.err.message, "checksum mismatch");
    assert_contains(r.err.message, f->sha);
    assert_int_equal(file_size(r.dest), -1);
    char part[600];
    snprintf(part, sizeof part, "%s.part", r.dest);
    assert_int_equal(file_size(part), -1);
    assert_int_equal(fake_hub_count(&f->hub, "cdn_gets", REL), 2); /* retried once */
}

static void test_not_found(void **state) {
    fixture *f = *state;
    fetch_run r;
    prepare(f, &r, "org/tiny-GGUF/missing.gguf", NULL, 3);
    assert_int_equal(fetch(&r), RT_ERR_MODEL_NOT_FOUND);
    assert_contains(r.err.message, "404");
    assert_int_equal(fake_hub_count(&f->hub, "resolve_gets", "org/tiny-GGUF/missing.gguf"), 1);
    prepare(f, &r, "org/no-such-repo/x.gguf", NULL, 3);
    assert_int_equal(fetch(&r), RT_ERR_MODEL_NOT_FOUND);
    assert_contains(r.err.message, "no such repository or file");
}

static void test_gated_needs_token(void **state) {
    fixture *f = *state;
    const char *rel = "org/gated/model.gguf";
    assert_true(fake_hub_put(&f->hub, rel, f->data, FILE_SIZE));
    assert_true(fake_hub_put(&f->hub, "org/gated/.gated", "secret", 6));
    fetch_run r;
    prepare(f, &r, rel, NULL, 3);
    assert_int_equal(fetch(&r), RT_ERR_UNAVAILABLE);
    assert_contains(r.err.message, "401");
    assert_contains(r.err.message, "HF_TOKEN");
    assert_int_equal(fake_hub_count(&f->hub, "resolve_gets", rel), 1); /* not retried */
    prepare(f, &r, rel, "wrong", 0);
    assert_int_equal(fetch(&r), RT_ERR_UNAVAILABLE);
    assert_contains(r.err.message, "token has no access");
    prepare(f, &r, rel, "secret", 0);
    assert_int_equal(fetch(&r), RT_OK);
    assert_file_is_data(f, r.dest);
    /* The token went to the Hub, not to the CDN host the Hub redirected to. */
    assert_auth(&f->hub, "resolve_auth", rel, 2, "Bearer secret");
    assert_auth(&f->hub, "cdn_auth", rel, 0, "");
}

static void test_server_errors_are_retried(void **state) {
    fixture *f = *state;
    fetch_run r;
    prepare(f, &r, REL, NULL, 2);
    assert_true(fake_hub_fault(&f->hub, REL, "500", 1, 0));
    assert_int_equal(fetch(&r), RT_OK);
    assert_int_equal(fake_hub_count(&f->hub, "resolve_gets", REL), 2);
    reset(state);
    prepare(f, &r, REL, NULL, 1);
    assert_true(fake_hub_fault(&f->hub, REL, "500", -1, 0));
    assert_int_equal(fetch(&r), RT_ERR_UNAVAILABLE);
    assert_contains(r.err.message, "HTTP 500");
    assert_int_equal(fake_hub_count(&f->hub, "resolve_gets", REL), 2);
}

static void test_same_host_redirect_keeps_token(void **state) {
    fixture *f = *state;
    assert_true(fake_hub_get(&f->hub, "/_control?redirect=same", NULL, 0));
    fetch_run r;
    prepare(f, &r, REL, "tok", 0);
    assert_int_equal(fetch(&r), RT_OK);
    assert_file_is_data(f, r.dest);
    assert_auth(&f->hub, "cdn_auth", REL, 0, "Bearer tok");
}

static void test_network_down(void **state) {
    fixture *f = *state;
    fetch_run r;
    prepare(f, &r, REL, NULL, 1);
    snprintf(r.url, sizeof r.url, "http://127.0.0.1:1/%s", "org/tiny-GGUF/resolve/main/x.gguf");
    assert_int_equal(fetch(&r), RT_ERR_UNAVAILABLE);
    assert_contains(r.err.message, "network error");
    char part[600];
    snprintf(part, sizeof part, "%s.part", r.dest);
    assert_int_equal(file_size(part), -1); /* nothing was received: nothing left behind */
}

static void test_cancel_stops_download(void **state) {
    fixture *f = *state;
    fetch_run r;
    prepare(f, &r, REL, NULL, 0);
    assert_true(fake_hub_fault(&f->hub, REL, "slow", -1, 20000));
    atomic_bool cancel = true;
    r.req.cancel = &cancel;
    assert_int_equal(fetch(&r), RT_ERR_UNAVAILABLE);
    assert_contains(r.err.message, "cancelled");
    assert_int_equal(file_size(r.dest), -1);
}

/* A downloading process killed with SIGKILL leaves only a .part, which is no model; the next
 * download resumes from it. */
static void test_kill_during_download(void **state) {
    fixture *f = *state;
    char llm_dir[512], dest[600], part[620];
    snprintf(llm_dir, sizeof llm_dir, "%s/llm", f->dir);
    mkdir(llm_dir, 0755);
    snprintf(dest, sizeof dest, "%s/killed.gguf", llm_dir);
    snprintf(part, sizeof part, "%s.part", dest);
    assert_true(fake_hub_fault(&f->hub, REL, "slow", 1, 100000));
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fetch_run r;
        prepare(f, &r, REL, NULL, 0);
        r.req.dest = dest;
        _exit(fetch(&r) == RT_OK ? 0 : 1);
    }
    for (int i = 0; i < 500 && file_size(part) <= 0; i++) usleep(10000);
    assert_true(file_size(part) > 0);
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_true(file_size(part) < FILE_SIZE);
    assert_int_equal(file_size(dest), -1);
    rt_found *found = NULL;
    size_t n = 0;
    assert_int_equal(rt_discover(f->dir, &found, &n, NULL), RT_OK);
    assert_int_equal(n, 0);
    free(found);
    fetch_run r;
    prepare(f, &r, REL, NULL, 0);
    r.req.dest = dest;
    assert_int_equal(fetch(&r), RT_OK);
    assert_file_is_data(f, dest);
    assert_int_equal(rt_discover(f->dir, &found, &n, NULL), RT_OK);
    assert_int_equal(n, 1);
    assert_string_equal(found[0].id, "killed");
    free(found);
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* cmocka counts a failed group set-up as no failure: start the fixture here. */
    fixture *f = fixture_new();
    if (f == NULL) {
        fprintf(stderr, "test_download: cannot start the fake Hub\n");
        return 1;
    }
#define TEST(fn) cmocka_unit_test_prestate_setup_teardown(fn, reset, NULL, f)
    const struct CMUnitTest tests[] = {
        TEST(test_url_for_log),
        TEST(test_plain_download_verifies_checksum),
        TEST(test_resume_after_cut),
        TEST(test_resume_within_retries),
        TEST(test_corrupt_file_is_refused),
        TEST(test_not_found),
        TEST(test_gated_needs_token),
        TEST(test_server_errors_are_retried),
        TEST(test_same_host_redirect_keeps_token),
        TEST(test_network_down),
        TEST(test_cancel_stops_download),
        TEST(test_kill_during_download),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fixture_free(f);
    curl_global_cleanup();
    return rc;
}

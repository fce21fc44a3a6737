#include "support/fake_hub.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"

char *fake_hub_temp_dir(void) {
    char tmpl[] = "/tmp/fluid-test-XXXXXX";
    if (mkdtemp(tmpl) == NULL) return NULL;
    return strdup(tmpl);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void fake_hub_rmtree(const char *path) {
    if (path == NULL || strncmp(path, "/tmp/fluid-test-", 16) != 0) return; /* never elsewhere */
    nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool fake_hub_start(fake_hub *hub) {
    memset(hub, 0, sizeof *hub);
    hub->pid = -1;
    const char *src = getenv("FLUID_SOURCE_DIR");
    char script[512];
    snprintf(script, sizeof script, "%s/tests/tools/fake_hub.py", src != NULL ? src : ".");
    if (access(PYTHON, X_OK) != 0 || access(script, R_OK) != 0) {
        fprintf(stderr, "fake hub: %s or %s missing\n", PYTHON, script);
        return false;
    }
    char *root = fake_hub_temp_dir();
    if (root == NULL) return false;
    snprintf(hub->root, sizeof hub->root, "%s", root);
    free(root);
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0) return false;
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]), close(in[1]), close(out[0]), close(out[1]);
        execl(PYTHON, PYTHON, script, hub->root, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    hub->pid = pid;
    hub->stdin_fd = in[1];
    char line[32] = {0};
    size_t n = 0;
    while (n < sizeof line - 1) {
        ssize_t r = read(out[0], line + n, 1);
        if (r <= 0 || line[n] == '\n') break;
        n++;
    }
    close(out[0]);
    hub->port = atoi(line);
    if (hub->port <= 0) {
        fprintf(stderr, "fake hub: did not start\n");
        fake_hub_stop(hub);
        return false;
    }
    snprintf(hub->url, sizeof hub->url, "http://127.0.0.1:%d", hub->port);
    return true;
}

void fake_hub_stop(fake_hub *hub) {
    if (hub->pid > 0) {
        close(hub->stdin_fd);
        /* It exits when its stdin closes; make sure of it. */
        for (int i = 0; i < 100 && waitpid(hub->pid, NULL, WNOHANG) == 0; i++) usleep(10000);
        if (kill(hub->pid, 0) == 0) {
            kill(hub->pid, SIGKILL);
            waitpid(hub->pid, NULL, 0);
        }
    }
    hub->pid = -1;
    fake_hub_rmtree(hub->root);
}

static bool make_dirs_for(const char *path) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return true;
}

bool fake_hub_put(fake_hub *hub, const char *rel, const void *data, size_t size) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", hub->root, rel);
    if (!make_dirs_for(path)) return false;
    FILE *f = fopen(path, "wb");
    if (f == NULL) return false;
    bool ok = fwrite(data, 1, size, f) == size;
    return fclose(f) == 0 && ok;
}

typedef struct buffer {
    char *data;
    size_t len, size;
} buffer;

static size_t collect(char *p, size_t sz, size_t n, void *user) {
    buffer *b = user;
    size_t len = sz * n;
    if (b->data != NULL && b->size > 0) {
        size_t room = b->size - 1 - b->len;
        size_t take = len < room ? len : room;
        memcpy(b->data + b->len, p, take);
        b->len += take;
        b->data[b->len] = '\0';
    }
    return len;
}

bool fake_hub_get(fake_hub *hub, const char *path_and_query, char *out, size_t size) {
    char url[1024];
    snprintf(url, sizeof url, "%s%s", hub->url, path_and_query);
    buffer b = {out, 0, size};
    if (out != NULL && size > 0) out[0] = '\0';
    CURL *c = curl_easy_init();
    if (c == NULL) return false;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    long code = 0;
    bool ok = curl_easy_perform(c) == CURLE_OK &&
              curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) == CURLE_OK && code == 200;
    curl_easy_cleanup(c);
    return ok;
}

bool fake_hub_fault(fake_hub *hub, const char *rel, const char *mode, int count, int rate) {
    char q[512];
    char *escaped = curl_easy_escape(NULL, rel, 0);
    if (escaped == NULL) return false;
    snprintf(q, sizeof q, "/_control?path=%s&mode=%s&count=%d&rate=%d", escaped, mode, count,
             rate > 0 ? rate : 65536);
    curl_free(escaped);
    return fake_hub_get(hub, q, NULL, 0);
}

static json_t *stats(fake_hub *hub) {
    static char body[1 << 16];
    if (!fake_hub_get(hub, "/_stats", body, sizeof body)) return NULL;
    return json_loads(body, 0, NULL);
}

int fake_hub_count(fake_hub *hub, const char *table, const char *rel) {
    json_t *s = stats(hub);
    if (s == NULL) return -1;
    json_t *v = json_object_get(json_object_get(s, table), rel);
    int n = json_is_integer(v) ? (int)json_integer_value(v) : 0;
    json_decref(s);
    return n;
}

static bool list_item(fake_hub *hub, const char *table, const char *rel, int i, char *out,
                      size_t size) {
    json_t *s = stats(hub);
    if (s == NULL) return false;
    json_t *v = json_array_get(json_object_get(json_object_get(s, table), rel), (size_t)i);
    bool ok = v != NULL;
    snprintf(out, size, "%s", json_is_string(v) ? json_string_value(v) : "");
    json_decref(s);
    return ok;
}

bool fake_hub_auth(fake_hub *hub, const char *table, const char *rel, int i, char *out,
                   size_t size) {
    return list_item(hub, table, rel, i, out, size);
}

bool fake_hub_range(fake_hub *hub, const char *rel, int i, char *out, size_t size) {
    return list_item(hub, "cdn_ranges", rel, i, out, size);
}

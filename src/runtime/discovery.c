#include "runtime/discovery.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/common.h"
#include "util/log.h"

#define MAX_DEPTH 8
#define MAX_FOUND 4096

typedef struct scan {
    char root_real[PATH_MAX]; /* model_path with links resolved */
    rt_found *items;
    size_t n, cap;
    bool oom;
} scan;

/* real (a resolved path) is root_real or below it. */
static bool real_path_under(const char *real, const char *root_real) {
    size_t n = strlen(root_real);
    return strncmp(real, root_real, n) == 0 && (real[n] == '/' || real[n] == '\0');
}

/* A regular file, or a link to a regular file that stays inside model_path. */
static bool usable_file(scan *s, const char *path, struct stat *st) {
    if (lstat(path, st) != 0) return false;
    if (S_ISREG(st->st_mode)) return true;
    if (!S_ISLNK(st->st_mode)) return false;
    char real[PATH_MAX];
    if (realpath(path, real) == NULL || !real_path_under(real, s->root_real) ||
        strcmp(real, s->root_real) == 0) {
        fl_log(FL_LOG_WARN, "ignoring %s: it links outside the model folder", path);
        return false;
    }
    return stat(real, st) == 0 && S_ISREG(st->st_mode);
}

static void add(scan *s, rt_model_type type, const char *id, const char *path,
                const struct stat *st) {
    if (s->n == MAX_FOUND) return;
    if (s->n == s->cap) {
        size_t cap = s->cap > 0 ? s->cap * 2 : 32;
        rt_found *grown = realloc(s->items, cap * sizeof *grown);
        if (grown == NULL) {
            s->oom = true;
            return;
        }
        s->items = grown;
        s->cap = cap;
    }
    rt_found *f = &s->items[s->n++];
    memset(f, 0, sizeof *f);
    f->type = type;
    snprintf(f->id, sizeof f->id, "%s", id);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->size = (uint64_t)st->st_size;
    f->mtime = (int64_t)st->st_mtime;
}

/* Walks dir (whose path relative to llm/ is rel) for *.gguf. */
static void scan_llm(scan *s, const char *dir, const char *rel, int depth) {
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && !s->oom) {
        const char *name = e->d_name;
        if (name[0] == '.' || rt_name_is_temporary(name)) continue;
        char path[RT_PATH_MAX], sub[RT_PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) continue;
        if ((size_t)snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", name) >= sizeof sub)
            continue;
        struct stat st;
        if (lstat(path, &st) != 0) continue;
        if (S_ISDIR(st.st_mode)) { /* real folders only: no loops, no escapes */
            if (depth < MAX_DEPTH) scan_llm(s, path, sub, depth + 1);
            continue;
        }
        char id[RT_ID_MAX];
        if (!rt_name_from_llm_file(sub, id) || !usable_file(s, path, &st)) continue;
        add(s, RT_MODEL_LLM, id, path, &st);
    }
    closedir(d);
}

static void scan_whisper(scan *s, const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && !s->oom) {
        char id[RT_ID_MAX], path[RT_PATH_MAX];
        if (!rt_name_from_whisper_file(e->d_name, id)) continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) continue;
        struct stat st;
        if (!usable_file(s, path, &st)) continue;
        /* ggml-x.bin and x.bin both name whisper-x: the ggml- file wins. */
        bool dup = false;
        for (size_t i = 0; i < s->n && !dup; i++)
            dup = s->items[i].type == RT_MODEL_WHISPER && strcmp(s->items[i].id, id) == 0;
        if (dup && strncmp(e->d_name, "ggml-", 5) == 0) {
            for (size_t i = 0; i < s->n; i++)
                if (s->items[i].type == RT_MODEL_WHISPER && strcmp(s->items[i].id, id) == 0)
                    snprintf(s->items[i].path, sizeof s->items[i].path, "%s", path);
        } else if (!dup) {
            add(s, RT_MODEL_WHISPER, id, path, &st);
        }
    }
    closedir(d);
}

static int by_type_then_id(const void *a, const void *b) {
    const rt_found *x = a, *y = b;
    if (x->type != y->type) return (int)x->type - (int)y->type;
    return strcmp(x->id, y->id);
}

rt_status rt_discover(const char *model_path, rt_found **out, size_t *n, rt_error *err) {
    *out = NULL;
    *n = 0;
    scan s = {0};
    if (realpath(model_path, s.root_real) == NULL) {
        if (errno == ENOENT) return RT_OK;
        return rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot open the model folder %s: %s",
                            model_path, strerror(errno));
    }
    char dir[RT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/llm", model_path);
    scan_llm(&s, dir, "", 0);
    snprintf(dir, sizeof dir, "%s/whisper", model_path);
    scan_whisper(&s, dir);
    if (s.oom) {
        free(s.items);
        return rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory while scanning models");
    }
    if (s.n > 1) qsort(s.items, s.n, sizeof *s.items, by_type_then_id);
    *out = s.items;
    *n = s.n;
    return RT_OK;
}

/* mkdir -p, following links: for the folders an administrator set up. */
static bool make_dirs(const char *dir) {
    char buf[RT_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return false;
        *p = '/';
    }
    return mkdir(buf, 0755) == 0 || errno == EEXIST;
}

static bool is_link(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

rt_status rt_prepare_write_path(const char *root, const char *path, rt_error *err) {
    size_t root_len = strlen(root);
    const char *slash = strrchr(path, '/');
    if (strncmp(path, root, root_len) != 0 || path[root_len] != '/' || slash == NULL ||
        slash < path + root_len)
        return rt_set_error(err, RT_ERR_INTERNAL, 0, "%s is not inside %s", path, root);
    if (!make_dirs(root))
        return rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot create the folder %s: %s", root,
                            strerror(errno));
    char dir[RT_PATH_MAX];
    for (const char *p = path + root_len + 1; p <= slash; p++) {
        if (*p != '/') continue;
        snprintf(dir, sizeof dir, "%.*s", (int)(p - path), path);
        if (mkdir(dir, 0755) != 0 && errno != EEXIST)
            return rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot create the folder %s: %s", dir,
                                strerror(errno));
        struct stat st;
        if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return rt_set_error(err, RT_ERR_BAD_REQUEST, 0,
                                "refusing to write into %s: it is a symbolic link or not a folder",
                                dir);
    }
    char part[RT_PATH_MAX + 8];
    snprintf(part, sizeof part, "%s.part", path);
    if (is_link(path) || is_link(part))
        return rt_set_error(err, RT_ERR_BAD_REQUEST, 0,
                            "refusing to write %s: a symbolic link is in its place", path);
    return RT_OK;
}

#include "support/files.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

char *test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = NULL;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf == NULL) return NULL;
    buf[n] = '\0';
    if (size != NULL) *size = (size_t)n;
    return buf;
}

char *test_testdata_path(const char *name) {
    const char *dir = getenv("FLUID_TESTDATA");
    if (dir == NULL) return NULL;
    size_t len = strlen(dir) + strlen(name) + 2;
    char *path = malloc(len);
    if (path == NULL) return NULL;
    snprintf(path, len, "%s/%s", dir, name);
    if (access(path, R_OK) != 0) {
        free(path);
        return NULL;
    }
    return path;
}

void test_make_file(const char *root, const char *rel, const char *head, size_t size) {
    char path[1024];
    assert_true((size_t)snprintf(path, sizeof path, "%s/%s", root, rel) < sizeof path);
    for (char *p = path + strlen(root) + 1; *p != '\0'; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(head, f);
    for (size_t i = strlen(head); i < size; i++) fputc('x', f);
    assert_int_equal(fclose(f), 0);
}

/* Runs a fuzz target over files instead of under libFuzzer: every file named on the command line,
 * and every file of every folder named (not recursive). This is how the seed corpora and the
 * inputs that once crashed stay tests in the normal builds (ctest fuzz_replay_<target>). */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads a whole file; NULL on failure. */
static uint8_t *read_file(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) return NULL;
    uint8_t *data = NULL;
    long n = -1;
    if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 && fseek(fp, 0, SEEK_SET) == 0)
        data = malloc((size_t)n + 1); /* + 1: never malloc(0) */
    if (data != NULL && fread(data, 1, (size_t)n, fp) != (size_t)n) {
        free(data);
        data = NULL;
    }
    fclose(fp);
    *size = (size_t)n;
    return data;
}

/* Runs the target on one file; false when it cannot be read. Input bytes are copied to a buffer
 * of their exact size, as libFuzzer does, so that ASan sees reads past the end. */
static bool run_file(const char *path) {
    size_t size = 0;
    uint8_t *data = read_file(path, &size);
    if (data == NULL) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        return false;
    }
    uint8_t *exact = malloc(size > 0 ? size : 1);
    if (exact == NULL) {
        free(data);
        return false;
    }
    memcpy(exact, data, size);
    free(data);
    LLVMFuzzerTestOneInput(exact, size);
    free(exact);
    return true;
}

/* Runs every regular file of dir in name order; adds to *count. False on a read error. */
static bool run_dir(const char *dir, int *count) {
    struct dirent **entries = NULL;
    int n = scandir(dir, &entries, NULL, alphasort);
    if (n < 0) return true; /* no such folder: nothing to replay */
    bool ok = true;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, entries[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            ok = run_file(path) && ok;
            (*count)++;
        }
        free(entries[i]);
    }
    free(entries);
    return ok;
}

int main(int argc, char **argv) {
    int count = 0;
    bool ok = true;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            ok = run_dir(argv[i], &count) && ok;
        } else if (stat(argv[i], &st) == 0) {
            ok = run_file(argv[i]) && ok;
            count++;
        }
    }
    printf("replay: %d inputs\n", count);
    if (count == 0) {
        fprintf(stderr, "replay: no inputs found (an empty corpus tests nothing)\n");
        return 1;
    }
    return ok ? 0 : 1;
}

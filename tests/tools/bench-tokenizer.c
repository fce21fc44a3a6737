/* bench-tokenizer VOCAB.gguf TEXT_FILE [MIB] [REPS]: tokenization speed. The text file is
 * repeated (whole lines) up to MIB mebibytes (default 1), tokenized REPS times (default 3);
 * prints the load time, the token count and MB/s (best run) for tokenizing and detokenizing,
 * all in CPU time of the thread (the machine may be shared). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fluid/fluid.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static char *read_text(const char *path, size_t want, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *src = malloc((size_t)size + 1), *text = malloc(want + (size_t)size + 1);
    if (!src || !text || size <= 0 || fread(src, 1, (size_t)size, f) != (size_t)size) {
        fclose(f);
        free(src);
        free(text);
        return NULL;
    }
    fclose(f);
    size_t n = 0;
    while (n < want) {
        memcpy(text + n, src, (size_t)size);
        n += (size_t)size;
    }
    free(src);
    *len = n;
    return text;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s VOCAB.gguf TEXT_FILE [MIB] [REPS]\n", argv[0]);
        return 1;
    }
    size_t mib = argc > 3 ? (size_t)atoi(argv[3]) : 1;
    int reps = argc > 4 ? atoi(argv[4]) : 3;
    size_t len;
    char *text = read_text(argv[2], mib << 20, &len);
    if (!text) {
        fprintf(stderr, "%s: cannot read\n", argv[2]);
        return 1;
    }
    fluid_error err = {0};
    double t0 = now();
    fluid_vocab *v = fluid_vocab_load(argv[1], &err);
    double t_load = now() - t0;
    if (!v) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double best_tok = 1e30, best_detok = 1e30;
    size_t n = 0;
    for (int r = 0; r < reps; r++) {
        int32_t *ids;
        t0 = now();
        if (fluid_tokenize(v, text, len, false, false, &ids, &n, &err) != FLUID_OK) {
            fprintf(stderr, "%s\n", err.message);
            return 1;
        }
        double t = now() - t0;
        if (t < best_tok) best_tok = t;
        fluid_detok *d = fluid_detok_create(v, false);
        size_t out = 0, piece;
        t0 = now();
        for (size_t i = 0; i < n; i++) {
            fluid_detok_push(d, ids[i], &piece);
            out += piece;
        }
        fluid_detok_flush(d, &piece);
        t = now() - t0;
        if (t < best_detok) best_detok = t;
        fluid_detok_free(d);
        free(ids);
        if (out + piece != len) fprintf(stderr, "note: detokenized %zu of %zu bytes\n", out, len);
    }
    printf("vocab load: %.3f s\n", t_load);
    printf("text: %zu bytes, %zu tokens (%.2f bytes/token)\n", len, n, (double)len / (double)n);
    printf("tokenize:   %.2f MB/s (%.3f s, best of %d)\n", (double)len / best_tok / 1e6, best_tok,
           reps);
    printf("detokenize: %.2f MB/s (%.3f s)\n", (double)len / best_detok / 1e6, best_detok);
    fluid_vocab_free(v);
    free(text);
    return 0;
}

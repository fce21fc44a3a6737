/* Matrix-vector speed of one weight type: bench-matvec THREADS TYPE_ID [ROWS [COLS [REPS]]]
 *
 * Quantizes a ROWS x COLS matrix of random weights (default 262144 x 2048, far larger than
 * the caches) to TYPE_ID (a GGUF type number: 8 = Q8_0, 2 = Q4_0, 12 = Q4_K, ...), then times
 * REPS (default 300) products with one token through fl_matmul on a pool of THREADS threads
 * and prints the best: milliseconds, GB/s of weights streamed, and multiply-adds per second.
 * The matrix lies in 2 MiB pages, as model files do where the kernel allows (util/filemap.c);
 * BENCH_SMALL_PAGES=1 keeps it in 4 KiB pages. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

enum { HUGE_PAGE = 2 << 20 };

#include "engine/kernels.h"
#include "engine/quant.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: bench-matvec THREADS TYPE_ID [ROWS [COLS [REPS]]]\n");
        return 2;
    }
    int threads = atoi(argv[1]), reps = argc > 5 ? atoi(argv[5]) : 300;
    fl_type type = (fl_type)atoi(argv[2]);
    int64_t rows = argc > 3 ? atoll(argv[3]) : 262144, cols = argc > 4 ? atoll(argv[4]) : 2048;
    size_t row_bytes = fl_row_bytes(type, cols);
    if (threads < 1 || reps < 1 || rows < 1 || !fl_kernels_support(type) || row_bytes == 0) {
        fprintf(stderr, "bench-matvec: bad arguments\n");
        return 2;
    }
    /* 2 MiB pages, as model files get them (util/filemap.c) */
    size_t w_bytes = (row_bytes * (size_t)rows + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    unsigned char *w = aligned_alloc(HUGE_PAGE, w_bytes);
    if (w && getenv("BENCH_SMALL_PAGES") == NULL) madvise(w, w_bytes, MADV_HUGEPAGE);
    float *row = malloc(sizeof(float) * (size_t)cols), *x = malloc(sizeof(float) * (size_t)cols);
    float *y = malloc(sizeof(float) * (size_t)rows);
    fl_pool *pool = fl_pool_create(threads);
    if (!w || !row || !x || !y || !pool) {
        fprintf(stderr, "bench-matvec: out of memory\n");
        return 1;
    }
    srand(1);
    for (int64_t i = 0; i < cols; i++) x[i] = (float)rand() / RAND_MAX - 0.5f;
    for (int64_t r = 0; r < rows; r++) {
        if (r < 64) /* 64 distinct rows repeated: quantizing every row would take long */
            for (int64_t i = 0; i < cols; i++) row[i] = (float)rand() / RAND_MAX - 0.5f;
        if (r < 64)
            fl_quantize_row(type, row, w + (size_t)r * row_bytes, cols);
        else
            for (size_t b = 0; b < row_bytes; b++)
                w[(size_t)r * row_bytes + b] = w[(size_t)(r % 64) * row_bytes + b];
    }
    fl_tensor t = {.type = type, .n_dims = 2, .ne = {cols, rows, 1, 1}, .data = w};
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
        double t0 = now();
        fl_matmul(&t, x, 1, y, pool);
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("%s %lld x %lld, %d thread(s): %.3f ms, %.2f GB/s, %.1f G multiply-adds/s\n",
           fl_type_traits_of(type)->name, (long long)rows, (long long)cols, threads, best * 1e3,
           (double)row_bytes * (double)rows / best / 1e9, (double)rows * (double)cols / best / 1e9);
    fl_pool_free(pool);
    free(w);
    free(row);
    free(x);
    free(y);
    return 0;
}

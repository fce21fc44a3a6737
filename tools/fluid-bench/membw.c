/* fluid-bench --membw [-t THREADS] [--size MIB] [-r PASSES]: main-memory read bandwidth.
 *
 * A buffer much larger than the caches (default 1024 MiB) is filled once (so every page is
 * mapped), then read in full PASSES times (default 10) by 1, 2, ... THREADS threads of the
 * engine's compute pool, each thread streaming its own contiguous share with 256-bit loads
 * (four independent accumulators). A pass is timed from before the pool starts to after the
 * last thread is done; bandwidth = buffer bytes / pass time, in GB/s (10^9 bytes/s). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu.h"
#include "engine/threadpool.h"
#include "fluid-bench/bench.h"

typedef struct read_task {
    const unsigned char *buf;
    size_t bytes;
    uint64_t sums[64];
} read_task;

enum { CHUNK = 4096 };

static uint64_t read_scalar(const void *buf, size_t bytes) {
    const uint64_t *p = buf;
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i < bytes / 8; i += 2) {
        a += p[i];
        b ^= p[i + 1];
    }
    return a + b;
}

static void read_share(void *p, int ith, int nth) {
    read_task *t = p;
    long begin, end;
    fl_split_range((long)(t->bytes / CHUNK), ith, nth, &begin, &end);
    const unsigned char *start = t->buf + (size_t)begin * CHUNK;
    size_t len = (size_t)(end - begin) * CHUNK;
    uint64_t s =
        fl_simd_available(FL_SIMD_AVX2) ? bench_read_avx2(start, len) : read_scalar(start, len);
    t->sums[ith % 64] += s;
}

static int usage(void) {
    fprintf(stderr, "usage: fluid-bench --membw [-t THREADS] [--size MIB] [-r PASSES]\n");
    return 2;
}

int bench_membw_main(int argc, char **argv) {
    int threads = 2, passes = 10;
    long mib = 1024;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--membw") == 0) continue;
        if (i + 1 >= argc) return usage();
        if (strcmp(argv[i], "-t") == 0)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--size") == 0)
            mib = atol(argv[++i]);
        else if (strcmp(argv[i], "-r") == 0)
            passes = atoi(argv[++i]);
        else
            return usage();
    }
    if (threads < 1 || threads > 64 || passes < 1 || passes > 1000 || mib < 1 || mib > 65536)
        return usage();
    read_task task = {.bytes = (size_t)mib << 20};
    unsigned char *buf = aligned_alloc(64, task.bytes);
    if (buf == NULL) {
        fprintf(stderr, "fluid-bench: cannot allocate %ld MiB\n", mib);
        return 1;
    }
    memset(buf, 1, task.bytes);
    task.buf = buf;
    printf("memory read bandwidth: %ld MiB buffer, %d passes, %s loads\n", mib, passes,
           fl_simd_available(FL_SIMD_AVX2) ? "AVX2 256-bit" : "64-bit");
    printf("| threads | best GB/s | mean GB/s | stddev |\n| ---: | ---: | ---: | ---: |\n");
    double *gbs = malloc(sizeof(double) * (size_t)passes);
    int status = gbs ? 0 : 1;
    for (int nth = 1; nth <= threads && status == 0; nth++) {
        fl_pool *pool = fl_pool_create(nth);
        if (pool == NULL) {
            status = 1;
            break;
        }
        fl_pool_run(pool, read_share, &task); /* warm-up */
        double best = 0;
        for (int r = 0; r < passes; r++) {
            double t0 = bench_now();
            fl_pool_run(pool, read_share, &task);
            gbs[r] = (double)task.bytes / (bench_now() - t0) / 1e9;
            if (gbs[r] > best) best = gbs[r];
        }
        bench_stats s = bench_stats_of(gbs, passes);
        printf("| %d | %.2f | %.2f | %.2f |\n", nth, best, s.mean, s.stddev);
        fl_pool_free(pool);
    }
    uint64_t total = 0;
    for (int i = 0; i < 64; i++) total += task.sums[i];
    if (total == 42) printf(" \n"); /* keeps the sums alive */
    free(gbs);
    free(buf);
    return status;
}

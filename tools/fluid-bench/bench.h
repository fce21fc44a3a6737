/* fluid-bench's modes and the helpers they share. */
#ifndef FLUID_BENCH_BENCH_H
#define FLUID_BENCH_BENCH_H

#include <stddef.h>
#include <stdint.h>

/* Language models (GGUF): prompt processing and generation speed, llama-bench style. */
int bench_llm_main(int argc, char **argv);

/* --membw: read bandwidth of main memory with 1..THREADS threads. */
int bench_membw_main(int argc, char **argv);

/* Sums a buffer of `bytes` (a multiple of 256, 32-byte aligned) with AVX2 loads; the result
 * only keeps the reads from being optimised away. */
uint64_t bench_read_avx2(const void *buf, size_t bytes);

double bench_now(void); /* monotonic seconds */

typedef struct bench_stats {
    double mean, stddev; /* sample standard deviation (0 for one sample) */
} bench_stats;

bench_stats bench_stats_of(const double *v, int n);

#endif

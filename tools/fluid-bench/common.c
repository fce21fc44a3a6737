#include <math.h>
#include <time.h>

#include "fluid-bench/bench.h"

double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bench_stats bench_stats_of(const double *v, int n) {
    bench_stats s = {0, 0};
    if (n <= 0) return s;
    for (int i = 0; i < n; i++) s.mean += v[i];
    s.mean /= n;
    if (n > 1) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (v[i] - s.mean) * (v[i] - s.mean);
        s.stddev = sqrt(ss / (n - 1));
    }
    return s;
}

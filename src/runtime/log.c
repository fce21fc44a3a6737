#include "runtime/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

void rt_log(rt_log_level level, const char *fmt, ...) {
    static const char *const names[] = {"info", "warn", "error"};
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line so lines of different threads do not interleave. */
    fprintf(stderr, "%s %s runtime: %s\n", stamp, names[level], line);
}

rt_status rt_set_error(rt_error *err, rt_status status, int retry_after_s, const char *fmt, ...) {
    if (err == NULL) return status;
    err->status = status;
    err->retry_after_s = retry_after_s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

double rt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

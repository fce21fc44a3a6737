#include "runtime/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

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

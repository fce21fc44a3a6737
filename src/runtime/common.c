#include "runtime/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static void fill(rt_error *err, rt_status status, int retry_after_s, const char *code,
                 const char *param, const char *fmt, va_list ap) {
    err->status = status;
    err->retry_after_s = retry_after_s;
    snprintf(err->code, sizeof err->code, "%s", code);
    snprintf(err->param, sizeof err->param, "%s", param);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
}

rt_status rt_set_error(rt_error *err, rt_status status, int retry_after_s, const char *fmt, ...) {
    if (err == NULL) return status;
    va_list ap;
    va_start(ap, fmt);
    fill(err, status, retry_after_s, "", "", fmt, ap);
    va_end(ap);
    return status;
}

rt_status rt_set_field_error(rt_error *err, const char *code, const char *param, const char *fmt,
                             ...) {
    if (err == NULL) return RT_ERR_BAD_REQUEST;
    va_list ap;
    va_start(ap, fmt);
    fill(err, RT_ERR_BAD_REQUEST, 0, code, param, fmt, ap);
    va_end(ap);
    return RT_ERR_BAD_REQUEST;
}

double rt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

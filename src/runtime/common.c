#include "runtime/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

rt_status rt_set_error(rt_error *err, rt_status status, int retry_after_s, const char *fmt, ...) {
    if (err == NULL) return status;
    err->status = status;
    err->retry_after_s = retry_after_s;
    err->code[0] = '\0';
    err->param[0] = '\0';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return status;
}

rt_status rt_set_field_error(rt_error *err, const char *code, const char *param, const char *fmt,
                             ...) {
    if (err == NULL) return RT_ERR_BAD_REQUEST;
    err->status = RT_ERR_BAD_REQUEST;
    err->retry_after_s = 0;
    snprintf(err->code, sizeof err->code, "%s", code);
    snprintf(err->param, sizeof err->param, "%s", param);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return RT_ERR_BAD_REQUEST;
}

double rt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

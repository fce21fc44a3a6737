/* Log lines of the runtime on stderr: "<UTC time> <level> runtime: <message>". */
#ifndef FLUID_RUNTIME_LOG_H
#define FLUID_RUNTIME_LOG_H

#include "runtime/runtime.h"

typedef enum rt_log_level { RT_LOG_INFO, RT_LOG_WARN, RT_LOG_ERROR } rt_log_level;

void rt_log(rt_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Fills err (may be NULL) and returns status. */
rt_status rt_set_error(rt_error *err, rt_status status, int retry_after_s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Seconds on a monotonic clock. */
double rt_now(void);

#endif

/* Small helpers shared by the runtime's files: typed errors and a monotonic clock. */
#ifndef FLUID_RUNTIME_COMMON_H
#define FLUID_RUNTIME_COMMON_H

#include "runtime/runtime.h"

/* Fills err (may be NULL) and returns status. */
rt_status rt_set_error(rt_error *err, rt_status status, int retry_after_s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fills err (may be NULL) with a BAD_REQUEST about one request field: OpenAI's error code and
 * the field's name. Returns RT_ERR_BAD_REQUEST. */
rt_status rt_set_field_error(rt_error *err, const char *code, const char *param, const char *fmt,
                             ...) __attribute__((format(printf, 4, 5)));

/* Seconds on a monotonic clock. */
double rt_now(void);

#endif

/* Filling a fluid_error with a formatted message. */
#ifndef FLUID_UTIL_ERROR_H
#define FLUID_UTIL_ERROR_H

#include "fluid/fluid.h"

/* Sets err (if not NULL) to code and a printf-style message; returns code. */
fluid_status fl_set_error(fluid_error *err, fluid_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif

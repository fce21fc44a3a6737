#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>

fluid_status fl_set_error(fluid_error *err, fluid_status code, const char *fmt, ...) {
    if (err == NULL) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

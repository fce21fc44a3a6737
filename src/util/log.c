#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

/* Written once at start-up (see fl_log_set_level); atomic so readers on other threads are
 * well defined even if a test changes it. */
static _Atomic int log_threshold = FL_LOG_INFO;

void fl_log_set_level(fl_log_level level) {
    atomic_store(&log_threshold, (int)level);
}

fl_log_level fl_log_get_level(void) {
    return (fl_log_level)atomic_load(&log_threshold);
}

int fl_log_parse_level(const char *name, fl_log_level *level) {
    static const struct {
        const char *name;
        fl_log_level level;
    } names[] = {{"debug", FL_LOG_DEBUG}, {"info", FL_LOG_INFO},   {"warning", FL_LOG_WARN},
                 {"warn", FL_LOG_WARN},   {"error", FL_LOG_ERROR}, {"off", FL_LOG_OFF}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (name != NULL && strcasecmp(name, names[i].name) == 0) {
            *level = names[i].level;
            return 1;
        }
    }
    return 0;
}

void fl_log(fl_log_level level, const char *fmt, ...) {
    if ((int)level < atomic_load(&log_threshold) || level >= FL_LOG_OFF) return;
    static const char *const tags[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2048];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, tags[level]);
    if (n < 0 || (size_t)n >= sizeof line) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fprintf per line so lines of different threads do not interleave. */
    fprintf(stderr, "%s\n", line);
}

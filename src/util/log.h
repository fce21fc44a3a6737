/* Log lines on stderr: "2026-11-25T04:30:00.123Z INFO  message". */
#ifndef FLUID_UTIL_LOG_H
#define FLUID_UTIL_LOG_H

typedef enum fl_log_level {
    FL_LOG_DEBUG = 0,
    FL_LOG_INFO,
    FL_LOG_WARN,
    FL_LOG_ERROR,
    FL_LOG_OFF,
} fl_log_level;

/* Sets the least severe level that is printed. Called once at start-up, before any thread
 * logs; the level is then only read. */
void fl_log_set_level(fl_log_level level);
fl_log_level fl_log_get_level(void);

/* Parses "debug", "info", "warning"/"warn", "error", "off" (any case). Returns false when the
 * name is not one of them. */
int fl_log_parse_level(const char *name, fl_log_level *level);

void fl_log(fl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

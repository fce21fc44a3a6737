/* fluid-load: a bounded load generator for a fluid-server on this machine (loopback only).
 * Shared types of tools/fluid-load.c and the files in tools/fluid-load/. */
#ifndef FLUID_LOAD_H
#define FLUID_LOAD_H

#include <stdbool.h>
#include <stddef.h>

typedef enum load_kind {
    LOAD_CHAT_STREAM,
    LOAD_CHAT,
    LOAD_COMPLETION,
    LOAD_TRANSCRIPTION,
    LOAD_HEALTH,
    LOAD_KIND_COUNT,
} load_kind;

/* "chat-stream", "chat", "completion", "transcription", "health". */
const char *load_kind_name(load_kind kind);

#define LOAD_MAX_AUDIO_FIELDS 8

typedef struct load_options {
    const char *url;           /* base URL without a trailing slash */
    long concurrency;          /* requests in flight at once */
    long requests;             /* total to start; 0 = no count limit */
    double duration_s;         /* stop starting new ones after this; 0 = no time limit */
    int mix[LOAD_KIND_COUNT];  /* relative weight of each kind */
    const char *api_key;       /* NULL = no Authorization header */
    const char *llm_model;     /* "model" of chat and completion requests */
    const char *whisper_model; /* "model" of transcriptions */
    const char *audio_path;    /* file uploaded by transcriptions */
    const char *audio_fields[LOAD_MAX_AUDIO_FIELDS]; /* more "name=value" form fields */
    int n_audio_fields;
    const char *prompt;     /* user message / prompt text */
    long max_tokens;        /* per chat or completion request */
    const char *body_extra; /* JSON object merged into chat and completion bodies */
    long server_pid;        /* 0 = no memory readings */
    double interval_s;      /* progress line and memory curve period */
    double timeout_s;       /* per request */
    bool json;              /* report as JSON */
} load_options;

/* Parses argv into o. Returns 0 to run, 1 when --help was printed, -1 on a usage error
 * (message already printed). */
int load_parse_options(int argc, char **argv, load_options *o);

/* A growable array of doubles. */
typedef struct load_samples {
    double *v;
    size_t n, cap;
} load_samples;

bool load_samples_add(load_samples *s, double x);
/* Nearest-rank percentile p (0..100) of the samples; sorts them. 0 when empty. */
double load_samples_percentile(load_samples *s, double p);
void load_samples_free(load_samples *s);

#define LOAD_HTTP_STATUS_MAX 600

typedef struct load_kind_stats {
    long requests;                   /* finished (passed or failed) */
    long http[LOAD_HTTP_STATUS_MAX]; /* failures by HTTP status (index 0: out of range) */
    long transport;                  /* connection, timeout or protocol failures */
    long malformed;                  /* 2xx with a body that is not the expected shape */
    long tokens;                     /* completion tokens received */
    load_samples latency_ms;         /* every finished request, passed or failed */
    load_samples ttft_ms;            /* streams: time to the first content token */
} load_kind_stats;

typedef struct load_rss_point {
    double t_s;
    long kib;
} load_rss_point;

/* The server's resident memory over the run (only with --server-pid). */
typedef struct load_memory {
    long pid;
    long before_kib, after_kib, peak_kib, hwm_after_kib; /* -1 = not read */
    load_rss_point *curve;
    size_t n_curve, cap_curve;
    bool gone; /* the process disappeared during the run */
} load_memory;

/* Reads a "Field:  N kB" line of /proc/PID/status; -1 when the process or field is missing. */
long load_read_status_kib(long pid, const char *field);
/* Reads VmRSS into *kib (-1 and m->gone when the process is missing), updates the peak and,
 * when on_curve, adds a curve point. False when memory ran out. */
bool load_memory_sample(load_memory *m, double t_s, bool on_curve, long *kib);
void load_memory_free(load_memory *m);

#define LOAD_MAX_NOTED_ERRORS 8

typedef struct load_report {
    load_kind_stats kinds[LOAD_KIND_COUNT];
    double wall_s;
    load_memory memory;
    char errors[LOAD_MAX_NOTED_ERRORS][240]; /* the first failures, described */
    int n_errors;
} load_report;

long load_kind_failures(const load_kind_stats *k);
long load_total_failures(const load_report *r);
void load_note_error(load_report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void load_report_free(load_report *r);

/* Runs the load described by o, filling r. Returns false when it could not start (message
 * printed); request failures are counted in r, not returned. */
bool load_run(const load_options *o, load_report *r);

/* Validation of the response bodies (check.c). Each returns true when the body has the
 * expected shape, otherwise false with why filled. tokens gets usage.completion_tokens. */
bool load_check_json_body(load_kind kind, const char *body, size_t len, long *tokens, char *why,
                          size_t why_size);

/* Incremental reader of a chat stream (text/event-stream). */
typedef struct load_sse {
    char *line; /* bytes of the current line not yet complete */
    size_t line_len, line_cap;
    long events;         /* data events before [DONE] */
    long content_chunks; /* events that carried content */
    long usage_tokens;   /* usage.completion_tokens of the last chunk, -1 if none */
    bool done;           /* "data: [DONE]" seen */
    bool bad;            /* malformed (why says how) */
    bool got_content;    /* set when the first content chunk arrives; caller reads and clears */
    char why[200];
} load_sse;

void load_sse_init(load_sse *s);
/* Feeds received bytes. Returns false when memory ran out or the stream is malformed. */
bool load_sse_feed(load_sse *s, const char *bytes, size_t n);
/* After the transfer: true when the stream ended properly. */
bool load_sse_finish(load_sse *s);
void load_sse_free(load_sse *s);

void load_print_text(const load_options *o, load_report *r);
/* false when memory ran out (message printed) */
bool load_print_json(const load_options *o, load_report *r);

#endif

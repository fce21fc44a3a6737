/* fluid-load: samples, percentiles and the report. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fluid-load/load.h"

bool load_samples_add(load_samples *s, double x) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        double *v = realloc(s->v, cap * sizeof *v);
        if (v == NULL) return false;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return true;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double load_samples_percentile(load_samples *s, double p) {
    if (s->n == 0) return 0;
    qsort(s->v, s->n, sizeof *s->v, compare_doubles);
    size_t rank = (size_t)(p / 100.0 * (double)s->n + 0.999999); /* nearest rank, 1-based */
    if (rank < 1) rank = 1;
    if (rank > s->n) rank = s->n;
    return s->v[rank - 1];
}

void load_samples_free(load_samples *s) {
    free(s->v);
    *s = (load_samples){0};
}

long load_kind_failures(const load_kind_stats *k) {
    long n = k->transport + k->malformed;
    for (int i = 0; i < LOAD_HTTP_STATUS_MAX; i++) n += k->http[i];
    return n;
}

long load_total_failures(const load_report *r) {
    long n = 0;
    for (int k = 0; k < LOAD_KIND_COUNT; k++) n += load_kind_failures(&r->kinds[k]);
    return n;
}

void load_note_error(load_report *r, const char *fmt, ...) {
    if (r->n_errors >= LOAD_MAX_NOTED_ERRORS) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->errors[r->n_errors++], sizeof r->errors[0], fmt, ap);
    va_end(ap);
}

void load_report_free(load_report *r) {
    for (int k = 0; k < LOAD_KIND_COUNT; k++) {
        load_samples_free(&r->kinds[k].latency_ms);
        load_samples_free(&r->kinds[k].ttft_ms);
    }
    load_memory_free(&r->memory);
}

static long total_requests(const load_report *r) {
    long n = 0;
    for (int k = 0; k < LOAD_KIND_COUNT; k++) n += r->kinds[k].requests;
    return n;
}

static long total_tokens(const load_report *r) {
    long n = 0;
    for (int k = 0; k < LOAD_KIND_COUNT; k++) n += r->kinds[k].tokens;
    return n;
}

static double per_second(long n, double s) {
    return s > 0 ? (double)n / s : 0;
}

static const double percentiles[] = {50, 90, 99, 100};

/* ---- text ---- */

static void print_failures_text(const load_kind_stats *k, const char *name) {
    if (load_kind_failures(k) == 0) return;
    printf("  %s failures:", name);
    for (int s = 0; s < LOAD_HTTP_STATUS_MAX; s++)
        if (k->http[s] > 0) printf(" HTTP %d x%ld;", s, k->http[s]);
    if (k->transport > 0) printf(" transport x%ld;", k->transport);
    if (k->malformed > 0) printf(" malformed x%ld;", k->malformed);
    printf("\n");
}

static void print_kind_text(load_kind_stats *k, const char *name) {
    printf("%-14s %8ld %7ld", name, k->requests, load_kind_failures(k));
    for (size_t i = 0; i < sizeof percentiles / sizeof *percentiles; i++)
        printf(" %8.1f", load_samples_percentile(&k->latency_ms, percentiles[i]));
    if (k->ttft_ms.n > 0)
        printf("  %6.1f/%.1f/%.1f", load_samples_percentile(&k->ttft_ms, 50),
               load_samples_percentile(&k->ttft_ms, 90), load_samples_percentile(&k->ttft_ms, 99));
    else
        printf("  %6s", "-");
    printf(" %7ld\n", k->tokens);
}

static void print_memory_text(const load_memory *m) {
    if (m->pid == 0) return;
    if (m->before_kib < 0 || m->after_kib < 0) {
        printf("server memory (pid %ld): cannot read /proc/%ld/status\n", m->pid, m->pid);
        return;
    }
    printf("server memory (pid %ld, VmRSS): before %.1f MiB, after %.1f MiB (%+.1f), peak %.1f "
           "MiB; VmHWM after %.1f MiB%s\n",
           m->pid, m->before_kib / 1024.0, m->after_kib / 1024.0,
           (m->after_kib - m->before_kib) / 1024.0, m->peak_kib / 1024.0, m->hwm_after_kib / 1024.0,
           m->gone ? " (the process went away)" : "");
    printf("memory curve (s: MiB):");
    for (size_t i = 0; i < m->n_curve; i++)
        printf(" %.0f: %.1f%s", m->curve[i].t_s, m->curve[i].kib / 1024.0,
               i + 1 < m->n_curve ? "," : "");
    printf("\n");
}

void load_print_text(const load_options *o, load_report *r) {
    long n = total_requests(r);
    printf("fluid-load: %s, concurrency %ld, %.1f s, %ld requests (%.2f/s), %ld failed, "
           "%ld completion tokens (%.1f/s)\n",
           o->url, o->concurrency, r->wall_s, n, per_second(n, r->wall_s), load_total_failures(r),
           total_tokens(r), per_second(total_tokens(r), r->wall_s));
    printf("%-14s %8s %7s %8s %8s %8s %8s  %s %7s\n", "kind", "requests", "failed", "p50 ms",
           "p90 ms", "p99 ms", "max ms", "ttft p50/p90/p99 ms", "tokens");
    for (int k = 0; k < LOAD_KIND_COUNT; k++)
        if (o->mix[k] > 0) print_kind_text(&r->kinds[k], load_kind_name(k));
    for (int k = 0; k < LOAD_KIND_COUNT; k++) print_failures_text(&r->kinds[k], load_kind_name(k));
    for (int i = 0; i < r->n_errors; i++) printf("  failure: %s\n", r->errors[i]);
    print_memory_text(&r->memory);
}

/* ---- JSON ---- */

static json_t *percentiles_json(load_samples *s) {
    return json_pack("{s:I, s:f, s:f, s:f, s:f}", "count", (json_int_t)s->n, "p50",
                     load_samples_percentile(s, 50), "p90", load_samples_percentile(s, 90), "p99",
                     load_samples_percentile(s, 99), "max", load_samples_percentile(s, 100));
}

static json_t *kind_json(load_kind_stats *k, load_kind kind) {
    json_t *failures = json_pack("{s:I, s:I}", "transport", (json_int_t)k->transport, "malformed",
                                 (json_int_t)k->malformed);
    for (int s = 0; failures != NULL && s < LOAD_HTTP_STATUS_MAX; s++) {
        char key[32];
        snprintf(key, sizeof key, "http_%d", s);
        if (k->http[s] > 0) json_object_set_new(failures, key, json_integer(k->http[s]));
    }
    json_t *doc =
        json_pack("{s:I, s:I, s:o, s:o, s:I}", "requests", (json_int_t)k->requests, "failed",
                  (json_int_t)load_kind_failures(k), "failures", failures, "latency_ms",
                  percentiles_json(&k->latency_ms), "tokens", (json_int_t)k->tokens);
    if (doc != NULL && kind == LOAD_CHAT_STREAM)
        json_object_set_new(doc, "ttft_ms", percentiles_json(&k->ttft_ms));
    return doc;
}

static json_t *memory_json(const load_memory *m) {
    if (m->pid == 0) return json_null();
    json_t *curve = json_array();
    for (size_t i = 0; curve != NULL && i < m->n_curve; i++)
        json_array_append_new(curve, json_pack("{s:f, s:I}", "t_s", m->curve[i].t_s, "kib",
                                               (json_int_t)m->curve[i].kib));
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:b, s:o}", "pid", (json_int_t)m->pid, "before_kib",
                     (json_int_t)m->before_kib, "after_kib", (json_int_t)m->after_kib, "peak_kib",
                     (json_int_t)m->peak_kib, "hwm_after_kib", (json_int_t)m->hwm_after_kib,
                     "process_gone", m->gone, "curve", curve);
}

/* A message cut inside a UTF-8 sequence is not a JSON string: say so instead. */
static json_t *message_json(const char *s) {
    json_t *str = json_string(s);
    return str ? str : json_string("(message is not valid UTF-8)");
}

static json_t *report_json(const load_options *o, load_report *r) {
    long n = total_requests(r);
    json_t *kinds = json_object(), *errors = json_array();
    for (int k = 0; kinds != NULL && k < LOAD_KIND_COUNT; k++)
        if (o->mix[k] > 0)
            json_object_set_new(kinds, load_kind_name(k), kind_json(&r->kinds[k], (load_kind)k));
    for (int i = 0; errors != NULL && i < r->n_errors; i++)
        json_array_append_new(errors, message_json(r->errors[i]));
    return json_pack("{s:s, s:I, s:f, s:I, s:I, s:f, s:I, s:f, s:o, s:o, s:o}", "url", o->url,
                     "concurrency", (json_int_t)o->concurrency, "wall_s", r->wall_s, "requests",
                     (json_int_t)n, "failed", (json_int_t)load_total_failures(r), "requests_per_s",
                     per_second(n, r->wall_s), "tokens", (json_int_t)total_tokens(r),
                     "tokens_per_s", per_second(total_tokens(r), r->wall_s), "kinds", kinds,
                     "errors", errors, "memory", memory_json(&r->memory));
}

bool load_print_json(const load_options *o, load_report *r) {
    json_t *doc = report_json(o, r);
    bool ok = doc != NULL && json_dumpf(doc, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(6)) == 0;
    json_decref(doc);
    if (ok)
        putchar('\n');
    else
        fprintf(stderr, "fluid-load: out of memory writing the JSON report\n");
    return ok;
}

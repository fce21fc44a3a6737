/* Fetching one file from the Hugging Face Hub (or anything speaking its resolve protocol) with
 * libcurl: redirects (the bearer token never follows to another host), resume of <dest>.part
 * with Range, SHA-256 check against the checksum the Hub publishes for LFS files, fsync and an
 * atomic rename, retries with exponential back-off and jitter. */
#ifndef FLUID_RUNTIME_FETCH_H
#define FLUID_RUNTIME_FETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "runtime/runtime.h"

/* Live progress, written by the fetching thread and read by anyone without locks. */
typedef struct rt_fetch_progress {
    _Atomic uint64_t bytes; /* bytes in <dest>.part (resumed bytes included) */
    _Atomic uint64_t total; /* 0 = not known yet */
    _Atomic double rate;    /* bytes per second (smoothed) */
    _Atomic int attempt;    /* 1, 2, ... */
    _Atomic int phase;      /* an rt_download_state */
} rt_fetch_progress;

typedef void (*rt_fetch_report_fn)(void *user, const rt_fetch_progress *progress, bool final);

typedef struct rt_fetch_request {
    const char *url;   /* http(s)://host/owner/repo/resolve/revision/path */
    const char *dest;  /* final path; the download goes to dest + ".part" */
    const char *token; /* bearer token or NULL */
    int retries;       /* attempts after the first */
    double backoff_s;  /* delay before the first retry; doubled each time, jittered */
    long connect_timeout_s;
    long stall_timeout_s; /* abort an attempt receiving nothing for this long */
    const atomic_bool *cancel;
    rt_fetch_progress *progress;
    rt_fetch_report_fn report; /* called at most ~5 times a second, and once at the end */
    void *report_user;
} rt_fetch_request;

void rt_fetch_request_defaults(rt_fetch_request *req);

/* Downloads req->url to req->dest. Errors: MODEL_NOT_FOUND (404), UNAVAILABLE (401/403 gated,
 * network down, server errors after the retries, checksum mismatch), INTERNAL (local file
 * system). A cancelled fetch fails with UNAVAILABLE "cancelled". The .part file is kept after a
 * network failure (to resume) and removed after a checksum mismatch. */
rt_status rt_fetch(const rt_fetch_request *req, rt_error *err);

/* The URL as it may be logged or shown: without the user:password@ of its host part
 * (HF_ENDPOINT may hold one) and without its query string and fragment (a redirect's signed
 * CDN URL carries its signature there). Writes at most size bytes to out and returns out. */
const char *rt_url_for_log(const char *url, char *out, size_t size);

/* SHA-256 of a file as 64 lower-case hex digits. */
bool rt_sha256_file(const char *path, char hex[65], rt_error *err);

#endif

#include "runtime/fetch.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/common.h"
#include "util/log.h"
#include "runtime/names.h"

#define MAX_REDIRECTS 8
#define HEADER_VALUE_MAX 2048
#define REPORT_INTERVAL_S 0.2
#define RATE_INTERVAL_S 0.5
#define MAX_BACKOFF_S 30.0
#define URL_SHOWN_MAX 1024 /* a URL in an error message (which holds 512 bytes in all) */

void rt_fetch_request_defaults(rt_fetch_request *req) {
    memset(req, 0, sizeof *req);
    req->retries = 4;
    req->backoff_s = 1.0;
    req->connect_timeout_s = 15;
    req->stall_timeout_s = 30;
}

/* The headers of one HTTP response that matter here. */
typedef struct response_headers {
    long status;
    char location[HEADER_VALUE_MAX];
    char etag[128];
    char linked_etag[128];
    bool has_linked_size, has_content_length, has_range, has_range_total;
    uint64_t linked_size, content_length, range_start, range_total;
    bool complete; /* the blank line ending the headers was seen */
} response_headers;

/* What the Hub said about the file, gathered over the redirect chain. */
typedef struct file_facts {
    char sha256[65]; /* "" = not published (not an LFS file) */
    uint64_t size;   /* 0 = not known */
} file_facts;

typedef struct transfer {
    const rt_fetch_request *req;
    int fd;
    uint64_t offset;  /* bytes in the .part when the response began */
    uint64_t written; /* bytes appended by this response */
    response_headers h;
    file_facts facts;
    bool write_body;
    bool write_failed;
    int write_errno;
    double rate_t, report_t;
    uint64_t rate_bytes;
} transfer;

static bool cancelled(const rt_fetch_request *req) {
    return req->cancel != NULL && atomic_load(req->cancel);
}

static void copy_trimmed(char *dst, size_t size, const char *src, size_t len) {
    while (len > 0 && isspace((unsigned char)*src)) src++, len--;
    while (len > 0 && isspace((unsigned char)src[len - 1])) len--;
    if (len >= size) len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

static bool parse_u64(const char *s, uint64_t *out) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || (*end != '\0' && !isspace((unsigned char)*end))) return false;
    *out = v;
    return true;
}

/* Content-Range: "bytes START-END/TOTAL", or "bytes (star)/TOTAL" on a 416. */
static void parse_content_range(const char *v, response_headers *h) {
    if (strncasecmp(v, "bytes ", 6) != 0) return;
    v += 6;
    const char *slash = strchr(v, '/');
    if (slash == NULL) return;
    if (*v != '*') {
        char start[32];
        size_t n = strcspn(v, "-");
        if (n == 0 || n >= sizeof start) return;
        memcpy(start, v, n);
        start[n] = '\0';
        h->has_range = parse_u64(start, &h->range_start);
    }
    h->has_range_total = parse_u64(slash + 1, &h->range_total);
}

/* Lower-case hex SHA-256 from an ETag value ("\"abc...\"", W/"..."), or "" when it is not one. */
static void etag_to_sha256(const char *etag, char out[65]) {
    out[0] = '\0';
    if (strncmp(etag, "W/", 2) == 0) etag += 2;
    if (*etag == '"') etag++;
    size_t n = 0;
    while (n < 64 && isxdigit((unsigned char)etag[n])) n++;
    if (n != 64 || isxdigit((unsigned char)etag[64])) return;
    for (size_t i = 0; i < 64; i++) out[i] = (char)tolower((unsigned char)etag[i]);
    out[64] = '\0';
}

static size_t on_header(char *line, size_t size, size_t n, void *user) {
    transfer *t = user;
    size_t len = size * n;
    response_headers *h = &t->h;
    if (len >= 5 && strncmp(line, "HTTP/", 5) == 0) {
        memset(h, 0, sizeof *h);
        const char *sp = memchr(line, ' ', len);
        if (sp != NULL) h->status = strtol(sp + 1, NULL, 10);
        return len;
    }
    if (len <= 2 && (line[0] == '\r' || line[0] == '\n')) {
        h->complete = true;
        return len;
    }
    const char *colon = memchr(line, ':', len);
    if (colon == NULL) return len;
    size_t name_len = (size_t)(colon - line);
    char value[HEADER_VALUE_MAX];
    const char *raw = colon + 1;
    size_t raw_len = len - name_len - 1;
    copy_trimmed(value, sizeof value, raw, raw_len);
#define IS(name) (name_len == strlen(name) && strncasecmp(line, name, name_len) == 0)
    if (IS("location"))
        copy_trimmed(h->location, sizeof h->location, raw, raw_len);
    else if (IS("etag"))
        copy_trimmed(h->etag, sizeof h->etag, raw, raw_len);
    else if (IS("x-linked-etag"))
        copy_trimmed(h->linked_etag, sizeof h->linked_etag, raw, raw_len);
    else if (IS("x-linked-size"))
        h->has_linked_size = parse_u64(value, &h->linked_size);
    else if (IS("content-length"))
        h->has_content_length = parse_u64(value, &h->content_length);
    else if (IS("content-range"))
        parse_content_range(value, h);
#undef IS
    return len;
}

static bool write_all(int fd, const char *p, size_t n, int *err_no) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            *err_no = errno;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static size_t on_body(char *data, size_t size, size_t n, void *user) {
    transfer *t = user;
    size_t len = size * n;
    if (!t->write_body) return len; /* the body of a redirect or an error page */
    if (!write_all(t->fd, data, len, &t->write_errno)) {
        t->write_failed = true;
        return 0;
    }
    t->written += len;
    atomic_store(&t->req->progress->bytes, t->offset + t->written);
    return len;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    transfer *t = user;
    if (cancelled(t->req)) return 1;
    double now = rt_now();
    rt_fetch_progress *p = t->req->progress;
    uint64_t bytes = atomic_load(&p->bytes);
    if (now - t->rate_t >= RATE_INTERVAL_S ||
        (atomic_load(&p->rate) == 0 && now - t->rate_t >= 0.05)) {
        double instant = (double)(bytes - t->rate_bytes) / (now - t->rate_t);
        double old = atomic_load(&p->rate);
        atomic_store(&p->rate, old > 0 ? 0.7 * old + 0.3 * instant : instant);
        t->rate_t = now;
        t->rate_bytes = bytes;
    }
    if (t->req->report != NULL && now - t->report_t >= REPORT_INTERVAL_S) {
        t->report_t = now;
        t->req->report(t->req->report_user, p, false);
    }
    return 0;
}

/* Decides, once the headers of a 200/206 are in, whether and where the body goes. */
static bool prepare_body(transfer *t, rt_error *err, bool *retryable) {
    response_headers *h = &t->h;
    if (h->status == 206 && (!h->has_range || h->range_start != t->offset)) {
        *retryable = true;
        rt_set_error(err, RT_ERR_UNAVAILABLE, 0, "the server resumed at the wrong offset");
        return false;
    }
    if (h->status == 200 && t->offset > 0) {
        /* The server ignored the Range: start over. */
        if (ftruncate(t->fd, 0) != 0 || lseek(t->fd, 0, SEEK_SET) != 0) {
            rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot truncate the partial file: %s",
                         strerror(errno));
            return false;
        }
        t->offset = 0;
    }
    if (t->facts.size == 0) {
        if (h->has_range_total)
            t->facts.size = h->range_total;
        else if (h->has_content_length)
            t->facts.size = t->offset + h->content_length;
    }
    atomic_store(&t->req->progress->total, t->facts.size);
    atomic_store(&t->req->progress->bytes, t->offset);
    t->write_body = true;
    return true;
}

static size_t on_body_first(char *data, size_t size, size_t n, void *user);

typedef struct body_gate {
    transfer *t;
    rt_error *err;
    bool *retryable;
    bool refused;
} body_gate;

static CURLcode perform(CURL *c, const char *url, const char *token, body_gate *gate) {
    transfer *t = gate->t;
    char auth[1024] = "";
    char range[64];
    struct curl_slist *headers = NULL, *tmp = NULL;
    if (token != NULL && token[0] != '\0') {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        tmp = curl_slist_append(headers, auth);
        if (tmp == NULL) return CURLE_OUT_OF_MEMORY;
        headers = tmp;
    }
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "fluid-server/" FLUID_VERSION);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, t->req->connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, t->req->stall_timeout_s);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body_first);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, gate);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if (t->offset > 0) {
        snprintf(range, sizeof range, "%llu-", (unsigned long long)t->offset);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    t->write_body = false;
    t->written = 0;
    CURLcode rc = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(headers);
    return rc;
}

/* The first body bytes of a response decide whether the body is the file. */
static size_t on_body_first(char *data, size_t size, size_t n, void *user) {
    body_gate *gate = user;
    transfer *t = gate->t;
    long status = t->h.status;
    if (!t->write_body && (status == 200 || status == 206) && !gate->refused) {
        if (!prepare_body(t, gate->err, gate->retryable)) {
            gate->refused = true;
            return 0;
        }
    }
    return on_body(data, size, n, t);
}

/* Resolves a Location header against the URL it came from. */
static char *resolve_location(const char *base, const char *location) {
    CURLU *u = curl_url();
    char *out = NULL;
    if (u == NULL) return NULL;
    if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK) out = NULL;
    }
    curl_url_cleanup(u);
    return out;
}

/* "scheme://host:port" of a URL, to tell whether a redirect leaves the host. */
static bool same_origin(const char *a, const char *b) {
    bool same = false;
    CURLU *ua = curl_url(), *ub = curl_url();
    char *ha = NULL, *hb = NULL, *sa = NULL, *sb = NULL, *pa = NULL, *pb = NULL;
    if (ua != NULL && ub != NULL && curl_url_set(ua, CURLUPART_URL, a, 0) == CURLUE_OK &&
        curl_url_set(ub, CURLUPART_URL, b, 0) == CURLUE_OK &&
        curl_url_get(ua, CURLUPART_HOST, &ha, 0) == CURLUE_OK &&
        curl_url_get(ub, CURLUPART_HOST, &hb, 0) == CURLUE_OK &&
        curl_url_get(ua, CURLUPART_SCHEME, &sa, 0) == CURLUE_OK &&
        curl_url_get(ub, CURLUPART_SCHEME, &sb, 0) == CURLUE_OK &&
        curl_url_get(ua, CURLUPART_PORT, &pa, CURLU_DEFAULT_PORT) == CURLUE_OK &&
        curl_url_get(ub, CURLUPART_PORT, &pb, CURLU_DEFAULT_PORT) == CURLUE_OK)
        same = strcasecmp(ha, hb) == 0 && strcasecmp(sa, sb) == 0 && strcmp(pa, pb) == 0;
    curl_free(ha), curl_free(hb), curl_free(sa), curl_free(sb), curl_free(pa), curl_free(pb);
    curl_url_cleanup(ua);
    curl_url_cleanup(ub);
    return same;
}

/* Keeps the first checksum and size the chain of responses publishes. The Hub's own response
 * (the first) carries X-Linked-Etag / X-Linked-Size for LFS files; its ETag is the SHA-256 too.
 * A CDN's ETag further down the chain is something else and is ignored. */
static void collect_facts(transfer *t, int hop) {
    response_headers *h = &t->h;
    if (t->facts.sha256[0] == '\0' && h->linked_etag[0] != '\0')
        etag_to_sha256(h->linked_etag, t->facts.sha256);
    if (t->facts.sha256[0] == '\0' && hop == 0) etag_to_sha256(h->etag, t->facts.sha256);
    if (t->facts.size == 0 && h->has_linked_size) t->facts.size = h->linked_size;
}

const char *rt_url_for_log(const char *url, char *out, size_t size) {
    /* "scheme://" only at the start: not one inside a path or a query */
    const char *scheme_end = url + strcspn(url, ":/?#");
    const char *authority = strncmp(scheme_end, "://", 3) == 0 ? scheme_end + 3 : url;
    size_t authority_len = strcspn(authority, "/?#");
    const char *host = authority;
    for (size_t i = 0; i < authority_len; i++)
        if (authority[i] == '@') host = authority + i + 1;
    snprintf(out, size, "%.*s%.*s", (int)(authority - url), url, (int)strcspn(host, "?#"), host);
    return out;
}

static rt_status http_error(const rt_fetch_request *req, long status, const char *raw_url,
                            rt_error *err, bool *retryable) {
    *retryable = false;
    char buf[URL_SHOWN_MAX];
    const char *url = rt_url_for_log(raw_url, buf, sizeof buf);
    if (status == 404)
        return rt_set_error(err, RT_ERR_MODEL_NOT_FOUND, 0,
                            "not found on the Hub (HTTP 404): no such repository or file: %s", url);
    if ((status == 401 || status == 403) && !same_origin(req->url, raw_url))
        return rt_set_error(err, RT_ERR_UNAVAILABLE, 0,
                            "access denied (HTTP %ld) by the server the Hub redirected to (its "
                            "signed link may have expired; ask again): %s",
                            status, url);
    if (status == 401 || status == 403) {
        if (req->token == NULL || req->token[0] == '\0')
            return rt_set_error(err, RT_ERR_UNAVAILABLE, 0,
                                "access denied (HTTP %ld): the repository is gated or private; "
                                "it needs HF_TOKEN set to a token with access: %s",
                                status, url);
        return rt_set_error(err, RT_ERR_UNAVAILABLE, 0,
                            "access denied (HTTP %ld) with the HF_TOKEN given: the token has "
                            "no access to this gated or private repository: %s",
                            status, url);
    }
    *retryable = status == 408 || status == 429 || status >= 500;
    return rt_set_error(err, RT_ERR_UNAVAILABLE, 30, "the Hub answered HTTP %ld for %s", status,
                        url);
}

static rt_status fail_io(rt_error *err, const char *what, const char *path) {
    return rt_set_error(err, RT_ERR_INTERNAL, 0, "%s %s: %s", what, path, strerror(errno));
}

/* A write that failed; a full disk (or file-size limit) says what to do about it. */
static rt_status fail_write(rt_error *err, const char *part, int write_errno) {
    errno = write_errno;
    if (write_errno != ENOSPC && write_errno != EFBIG && write_errno != EDQUOT)
        return fail_io(err, "cannot write", part);
    return rt_set_error(err, RT_ERR_NO_SPACE, 0,
                        "not enough disk space to download %s (%s); free some space and ask again: "
                        "the download resumes where it stopped",
                        part, strerror(write_errno));
}

static rt_status sync_dir_of(const char *path, rt_error *err) {
    char dir[RT_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return fail_io(err, "cannot open folder", dir);
    int rc = fsync(fd);
    close(fd);
    return rc == 0 ? RT_OK : fail_io(err, "cannot sync folder", dir);
}

/* Checks the finished .part against what the Hub published, then makes it the final file. */
static rt_status finish_file(transfer *t, const char *part, rt_error *err, bool *retryable) {
    const rt_fetch_request *req = t->req;
    struct stat st;
    if (fstat(t->fd, &st) != 0) return fail_io(err, "cannot stat", part);
    uint64_t size = (uint64_t)st.st_size;
    if (t->facts.size != 0 && size < t->facts.size) {
        *retryable = true;
        return rt_set_error(err, RT_ERR_UNAVAILABLE, 30,
                            "the connection ended after %llu of %llu bytes",
                            (unsigned long long)size, (unsigned long long)t->facts.size);
    }
    if (t->facts.size != 0 && size > t->facts.size) {
        unlink(part);
        *retryable = true;
        return rt_set_error(err, RT_ERR_UNAVAILABLE, 30,
                            "the partial file is larger (%llu bytes) than the file (%llu bytes)",
                            (unsigned long long)size, (unsigned long long)t->facts.size);
    }
    atomic_store(&req->progress->phase, RT_DOWNLOAD_VERIFYING);
    if (t->facts.sha256[0] != '\0') {
        char actual[65];
        if (!rt_sha256_file(part, actual, err)) return err != NULL ? err->status : RT_ERR_INTERNAL;
        if (strcmp(actual, t->facts.sha256) != 0) {
            unlink(part);
            *retryable = true;
            return rt_set_error(err, RT_ERR_UNAVAILABLE, 30,
                                "checksum mismatch: the Hub publishes SHA-256 %s, the download "
                                "has %s; the file was discarded",
                                t->facts.sha256, actual);
        }
    } else {
        fl_log(FL_LOG_WARN, "%s: the Hub publishes no SHA-256 for it; only the size is checked",
               req->dest);
    }
    if (fsync(t->fd) != 0) return fail_io(err, "cannot sync", part);
    if (rename(part, req->dest) != 0) return fail_io(err, "cannot rename into", req->dest);
    return sync_dir_of(req->dest, err);
}

static rt_status network_error(CURLcode rc, const char *errbuf, const char *url, rt_error *err,
                               bool *retryable) {
    *retryable = true;
    char buf[URL_SHOWN_MAX];
    return rt_set_error(err, RT_ERR_UNAVAILABLE, 30, "network error fetching %s: %s",
                        rt_url_for_log(url, buf, sizeof buf),
                        errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
}

/* One attempt: follows redirects to the file's body, appends it to the .part, verifies. */
static rt_status attempt_once(const rt_fetch_request *req, CURL *c, rt_error *err,
                              bool *retryable) {
    char part[RT_PATH_MAX];
    if ((size_t)snprintf(part, sizeof part, "%s.part", req->dest) >= sizeof part)
        return rt_set_error(err, RT_ERR_INTERNAL, 0, "path too long: %s", req->dest);
    transfer t = {.req = req, .rate_t = rt_now()};
    t.fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (t.fd < 0) return fail_io(err, "cannot create", part);
    struct stat st;
    rt_status status = RT_OK;
    char *url = strdup(req->url);
    const char *token = req->token;
    *retryable = false;
    if (url == NULL || fstat(t.fd, &st) != 0 || lseek(t.fd, 0, SEEK_END) < 0) {
        status = rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot open %s", part);
        goto out;
    }
    t.offset = (uint64_t)st.st_size;
    t.rate_bytes = t.offset;
    atomic_store(&req->progress->bytes, t.offset);
    char errbuf[CURL_ERROR_SIZE];
    for (int hop = 0;; hop++) {
        if (hop > MAX_REDIRECTS) {
            char buf[URL_SHOWN_MAX];
            status = rt_set_error(err, RT_ERR_UNAVAILABLE, 0, "too many redirects from %s",
                                  rt_url_for_log(req->url, buf, sizeof buf));
            goto out;
        }
        body_gate gate = {.t = &t, .err = err, .retryable = retryable};
        errbuf[0] = '\0';
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
        CURLcode rc = perform(c, url, token, &gate);
        if (gate.refused) {
            status = err != NULL ? err->status : RT_ERR_UNAVAILABLE;
            goto out;
        }
        if (rc == CURLE_ABORTED_BY_CALLBACK && cancelled(req)) {
            status = rt_set_error(err, RT_ERR_UNAVAILABLE, 0, "download cancelled");
            goto out;
        }
        if (t.write_failed) {
            status = fail_write(err, part, t.write_errno);
            goto out;
        }
        if (rc != CURLE_OK) {
            status = network_error(rc, errbuf, url, err, retryable);
            goto out;
        }
        collect_facts(&t, hop);
        long code = t.h.status;
        if (code >= 300 && code < 400 && t.h.location[0] != '\0') {
            char *next = resolve_location(url, t.h.location);
            if (next == NULL) {
                char buf[URL_SHOWN_MAX];
                status = rt_set_error(err, RT_ERR_UNAVAILABLE, 0, "bad redirect to '%.200s'",
                                      rt_url_for_log(t.h.location, buf, sizeof buf));
                goto out;
            }
            if (!same_origin(url, next)) token = NULL; /* never hand the token to another host */
            free(url);
            url = strdup(next);
            curl_free(next);
            if (url == NULL) {
                status = rt_set_error(err, RT_ERR_INTERNAL, 0, "out of memory");
                goto out;
            }
            continue;
        }
        if (code == 416 && t.offset > 0) {
            /* Nothing left to send: the .part may already be whole. */
            if (t.facts.size == 0 && t.h.has_range_total) t.facts.size = t.h.range_total;
            break;
        }
        if (code == 200 || code == 206) break;
        status = http_error(req, code, url, err, retryable);
        goto out;
    }
    status = finish_file(&t, part, err, retryable);
out:
    free(url);
    if (t.fd >= 0) close(t.fd);
    return status;
}

/* Sleeps `seconds`, waking early when the fetch is cancelled. */
static void backoff_sleep(const rt_fetch_request *req, double seconds) {
    double end = rt_now() + seconds;
    while (!cancelled(req) && rt_now() < end) {
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

static double jitter(uint64_t *state) {
    /* xorshift64: a private generator, no shared state. */
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (double)(*state >> 11) / (double)(1ULL << 53);
}

/* A failure before any byte arrived leaves nothing worth resuming. */
static void remove_empty_part(const char *dest) {
    char part[RT_PATH_MAX];
    struct stat st;
    if ((size_t)snprintf(part, sizeof part, "%s.part", dest) < sizeof part &&
        stat(part, &st) == 0 && st.st_size == 0)
        unlink(part);
}

rt_status rt_fetch(const rt_fetch_request *req, rt_error *err) {
    rt_fetch_progress *p = req->progress;
    CURL *c = curl_easy_init();
    if (c == NULL) return rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot start libcurl");
    uint64_t seed =
        (uint64_t)(uintptr_t)req ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(rt_now() * 1e9);
    seed |= 1;
    rt_status status = RT_OK;
    double delay = req->backoff_s;
    for (int attempt = 1;; attempt++) {
        atomic_store(&p->attempt, attempt);
        atomic_store(&p->phase, RT_DOWNLOAD_RUNNING);
        bool retryable = false;
        status = attempt_once(req, c, err, &retryable);
        if (status == RT_OK || !retryable || attempt > req->retries || cancelled(req)) break;
        double wait = delay * (0.5 + jitter(&seed));
        if (wait > MAX_BACKOFF_S) wait = MAX_BACKOFF_S;
        fl_log(FL_LOG_WARN, "%s: attempt %d of %d failed (%s); retrying in %.1f s", req->dest,
               attempt, req->retries + 1, err != NULL ? err->message : "error", wait);
        backoff_sleep(req, wait);
        delay *= 2;
    }
    curl_easy_cleanup(c);
    if (status != RT_OK) remove_empty_part(req->dest);
    atomic_store(&p->phase, status == RT_OK ? RT_DOWNLOAD_DONE : RT_DOWNLOAD_FAILED);
    if (status == RT_OK) atomic_store(&p->total, atomic_load(&p->bytes));
    if (req->report != NULL) req->report(req->report_user, p, true);
    return status;
}

bool rt_sha256_file(const char *path, char hex[65], rt_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail_io(err, "cannot open", path);
        return false;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = malloc(CHUNK);
    ok = ok && buf != NULL;
    while (ok) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        ok = EVP_DigestUpdate(ctx, buf, (size_t)n) == 1;
    }
    unsigned char md[32];
    unsigned int md_len = 0;
    ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) == 1 && md_len == 32;
    if (ok)
        for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    else
        rt_set_error(err, RT_ERR_INTERNAL, 0, "cannot compute the SHA-256 of %s", path);
    free(buf);
    EVP_MD_CTX_free(ctx);
    close(fd);
    return ok;
}

#include "server/http.h"

#include <ctype.h>
#include <microhttpd.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/multipart.h"
#include "server/router.h"
#include "util/buf.h"
#include "util/log.h"

/* Bytes of an oversized body read and dropped before the connection is cut instead. */
#define MAX_DISCARD_BYTES (64ull * 1024 * 1024)

/* A client connection while it is sending a request: the watchdog cuts it when the request
 * is not complete within the client timeout, counted from its first byte. MHD's connection
 * timeout is about inactivity, and what counts as activity is the library's choice: a client
 * sending a byte every few seconds (slowloris) must not be able to hold its thread for ever. */
typedef struct conn_watch {
    int fd;
    double receiving_since; /* monotonic seconds; 0 = the request is complete (no deadline) */
    struct conn_watch *prev, *next;
} conn_watch;

struct http_server {
    struct MHD_Daemon *daemon;
    const api_ctx *ctx;
    http_options opts;
    char api_key[256];
    char cors_origin[1024];
    int port;
    atomic_uint_fast64_t next_request;
    atomic_int active_requests; /* from the first header to the completion callback */
    atomic_bool draining;       /* shutting down: new requests get 503 */
    pthread_mutex_t watch_mu;   /* guards the list below and watch_stop */
    pthread_cond_t watch_cv;
    conn_watch *watched;
    bool watch_stop, has_watchdog;
    pthread_t watchdog;
};

/* One request, from its first header to its completion callback. */
typedef struct request_state {
    http_server *srv;
    char id[32];
    struct timespec start;
    char method[16];
    char path[256];
    char model[256];
    int status;
    bool answered; /* a response was queued before the body was read */
    bool too_large;
    uint64_t discarded; /* bytes of a too-large body thrown away */
    int fd;
    fl_buf body;
} request_state;

/* A streamed body and whether it reached its end. Owned by the MHD response. */
typedef struct stream_box {
    api_stream *stream;
    bool finished;
} stream_box;

static double elapsed_ms(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) * 1e3 +
           (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

static void copy_str(char *dst, size_t size, const char *src) {
    snprintf(dst, size, "%s", src ? src : "");
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- the slow-client watchdog ---- */

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    http_server *srv = cls;
    conn_watch *w = *socket_context;
    pthread_mutex_lock(&srv->watch_mu);
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        w = info != NULL ? calloc(1, sizeof *w) : NULL;
        if (w != NULL) { /* without memory the connection just goes unwatched */
            w->fd = info->connect_fd;
            w->receiving_since = now_s();
            w->next = srv->watched;
            if (srv->watched != NULL) srv->watched->prev = w;
            srv->watched = w;
        }
        *socket_context = w;
    } else if (w != NULL) {
        if (w->prev != NULL)
            w->prev->next = w->next;
        else
            srv->watched = w->next;
        if (w->next != NULL) w->next->prev = w->prev;
        free(w);
        *socket_context = NULL;
    }
    pthread_mutex_unlock(&srv->watch_mu);
}

/* Starts (receiving = true) or ends the deadline of the connection's current request. */
static void watch_mark(http_server *srv, struct MHD_Connection *c, bool receiving) {
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_watch *w = info != NULL ? info->socket_context : NULL;
    if (w == NULL) return;
    pthread_mutex_lock(&srv->watch_mu);
    w->receiving_since = receiving ? now_s() : 0;
    pthread_mutex_unlock(&srv->watch_mu);
}

/* Shuts down the sockets of clients that took longer than the client timeout to send their
 * request (or stayed idle that long between two). The connection's thread then sees the
 * socket closed and ends it; the fd stays valid while it is in the list (the close
 * notification takes the same lock). */
static void *watchdog_main(void *arg) {
    http_server *srv = arg;
    double limit = srv->opts.connection_timeout_s;
    double period = limit / 4 < 1 ? limit / 4 : 1;
    pthread_mutex_lock(&srv->watch_mu);
    while (!srv->watch_stop) {
        double now = now_s();
        for (conn_watch *w = srv->watched; w != NULL; w = w->next) {
            if (w->receiving_since > 0 && now - w->receiving_since > limit) {
                fl_log(FL_LOG_WARN, "closing a connection that sent no complete request in %.0f s",
                       limit);
                shutdown(w->fd, SHUT_RDWR);
                w->receiving_since = 0;
            }
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        double t = (double)until.tv_nsec / 1e9 + period;
        until.tv_sec += (time_t)t;
        until.tv_nsec = (long)((t - (double)(time_t)t) * 1e9);
        pthread_cond_timedwait(&srv->watch_cv, &srv->watch_mu, &until);
    }
    pthread_mutex_unlock(&srv->watch_mu);
    return NULL;
}

/* ---- authentication and CORS ---- */

static void sha256(const char *s, size_t n, unsigned char out[32]) {
    unsigned int len = 32;
    if (EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) != 1) memset(out, 0, 32);
}

bool http_auth_ok(const char *authorization, const char *api_key) {
    if (api_key == NULL || api_key[0] == '\0') return true;
    if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0) return false;
    const char *presented = authorization + 7;
    while (*presented == ' ') presented++;
    size_t n = strlen(presented);
    while (n > 0 && presented[n - 1] == ' ') n--;
    /* Comparing digests takes the same time whatever the lengths and contents. */
    unsigned char a[32], b[32];
    sha256(presented, n, a);
    sha256(api_key, strlen(api_key), b);
    return CRYPTO_memcmp(a, b, sizeof a) == 0 && n > 0;
}

const char *http_cors_allow(const char *cors_origin, const char *origin) {
    if (strcmp(cors_origin, "*") == 0) return "*";
    if (origin == NULL || origin[0] == '\0') return NULL;
    size_t olen = strlen(origin);
    const char *p = cors_origin;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',') p++;
        size_t n = strcspn(p, ", ");
        if (n > 0 && n == olen && strncmp(p, origin, n) == 0) return origin;
        p += n;
    }
    return NULL;
}

/* ---- responses ---- */

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    stream_box *box = cls;
    ssize_t n = box->stream->read(box->stream, buf, max);
    if (n > 0) return n;
    if (n == 0) {
        box->finished = true;
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls) {
    stream_box *box = cls;
    box->stream->close(box->stream, box->finished);
    free(box);
}

static void add_cors_headers(const http_server *srv, struct MHD_Connection *c,
                             struct MHD_Response *r) {
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    const char *allow = http_cors_allow(srv->cors_origin, origin);
    if (allow == NULL) return;
    MHD_add_response_header(r, "Access-Control-Allow-Origin", allow);
    MHD_add_response_header(r, "Access-Control-Expose-Headers", "X-Request-Id, Retry-After");
    if (strcmp(allow, "*") != 0) MHD_add_response_header(r, "Vary", "Origin");
}

/* Queues res on the connection; takes ownership of its body or stream. */
static enum MHD_Result send_response(request_state *st, struct MHD_Connection *c,
                                     api_response *res) {
    struct MHD_Response *r;
    if (res->stream != NULL) {
        stream_box *box = malloc(sizeof *box);
        r = box ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, box,
                                                    stream_free)
                : NULL;
        if (r == NULL) {
            free(box);
            api_response_free(res);
            return MHD_NO;
        }
        box->stream = res->stream;
        box->finished = false;
        res->stream = NULL;
        MHD_add_response_header(r, "Cache-Control", "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
    } else {
        r = MHD_create_response_from_buffer(res->body_len, res->body, MHD_RESPMEM_MUST_FREE);
        if (r == NULL) {
            api_response_free(res);
            return MHD_NO;
        }
        res->body = NULL;
    }
    if (res->content_type != NULL) MHD_add_response_header(r, "Content-Type", res->content_type);
    MHD_add_response_header(r, "X-Request-Id", st->id);
    if (res->allow != NULL) MHD_add_response_header(r, "Allow", res->allow);
    if (res->retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof secs, "%d", res->retry_after);
        MHD_add_response_header(r, "Retry-After", secs);
    }
    add_cors_headers(st->srv, c, r);
    st->status = res->status;
    copy_str(st->model, sizeof st->model, res->model);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)res->status, r);
    MHD_destroy_response(r);
    api_response_free(res);
    return ok;
}

static enum MHD_Result send_preflight(request_state *st, struct MHD_Connection *c) {
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (r == NULL) return MHD_NO;
    add_cors_headers(st->srv, c, r);
    MHD_add_response_header(r, "Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    const char *asked =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Access-Control-Request-Headers");
    bool echo = asked != NULL && strlen(asked) < 1024;
    MHD_add_response_header(r, "Access-Control-Allow-Headers",
                            echo ? asked : "Authorization, Content-Type");
    MHD_add_response_header(r, "Access-Control-Max-Age", "600");
    MHD_add_response_header(r, "Allow", "GET, POST, OPTIONS");
    MHD_add_response_header(r, "X-Request-Id", st->id);
    st->status = 204;
    enum MHD_Result ok = MHD_queue_response(c, 204, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result send_error(request_state *st, struct MHD_Connection *c, int status,
                                  const char *code, const char *allow, const char *fmt,
                                  const char *arg) {
    api_response res = {0};
    api_error(&res, status, NULL, code, fmt, arg);
    res.allow = allow;
    return send_response(st, c, &res);
}

static enum MHD_Result send_too_large(request_state *st, struct MHD_Connection *c) {
    char limit[32];
    snprintf(limit, sizeof limit, "%lld", (long long)st->srv->opts.max_body_bytes);
    return send_error(st, c, 413, "request_too_large", NULL,
                      "The request body is larger than the limit of %s bytes.", limit);
}

/* ---- the request handler ---- */

static bool client_gone(void *conn) {
    const request_state *st = conn;
    if (st->fd < 0) return false;
    struct pollfd p = {.fd = st->fd, .events = POLLRDHUP};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/* The media type of a Content-Type value, lower-case, without parameters. */
static void media_type(const char *content_type, char *out, size_t size) {
    size_t n = 0;
    const char *p = content_type ? content_type : "";
    while (*p == ' ') p++;
    while (p[n] != '\0' && p[n] != ';' && p[n] != ' ' && n + 1 < size) {
        out[n] = (char)tolower((unsigned char)p[n]);
        n++;
    }
    out[n] = '\0';
}

static request_state *request_begin(http_server *srv, struct MHD_Connection *c, const char *url,
                                    const char *method) {
    request_state *st = calloc(1, sizeof *st);
    if (st == NULL) return NULL;
    st->srv = srv;
    clock_gettime(CLOCK_MONOTONIC, &st->start);
    snprintf(st->id, sizeof st->id, "req_%06llu",
             (unsigned long long)atomic_fetch_add(&srv->next_request, 1));
    copy_str(st->method, sizeof st->method, method);
    copy_str(st->path, sizeof st->path, url);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    st->fd = info ? info->connect_fd : -1;
    return st;
}

/* Checks that need only the headers: route, method, key, declared size. Queues an error and
 * returns true when the request is answered already. */
static bool answer_early(request_state *st, struct MHD_Connection *c, const char *url,
                         const char *method, enum MHD_Result *result) {
    http_server *srv = st->srv;
    if (strcmp(method, "OPTIONS") == 0) {
        *result = send_preflight(st, c);
        return true;
    }
    /* Before routing, so that without the key /v1 does not even tell which paths exist. */
    if (srv->api_key[0] != '\0' && router_path_needs_auth(url) &&
        !http_auth_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
                      srv->api_key)) {
        *result = send_error(st, c, 401, "invalid_api_key", NULL, "%s",
                             "Incorrect or missing API key: send 'Authorization: Bearer KEY'.");
        return true;
    }
    const route *r;
    const char *param;
    char allow[64];
    switch (router_find(method, url, &r, &param, allow, sizeof allow)) {
    case ROUTE_NOT_FOUND:
        *result = send_error(st, c, 404, "unknown_url", NULL, "Unknown request URL: %s.", url);
        return true;
    case ROUTE_BAD_METHOD:
        *result = send_error(st, c, 405, "method_not_allowed", allow,
                             "Method %s is not allowed here.", method);
        return true;
    case ROUTE_FOUND:
        break;
    }
    const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (length != NULL &&
        strtoull(length, NULL, 10) > (unsigned long long)srv->opts.max_body_bytes) {
        *result = send_too_large(st, c);
        return true;
    }
    return false;
}

/* Runs the route's handler on the complete request. */
static enum MHD_Result dispatch(request_state *st, struct MHD_Connection *c, const char *url,
                                const char *method) {
    const route *r;
    const char *param;
    char allow[64];
    if (router_find(method, url, &r, &param, allow, sizeof allow) != ROUTE_FOUND)
        return send_error(st, c, 404, "unknown_url", NULL, "Unknown request URL: %s.", url);
    char type[128];
    const char *content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    media_type(content_type, type, sizeof type);
    if (!fl_buf_append(&st->body, "", 0)) return MHD_NO;

    api_form *form = NULL;
    if (strcmp(type, "multipart/form-data") == 0) {
        char boundary[MP_MAX_BOUNDARY + 1], err[128];
        form = malloc(sizeof *form);
        if (form == NULL) return MHD_NO;
        if (!mp_boundary(content_type, boundary, sizeof boundary)) {
            free(form);
            return send_error(st, c, 400, "invalid_multipart", NULL, "%s",
                              "The multipart/form-data Content-Type has no valid boundary.");
        }
        if (!mp_parse(st->body.data, st->body.len, boundary, form, err, sizeof err)) {
            free(form);
            return send_error(st, c, 400, "invalid_multipart", NULL,
                              "The multipart/form-data body is malformed: %s.", err);
        }
    }
    api_request req = {
        .method = method,
        .path = url,
        .route_param = param,
        .content_type = type,
        .body = st->body.data,
        .body_len = st->body.len,
        .form = form,
        .request_id = st->id,
        .client_gone = client_gone,
        .conn = st,
    };
    api_response res = {.status = 500};
    r->handler(st->srv->ctx, &req, &res);
    free(form);
    /* A stream reads nothing from the request; a plain body must not either after this. */
    enum MHD_Result ok = send_response(st, c, &res);
    fl_buf_free(&st->body);
    return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    http_server *srv = cls;
    request_state *st = *con_cls;
    if (st == NULL) {
        st = request_begin(srv, c, url, method);
        if (st == NULL) return MHD_NO;
        *con_cls = st;
        atomic_fetch_add(&srv->active_requests, 1);
        enum MHD_Result result;
        if (atomic_load(&srv->draining)) {
            st->answered = true;
            return send_error(st, c, 503, "server_shutting_down", NULL, "%s",
                              "The server is shutting down.");
        }
        if (answer_early(st, c, url, method, &result)) {
            st->answered = true;
            return result;
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (st->answered) { /* the answer is queued: discard what the client still sends */
            *upload_data_size = 0;
            return MHD_YES;
        }
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (st->too_large || st->body.len + n > (size_t)srv->opts.max_body_bytes) {
            /* A body without Content-Length that outgrew the limit: MHD can answer only once
             * the body is read, so the rest is discarded (up to a bound, then the connection
             * is dropped) and 413 is sent at the end. */
            if (!st->too_large) fl_buf_free(&st->body);
            st->too_large = true;
            st->discarded += n;
            return st->discarded > MAX_DISCARD_BYTES ? MHD_NO : MHD_YES;
        }
        return fl_buf_append(&st->body, upload_data, n) ? MHD_YES : MHD_NO;
    }
    watch_mark(srv, c, false); /* the request is complete: no deadline while it is answered */
    if (st->answered) return MHD_YES;
    if (st->too_large) return send_too_large(st, c);
    return dispatch(st, c, url, method);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    http_server *srv = cls;
    watch_mark(srv, c, true); /* the next request on this connection is awaited */
    request_state *st = *con_cls;
    if (st == NULL) return;
    *con_cls = NULL;
    atomic_fetch_sub(&srv->active_requests, 1);
    const char *how = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK      ? ""
                      : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT    ? " client-aborted"
                      : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " timed-out"
                      : st->too_large                                 ? " body-too-large"
                                                                      : " aborted";
    fl_log(toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? FL_LOG_INFO : FL_LOG_WARN,
           "%s %s %s %d %.1fms%s%s%s", st->id, st->method, st->path, st->status,
           elapsed_ms(&st->start), st->model[0] ? " model=" : "", st->model, how);
    fl_buf_free(&st->body);
    free(st);
}

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
    fl_log(FL_LOG_DEBUG, "http: %s", line);
}

/* ---- start and stop ---- */

static bool resolve(const char *host, int port, struct sockaddr_storage *addr, socklen_t *len,
                    fluid_error *err) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *list = NULL;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &list);
    if (rc != 0 || list == NULL) {
        fl_set_error(err, FLUID_ERR_ARGUMENT, "cannot resolve host '%s': %s", host,
                     gai_strerror(rc));
        return false;
    }
    memcpy(addr, list->ai_addr, list->ai_addrlen);
    *len = list->ai_addrlen;
    freeaddrinfo(list);
    return true;
}

static void free_server(http_server *srv) {
    pthread_mutex_destroy(&srv->watch_mu);
    pthread_cond_destroy(&srv->watch_cv);
    free(srv);
}

http_server *http_start(const http_options *opts, const api_ctx *ctx, fluid_error *err) {
    http_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL) {
        fl_set_error(err, FLUID_ERR_NOMEM, "out of memory");
        return NULL;
    }
    srv->ctx = ctx;
    srv->opts = *opts;
    copy_str(srv->api_key, sizeof srv->api_key, opts->api_key);
    copy_str(srv->cors_origin, sizeof srv->cors_origin,
             opts->cors_origin ? opts->cors_origin : "*");
    atomic_init(&srv->next_request, 1);
    struct sockaddr_storage addr;
    socklen_t addr_len;
    atomic_init(&srv->active_requests, 0);
    atomic_init(&srv->draining, false);
    pthread_mutex_init(&srv->watch_mu, NULL);
    pthread_cond_init(&srv->watch_cv, NULL);
    if (!resolve(opts->host, opts->port, &addr, &addr_len, err)) {
        free_server(srv);
        return NULL;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (addr.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)opts->port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_CONNECTION_LIMIT, (unsigned)opts->max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)opts->connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        srv, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        fl_set_error(err, FLUID_ERR_IO, "cannot listen on %s:%d (address in use or not allowed)",
                     opts->host, opts->port);
        free_server(srv);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : opts->port;
    if (pthread_create(&srv->watchdog, NULL, watchdog_main, srv) != 0) {
        fl_set_error(err, FLUID_ERR_NOMEM, "cannot start the connection watchdog thread");
        http_stop(srv);
        return NULL;
    }
    srv->has_watchdog = true;
    return srv;
}

int http_port(const http_server *srv) {
    return srv->port;
}

void http_begin_drain(http_server *srv) {
    if (srv == NULL || srv->daemon == NULL || atomic_exchange(&srv->draining, true)) return;
    /* Closing the listening socket makes new clients see "connection refused" at once rather
     * than wait in the backlog of a socket nobody accepts from. */
    MHD_socket listener = MHD_quiesce_daemon(srv->daemon);
    if (listener != MHD_INVALID_SOCKET) close(listener);
}

int http_active_requests(http_server *srv) {
    return srv != NULL ? atomic_load(&srv->active_requests) : 0;
}

void http_stop(http_server *srv) {
    if (srv == NULL) return;
    if (srv->has_watchdog) {
        pthread_mutex_lock(&srv->watch_mu);
        srv->watch_stop = true;
        pthread_cond_signal(&srv->watch_cv);
        pthread_mutex_unlock(&srv->watch_mu);
        pthread_join(srv->watchdog, NULL);
    }
    if (srv->daemon != NULL) MHD_stop_daemon(srv->daemon);
    free_server(srv);
}

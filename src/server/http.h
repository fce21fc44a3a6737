/* The HTTP server: libmicrohttpd with one thread per connection (a slow stream never blocks
 * another request), keep-alive, body limits, CORS, API-key check, request log. */
#ifndef FLUID_SERVER_HTTP_H
#define FLUID_SERVER_HTTP_H

#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"
#include "util/error.h"

typedef struct http_options {
    const char *host;
    int port;            /* 0 = any free port */
    const char *api_key; /* NULL or "" = no authentication */
    const char *cors_origin;
    int64_t max_body_bytes;
    int max_connections;      /* more are refused at once */
    int connection_timeout_s; /* a client's time to send a whole request; most silence allowed */
} http_options;

typedef struct http_server http_server;

/* Starts listening; ctx must outlive the server. */
http_server *http_start(const http_options *opts, const api_ctx *ctx, fluid_error *err);
/* The port actually bound (useful with port 0). */
int http_port(const http_server *srv);
/* Starts a graceful drain: the listening socket is closed (new clients are refused) and new
 * requests on open connections get 503; requests in flight go on. */
void http_begin_drain(http_server *srv);
/* Requests received and not yet completed (streams included). */
int http_active_requests(http_server *srv);
/* Stops and waits for every connection thread. */
void http_stop(http_server *srv);

/* Compares a presented Authorization header with the key in constant time. */
bool http_auth_ok(const char *authorization, const char *api_key);

/* The Access-Control-Allow-Origin value for a request's Origin header, or NULL for none. */
const char *http_cors_allow(const char *cors_origin, const char *origin);

#endif

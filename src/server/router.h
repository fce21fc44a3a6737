/* The route table: method + path -> API handler. */
#ifndef FLUID_SERVER_ROUTER_H
#define FLUID_SERVER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"

typedef struct route {
    const char *method;
    const char *path; /* exact path, or a prefix ending in '/' when prefix is true */
    bool prefix;
    api_handler handler;
} route;

typedef enum route_match {
    ROUTE_FOUND,
    ROUTE_NOT_FOUND,
    ROUTE_BAD_METHOD, /* the path exists with other methods: see allow */
} route_match;

/* Finds the route for method and path. On ROUTE_FOUND *found is set and *param points to the
 * rest of the path after a prefix route ("" for exact routes). On ROUTE_BAD_METHOD allow gets
 * the methods the path supports, e.g. "GET, OPTIONS". HEAD is answered as GET. */
route_match router_find(const char *method, const char *path, const route **found,
                        const char **param, char *allow, size_t allow_size);

/* True when path is under /v1: with an API key set, every method on such a path (routes,
 * unknown paths and wrong methods alike; not the CORS preflight) needs the key. */
bool router_path_needs_auth(const char *path);

/* The route table itself (for tests that must cover every route). */
const route *router_routes(size_t *n);

#endif

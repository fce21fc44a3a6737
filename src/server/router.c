#include "server/router.h"

#include <stdio.h>
#include <string.h>

static const route routes[] = {
    {"GET", "/", false, api_root},
    {"GET", "/health", false, api_health},
    {"GET", "/openapi.json", false, api_openapi_json},
    {"GET", "/docs", false, api_docs},
    {"GET", "/v1/models", false, api_models_list},
    {"POST", "/v1/models/download", false, api_models_download},
    {"GET", "/v1/models/", true, api_models_get},
    {"POST", "/v1/chat/completions", false, api_chat_completions},
    {"POST", "/v1/completions", false, api_completions},
    {"POST", "/v1/audio/transcriptions", false, api_audio_transcriptions},
    {"POST", "/v1/audio/translations", false, api_audio_translations},
    {"POST", "/v1/embeddings", false, api_embeddings},
};

static bool path_matches(const route *r, const char *path, const char **param) {
    if (r->prefix) {
        size_t n = strlen(r->path);
        if (strncmp(path, r->path, n) != 0 || path[n] == '\0') return false;
        *param = path + n;
        return true;
    }
    *param = "";
    return strcmp(path, r->path) == 0;
}

route_match router_find(const char *method, const char *path, const route **found,
                        const char **param, char *allow, size_t allow_size) {
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;
    bool path_known = false;
    size_t used = 0;
    if (allow_size > 0) allow[0] = '\0';
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const char *p;
        if (!path_matches(&routes[i], path, &p)) continue;
        if (strcmp(routes[i].method, m) == 0) {
            *found = &routes[i];
            *param = p;
            return ROUTE_FOUND;
        }
        path_known = true;
        if (!strstr(allow, routes[i].method) && used < allow_size) {
            int n = snprintf(allow + used, allow_size - used, "%s, ", routes[i].method);
            if (n > 0) used += (size_t)n;
        }
    }
    if (!path_known) return ROUTE_NOT_FOUND;
    if (used < allow_size) snprintf(allow + used, allow_size - used, "OPTIONS");
    return ROUTE_BAD_METHOD;
}

bool router_path_needs_auth(const char *path) {
    return strncmp(path, "/v1/", 4) == 0 || strcmp(path, "/v1") == 0;
}

const route *router_routes(size_t *n) {
    *n = sizeof routes / sizeof routes[0];
    return routes;
}

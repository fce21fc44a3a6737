/* GET /openapi.json and GET /docs: the OpenAPI document of every route and a page, with no
 * outside resources, that renders it. */
#include <string.h>

#include "api/json.h"

/* src/api/openapi.json, compiled in by cmake/embed.cmake; info.version is set when served. */
extern const char api_openapi_document[];
extern const unsigned long api_openapi_document_size;

void api_openapi_json(const api_ctx *ctx, const api_request *req, api_response *res) {
    (void)req;
    json_error_t jerr;
    json_t *doc = json_loadb(api_openapi_document, api_openapi_document_size, 0, &jerr);
    json_t *info = json_object_get(doc, "info");
    if (info == NULL) {
        api_error(res, 500, NULL, "internal_error", "The built-in OpenAPI document is invalid: %s",
                  jerr.text);
        json_decref(doc);
        return;
    }
    json_object_set_new(info, "version", json_string(ctx->version));
    api_set_json(res, 200, doc);
}

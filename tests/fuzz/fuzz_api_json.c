/* The JSON request parsers: the body of a POST /v1/chat/completions and /v1/completions, handed
 * to the handlers as the router does (no HTTP server), and to the shared readers
 * api_parse_object and api_parse_gen_params directly. No model exists, so a request that
 * passes validation ends in the runtime's "model not found" answer. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/gen.h"
#include "api/json.h"
#include "harness.h"

/* Every answer is a status and, but for a stream, a JSON body. */
static void check_response(const api_response *res) {
    fz_check(res->status >= 200 && res->status < 600, "a response has an HTTP status");
    if (res->stream != NULL) return;
    json_t *doc = json_loadb(res->body, res->body_len, 0, NULL);
    fz_check(doc != NULL, "a response body is JSON");
    json_decref(doc);
}

static void call(api_handler handler, const api_request *req) {
    api_response res = {0};
    handler(fz_api_ctx(), req, &res);
    check_response(&res);
    api_response_free(&res);
}

static void parse_gen_params(const api_request *req) {
    api_response res = {0};
    json_t *body = api_parse_object(req, &res);
    if (body != NULL) {
        api_gen_params *p = malloc(sizeof *p); /* large: not on the stack */
        fz_check(p != NULL, "memory for the parameters");
        memset(p, 0, sizeof *p);
        if (!api_parse_gen_params(body, &fz_api_ctx()->limits, p, &res)) check_response(&res);
        free(p);
        json_decref(body);
    } else {
        check_response(&res);
    }
    api_response_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *body = malloc(size + 1); /* handlers get NUL-terminated bodies */
    fz_check(body != NULL, "memory for the body");
    if (size > 0) memcpy(body, data, size);
    body[size] = '\0';
    api_request req = {.method = "POST",
                       .path = "/v1/chat/completions",
                       .route_param = "",
                       .content_type = "application/json",
                       .body = body,
                       .body_len = size,
                       .request_id = "req_fuzz"};
    parse_gen_params(&req);
    call(api_chat_completions, &req);
    req.path = "/v1/completions";
    call(api_completions, &req);
    free(body);
    return 0;
}

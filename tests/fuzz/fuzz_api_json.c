/* The JSON request parsers: the body of a POST /v1/chat/completions and /v1/completions, handed
 * to the handlers as the router does (no HTTP server), and to the shared readers
 * api_parse_object and api_parse_gen_params directly. No model exists, so a request that
 * passes validation ends in the runtime's "model not found" answer. */
#include <stdlib.h>
#include <string.h>

#include "api/gen.h"
#include "api/json.h"
#include "harness.h"

static void parse_gen_params(const api_request *req) {
    api_response res = {0};
    json_t *body = api_parse_object(req, &res);
    if (body != NULL) {
        api_gen_params *p = malloc(sizeof *p); /* large: not on the stack */
        fz_check(p != NULL, "memory for the parameters");
        memset(p, 0, sizeof *p);
        if (!api_parse_gen_params(body, &fz_api_ctx()->limits, p, &res))
            fz_check_response(&res, true);
        free(p);
        json_decref(body);
    } else {
        fz_check_response(&res, true);
    }
    api_response_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *body = fz_copy(data, size); /* handlers get NUL-terminated bodies */
    api_request req = fz_post("/v1/chat/completions", "application/json", body, size);
    parse_gen_params(&req);
    fz_api_call(api_chat_completions, &req, true);
    req.path = "/v1/completions";
    fz_api_call(api_completions, &req, true);
    free(body);
    return 0;
}

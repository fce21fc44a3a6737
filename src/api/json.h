/* Reading request JSON with exact errors: every getter names the parameter it rejects. */
#ifndef FLUID_API_JSON_H
#define FLUID_API_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/api.h"

/* Serialises doc (reference stolen) as the response body. */
bool api_set_json(api_response *res, int status, json_t *doc);

/* A JSON string of len bytes; invalid UTF-8 sequences become U+FFFD. NULL only without memory. */
json_t *api_json_text(const char *s, size_t len);

/* Parses the request body as a JSON object; on failure fills res (415 for another content type,
 * 400 for bad JSON or a non-object) and returns NULL. */
json_t *api_parse_object(const api_request *req, api_response *res);

/* Field getters. An absent or null field leaves *out as it was and returns true with
 * *present = false (present may be NULL). A field of the wrong type or out of range fills res
 * with a 400 naming the field and returns false. */
bool api_get_bool(json_t *obj, const char *key, bool *out, bool *present, api_response *res);
bool api_get_number(json_t *obj, const char *key, double min, double max, double *out,
                    bool *present, api_response *res);
bool api_get_int(json_t *obj, const char *key, int64_t min, int64_t max, int64_t *out,
                 bool *present, api_response *res);
/* *out points into obj (valid while obj lives). Strings longer than max_len are rejected. */
bool api_get_string(json_t *obj, const char *key, size_t max_len, const char **out, bool *present,
                    api_response *res);

#endif

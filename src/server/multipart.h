/* A bounded multipart/form-data parser (RFC 7578) over a body held in memory. */
#ifndef FLUID_SERVER_MULTIPART_H
#define FLUID_SERVER_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "api/api.h"

#define MP_MAX_BOUNDARY 70

/* Copies the boundary parameter of a Content-Type value into out (size > MP_MAX_BOUNDARY).
 * False when there is none or it is invalid. */
bool mp_boundary(const char *content_type, char *out, size_t out_size);

/* Splits body into form->parts (pointing into body). False with a message in err when the body
 * is malformed, has more than API_FORM_MAX_PARTS parts or headers longer than allowed. */
bool mp_parse(const char *body, size_t len, const char *boundary, api_form *form, char *err,
              size_t err_size);

#endif

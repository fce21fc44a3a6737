/* multipart/form-data uploads as the HTTP layer reads them: the boundary taken from a Content-Type
 * value, the body split by mp_parse, and the form handed to the audio handlers (transcriptions
 * and translations), whose field parsing runs up to the runtime (no model exists).
 * Input: the Content-Type value, FZ_SEP, the body. */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "server/multipart.h"

/* Every part lies inside the body. */
static void check_form(const api_form *form, const char *body, size_t len) {
    fz_check(form->n <= API_FORM_MAX_PARTS, "at most API_FORM_MAX_PARTS parts");
    for (size_t i = 0; i < form->n; i++) {
        const api_form_part *part = &form->parts[i];
        fz_check(part->data >= body && part->len <= len &&
                     (size_t)(part->data - body) <= len - part->len,
                 "a part lies inside the body");
        fz_check(memchr(part->name, '\0', sizeof part->name) != NULL, "a part name ends");
    }
}

static void call_audio(api_handler handler, const api_form *form, const char *body, size_t len) {
    api_request req = fz_post("/v1/audio/transcriptions", "multipart/form-data", body, len);
    req.form = form;
    fz_api_call(handler, &req, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_reader in = {data, size};
    char *content_type = fz_field(&in, NULL);
    char *body = fz_copy(in.p, in.left); /* the HTTP layer keeps bodies NUL-terminated */
    api_form *form = malloc(sizeof *form);
    fz_check(form != NULL, "memory for the form");
    char boundary[MP_MAX_BOUNDARY + 1];
    char err[256];
    if (mp_boundary(content_type, boundary, sizeof boundary)) {
        fz_check(strlen(boundary) > 0 && strlen(boundary) <= MP_MAX_BOUNDARY,
                 "a boundary has 1 to 70 characters");
        if (mp_parse(body, in.left, boundary, form, err, sizeof err)) {
            check_form(form, body, in.left);
            call_audio(api_audio_transcriptions, form, body, in.left);
            call_audio(api_audio_translations, form, body, in.left);
        } else {
            fz_check(err[0] != '\0', "a rejected body has a message");
        }
    }
    free(form);
    free(body);
    free(content_type);
    return 0;
}

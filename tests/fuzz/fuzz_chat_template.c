/* Chat formatting: family detection on an arbitrary template text and rendering of arbitrary
 * messages in the detected style (with arbitrary BOS/EOS texts), and fluid_chat_format over the
 * harness's vocabularies (their own templates).
 * Input: a flags byte, then FZ_SEP-separated fields: template, BOS text, EOS text, then role and
 * content pairs. */
#include <stdlib.h>
#include <string.h>

#include "engine/chat_template.h"
#include "harness.h"

enum { MAX_FIELDS = 64 };

static void check_result(char *text, const fluid_error *err) {
    if (text == NULL)
        fz_check(err->code != FLUID_OK && err->message[0] != '\0', "a refusal has a message");
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_reader in = {data, size};
    uint8_t flags = fz_byte(&in);
    char *fields[MAX_FIELDS];
    size_t n_fields = 0;
    while (n_fields < 3 || (in.left > 0 && n_fields < MAX_FIELDS))
        fields[n_fields++] = fz_field(&in, NULL);
    fluid_chat_message messages[MAX_FIELDS / 2];
    size_t n = 0;
    for (size_t i = 3; i + 1 < n_fields; i += 2)
        messages[n++] = (fluid_chat_message){.role = fields[i], .content = fields[i + 1]};
    bool add_prompt = flags & 1;

    fl_chat_style style;
    fl_chat_detect(fields[0], &style);
    fz_check(fl_chat_family_name(style.family) != NULL, "a detected family has a name");
    fluid_error err = {0};
    check_result(fl_chat_render(&style, flags & 2 ? fields[1] : NULL, fields[2], messages, n,
                                add_prompt, &err),
                 &err);

    const fluid_vocab *v = fz_vocab((flags >> 2) % fz_vocab_count());
    if (v != NULL) {
        err = (fluid_error){0};
        check_result(fluid_chat_format(v, messages, n, add_prompt, &err), &err);
    }
    for (size_t i = 0; i < n_fields; i++) free(fields[i]);
    return 0;
}

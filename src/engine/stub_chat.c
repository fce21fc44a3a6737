/* Placeholders until the real implementation lands; the owner deletes this file. */
#include "fluid/fluid.h"
#include "util/error.h"

#include <stddef.h>

char *fluid_chat_format(const fluid_vocab *vocab, const fluid_chat_message *messages, size_t n,
                        bool add_generation_prompt, fluid_error *err) {
    (void)vocab;
    (void)messages;
    (void)n;
    (void)add_generation_prompt;
    (void)err;
    fl_set_error(err, FLUID_ERR_UNSUPPORTED, "fluid_chat_format: not implemented yet");
    return NULL;
}

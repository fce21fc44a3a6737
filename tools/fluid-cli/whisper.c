/* Placeholder until the whisper mode lands; its owner replaces this file. */
#include "fluid-cli/whisper.h"

#include <stdio.h>

int cli_whisper_main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "fluid-cli: whisper models are not supported yet\n");
    return 2;
}

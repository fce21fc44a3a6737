/* fluid-server entry point (placeholder until the HTTP server lands). */
#include <stdio.h>
#include <string.h>

#include "fluid/fluid.h"

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0) {
            printf("fluid-server %s\n", fluid_version());
            return 0;
        }
    }
    fprintf(stderr, "fluid-server %s: the HTTP server is not built yet\n", fluid_version());
    return 1;
}

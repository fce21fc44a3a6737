#include "fluid/fluid.h"

const char *fluid_version(void) {
    return FLUID_VERSION;
}

#include "util/version.h"

const char *fluid_version_string(void) { return FLUID_VERSION; }

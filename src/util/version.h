#ifndef FLUID_UTIL_VERSION_H
#define FLUID_UTIL_VERSION_H

/* The product version, e.g. "0.1.0". */
const char *fluid_version_string(void);

#endif

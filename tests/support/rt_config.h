/* Manager settings shared by the runtime and API tests. */
#ifndef FLUID_TESTS_RT_CONFIG_H
#define FLUID_TESTS_RT_CONFIG_H

#include "runtime/runtime.h"

/* The defaults, then: models under root, no default models, no warm-up, a Hub address nothing
 * answers on, no progress bar and one compute thread. Tests change what they exercise. */
void test_rt_config(rt_config *cfg, const char *root);

#endif

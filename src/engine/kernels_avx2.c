/* AVX2 + FMA + F16C kernels (filled in below). */
#include "engine/kernels_impl.h"

const fl_kernel_table fl_kernels_avx2_table = {0};

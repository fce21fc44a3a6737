/* AVX-512 (BW/VL/DQ + VNNI) kernels (filled in below). */
#include "engine/kernels_impl.h"

const fl_kernel_table fl_kernels_avx512_table = {0};

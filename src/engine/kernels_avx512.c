/* AVX-512 VNNI kernels: the shared x86 kernels with the u8 x s8 dot done by one dpbusd
 * (256-bit form, AVX512VL). */
#include <immintrin.h>

#define X86_DOT(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)

#include "engine/kernels_x86.h"

const fl_kernel_table fl_kernels_avx512_table = X86_KERNEL_TABLE;

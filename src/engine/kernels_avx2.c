/* AVX2 + FMA + F16C kernels: the shared x86 kernels with the u8 x s8 dot done by
 * maddubs (pairs into int16, which cannot saturate for these formats: |w| <= 128, |a| <= 127
 * gives at most 32512) and madd (pairs of those into int32). */
#include <immintrin.h>

static inline __m256i avx2_dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}
#define X86_DOT(u, s) avx2_dot_u8s8(u, s)

#include "engine/kernels_x86.h"

const fl_kernel_table fl_kernels_avx2_table = X86_KERNEL_TABLE;

/* Which SIMD kernels this CPU can run, detected once (cpuid + xgetbv), and which one the
 * process uses: the best available unless FLUID_SIMD=off|avx2|avx512 asks for less. */
#ifndef FLUID_ENGINE_CPU_H
#define FLUID_ENGINE_CPU_H

#include <stdbool.h>

typedef enum fl_simd {
    FL_SIMD_SCALAR = 0, /* portable C: the reference */
    FL_SIMD_AVX2 = 1,   /* AVX2 + FMA + F16C */
    FL_SIMD_AVX512 = 2, /* AVX-512 F/BW/VL/DQ + VNNI */
    FL_SIMD_COUNT
} fl_simd;

typedef struct fl_cpu_features {
    bool avx2, fma, f16c;
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni;
} fl_cpu_features;

const fl_cpu_features *fl_cpu_get_features(void);

/* Can this CPU (and OS, which must save the wide registers) run `level`? */
bool fl_simd_available(fl_simd level);

/* The level in use: the best available, capped by the FLUID_SIMD environment variable
 * (read once). */
fl_simd fl_simd_active(void);

const char *fl_simd_name(fl_simd level);

#endif

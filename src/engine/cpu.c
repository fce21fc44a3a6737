#include "engine/cpu.h"

#include <cpuid.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static fl_cpu_features g_features; /* written once under g_once */
static fl_simd g_active;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect_features(fl_cpu_features *f) {
    unsigned a, b, c, d;
    memset(f, 0, sizeof *f);
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool osxsave = (c >> 27) & 1;
    f->fma = (c >> 12) & 1;
    f->f16c = (c >> 29) & 1;
    if (!osxsave) return;
    uint64_t xcr0 = read_xcr0();
    bool ymm_saved = (xcr0 & 0x6) == 0x6;   /* SSE + AVX state */
    bool zmm_saved = (xcr0 & 0xe6) == 0xe6; /* + opmask, ZMM hi256, hi16 ZMM */
    if (!ymm_saved || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f->fma = f->f16c = false;
        return;
    }
    f->avx2 = (b >> 5) & 1;
    if (!zmm_saved) return;
    f->avx512f = (b >> 16) & 1;
    f->avx512dq = (b >> 17) & 1;
    f->avx512bw = (b >> 30) & 1;
    f->avx512vl = (b >> 31) & 1;
    f->avx512vnni = (c >> 11) & 1;
}

static bool level_supported(const fl_cpu_features *f, fl_simd level) {
    switch (level) {
    case FL_SIMD_SCALAR:
        return true;
    case FL_SIMD_AVX2:
        return f->avx2 && f->fma && f->f16c;
    case FL_SIMD_AVX512:
        return level_supported(f, FL_SIMD_AVX2) && f->avx512f && f->avx512bw && f->avx512vl &&
               f->avx512dq && f->avx512vnni;
    default:
        return false;
    }
}

/* FLUID_SIMD caps the level; unknown values are ignored. */
static fl_simd requested_cap(void) {
    const char *v = getenv("FLUID_SIMD");
    if (v == NULL) return FL_SIMD_AVX512;
    if (strcmp(v, "off") == 0 || strcmp(v, "scalar") == 0) return FL_SIMD_SCALAR;
    if (strcmp(v, "avx2") == 0) return FL_SIMD_AVX2;
    return FL_SIMD_AVX512;
}

static void init_once(void) {
    detect_features(&g_features);
    fl_simd level = requested_cap();
    while (level > FL_SIMD_SCALAR && !level_supported(&g_features, level)) level--;
    g_active = level;
}

const fl_cpu_features *fl_cpu_get_features(void) {
    pthread_once(&g_once, init_once);
    return &g_features;
}

bool fl_simd_available(fl_simd level) {
    return level_supported(fl_cpu_get_features(), level);
}

fl_simd fl_simd_active(void) {
    pthread_once(&g_once, init_once);
    return g_active;
}

const char *fl_simd_name(fl_simd level) {
    static const char *const names[FL_SIMD_COUNT] = {"scalar", "avx2", "avx512"};
    return (unsigned)level < FL_SIMD_COUNT ? names[level] : "unknown";
}

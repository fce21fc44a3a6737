#include "engine/tensor.h"

#include <string.h>

static const fl_type_traits TYPE_TRAITS[FL_TYPE_COUNT] = {
    [FL_TYPE_F32] = {"f32", 1, 4},       [FL_TYPE_F16] = {"f16", 1, 2},
    [FL_TYPE_BF16] = {"bf16", 1, 2},     [FL_TYPE_Q4_0] = {"q4_0", 32, 18},
    [FL_TYPE_Q4_1] = {"q4_1", 32, 20},   [FL_TYPE_Q5_0] = {"q5_0", 32, 22},
    [FL_TYPE_Q5_1] = {"q5_1", 32, 24},   [FL_TYPE_Q8_0] = {"q8_0", 32, 34},
    [FL_TYPE_Q8_1] = {"q8_1", 32, 36},   [FL_TYPE_Q2_K] = {"q2_k", 256, 84},
    [FL_TYPE_Q3_K] = {"q3_k", 256, 110}, [FL_TYPE_Q4_K] = {"q4_k", 256, 144},
    [FL_TYPE_Q5_K] = {"q5_k", 256, 176}, [FL_TYPE_Q6_K] = {"q6_k", 256, 210},
    [FL_TYPE_Q8_K] = {"q8_k", 256, 292}, [FL_TYPE_I8] = {"i8", 1, 1},
    [FL_TYPE_I16] = {"i16", 1, 2},       [FL_TYPE_I32] = {"i32", 1, 4},
    [FL_TYPE_I64] = {"i64", 1, 8},       [FL_TYPE_F64] = {"f64", 1, 8},
};

const fl_type_traits *fl_type_traits_of(uint32_t type) {
    if (type >= FL_TYPE_COUNT || TYPE_TRAITS[type].name == NULL) return NULL;
    return &TYPE_TRAITS[type];
}

size_t fl_row_bytes(fl_type type, int64_t n) {
    const fl_type_traits *tr = fl_type_traits_of(type);
    if (tr == NULL || n < 0 || n % tr->block_size != 0) return 0;
    return (size_t)(n / tr->block_size) * tr->block_bytes;
}

static uint32_t float_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float bits_float(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

float fl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t mant = h & 0x3ff;
    if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (mant << 13)); /* inf / nan */
    if (exp == 0) {
        /* zero or subnormal: mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t fl_f32_to_f16(float f) {
    uint32_t u = float_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u) return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);
    if (abs >= 0x477ff000u) return sign | 0x7c00; /* rounds past the largest half */
    if (abs < 0x38800000u) {
        /* subnormal half (or zero): round abs / 2^-24 to nearest even */
        float v = bits_float(abs) * 16777216.0f;
        uint32_t m = (uint32_t)v;
        float rest = v - (float)m;
        if (rest > 0.5f || (rest == 0.5f && (m & 1))) m++;
        return sign | (uint16_t)m;
    }
    uint32_t mant = abs & 0x7fffffu;
    uint32_t exp = (abs >> 23) - 112;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* may carry into the exponent */
    return sign | (uint16_t)h;
}

float fl_bf16_to_f32(uint16_t h) {
    return bits_float((uint32_t)h << 16);
}

uint16_t fl_f32_to_bf16(float f) {
    uint32_t u = float_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

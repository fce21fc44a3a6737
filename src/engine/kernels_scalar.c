/* The reference kernels: plain C, integer sums per block, one float accumulator per output.
 * Every SIMD kernel must give the same integer block sums. */
#include <math.h>
#include <string.h>

#include "engine/kernels_impl.h"

static int nearest(float v) {
    return (int)nearbyintf(v);
}

static void quantize_q8a(const float *x, void *dst, int64_t n) {
    fl_block_q8a *y = dst;
    for (int64_t b = 0; b < n / FL_QK; b++, x += FL_QK) {
        float amax = 0.0f;
        for (int i = 0; i < FL_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
        float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int i = 0; i < FL_QK; i++) {
            y[b].qs[i] = (int8_t)nearest(x[i] * id);
            sum += y[b].qs[i];
        }
        y[b].d = amax / 127.0f;
        y[b].sum = sum;
    }
}

static void quantize_q8k(const float *x, void *dst, int64_t n) {
    fl_quantize_row(FL_TYPE_Q8_K, x, dst, n);
}

/* Sum of code[i] * a[i] over 32 elements whose codes are nibbles (plus optional fifth bits). */
static int legacy_code_dot(const uint8_t *qs, const uint8_t *qh, const int8_t *a) {
    uint32_t high = 0;
    if (qh) memcpy(&high, qh, 4);
    int sum = 0;
    for (int i = 0; i < 16; i++) {
        int lo = (qs[i] & 15) | (int)(((high >> i) & 1) << 4);
        int hi = (qs[i] >> 4) | (int)(((high >> (i + 16)) & 1) << 4);
        sum += lo * a[i] + hi * a[i + 16];
    }
    return sum;
}

static float dot1_q4_0(int64_t n, const void *wv, const void *av) {
    const fl_block_q4_0 *w = wv;
    const fl_block_q8a *a = av;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / FL_QK; b++) {
        int isum = legacy_code_dot(w[b].qs, NULL, a[b].qs) - 8 * a[b].sum;
        sum += fl_f16_to_f32(w[b].d) * a[b].d * (float)isum;
    }
    return sum;
}

static float dot1_q5_0(int64_t n, const void *wv, const void *av) {
    const fl_block_q5_0 *w = wv;
    const fl_block_q8a *a = av;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / FL_QK; b++) {
        int isum = legacy_code_dot(w[b].qs, w[b].qh, a[b].qs) - 16 * a[b].sum;
        sum += fl_f16_to_f32(w[b].d) * a[b].d * (float)isum;
    }
    return sum;
}

static float dot1_q4_1(int64_t n, const void *wv, const void *av) {
    const fl_block_q4_1 *w = wv;
    const fl_block_q8a *a = av;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / FL_QK; b++) {
        int isum = legacy_code_dot(w[b].qs, NULL, a[b].qs);
        sum += fl_f16_to_f32(w[b].d) * a[b].d * (float)isum +
               fl_f16_to_f32(w[b].m) * a[b].d * (float)a[b].sum;
    }
    return sum;
}

static float dot1_q5_1(int64_t n, const void *wv, const void *av) {
    const fl_block_q5_1 *w = wv;
    const fl_block_q8a *a = av;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / FL_QK; b++) {
        int isum = legacy_code_dot(w[b].qs, w[b].qh, a[b].qs);
        sum += fl_f16_to_f32(w[b].d) * a[b].d * (float)isum +
               fl_f16_to_f32(w[b].m) * a[b].d * (float)a[b].sum;
    }
    return sum;
}

static float dot1_q8_0(int64_t n, const void *wv, const void *av) {
    const fl_block_q8_0 *w = wv;
    const fl_block_q8a *a = av;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / FL_QK; b++) {
        int isum = 0;
        for (int i = 0; i < FL_QK; i++) isum += w[b].qs[i] * a[b].qs[i];
        sum += fl_f16_to_f32(w[b].d) * a[b].d * (float)isum;
    }
    return sum;
}

/* Q4_K / Q5_K super-block: d * sum_j sc_j * dot_j - dmin * sum_j m_j * asum_j. */
static float k_affine_block(uint16_t d16, uint16_t dmin16, const uint8_t *scales, const uint8_t *qs,
                            const uint8_t *qh, const fl_block_q8_k *a) {
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; j++) {
        int c = j / 2, shift = 4 * (j % 2), isum = 0;
        for (int l = 0; l < 32; l++) {
            int code = (qs[32 * c + l] >> shift) & 15;
            if (qh) code |= ((qh[l] >> j) & 1) << 4;
            isum += code * a->qs[32 * j + l];
        }
        int sc, m;
        fl_k4_scale_min(scales, j, &sc, &m);
        sumi += sc * isum;
        summ += m * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
    }
    return fl_f16_to_f32(d16) * a->d * (float)sumi - fl_f16_to_f32(dmin16) * a->d * (float)summ;
}

static float dot1_q4_k(int64_t n, const void *wv, const void *av) {
    const fl_block_q4_k *w = wv;
    const fl_block_q8_k *a = av;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / FL_QK_K; b++)
        sum += k_affine_block(w[b].d, w[b].dmin, w[b].scales, w[b].qs, NULL, &a[b]);
    return sum;
}

static float dot1_q5_k(int64_t n, const void *wv, const void *av) {
    const fl_block_q5_k *w = wv;
    const fl_block_q8_k *a = av;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / FL_QK_K; b++)
        sum += k_affine_block(w[b].d, w[b].dmin, w[b].scales, w[b].qs, w[b].qh, &a[b]);
    return sum;
}

static float dot1_q6_k(int64_t n, const void *wv, const void *av) {
    const fl_block_q6_k *w = wv;
    const fl_block_q8_k *a = av;
    float sum = 0.0f;
    for (int64_t b = 0; b < n / FL_QK_K; b++) {
        int sumi = 0;
        for (int e = 0; e < FL_QK_K; e++) {
            int h = e / 128, k = (e % 128) / 32, l = e % 32;
            int low = (w[b].ql[64 * h + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 15;
            int high = (w[b].qh[32 * h + l] >> (2 * k)) & 3;
            sumi += w[b].scales[e / 16] * ((low | (high << 4)) - 32) * a[b].qs[e];
        }
        sum += fl_f16_to_f32(w[b].d) * a[b].d * (float)sumi;
    }
    return sum;
}

static float dot1_f32(int64_t n, const void *wv, const void *av) {
    const float *w = wv, *a = av;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += w[i] * a[i];
    return sum;
}

static float dot1_f16(int64_t n, const void *wv, const void *av) {
    const uint16_t *w = wv;
    const float *a = av;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += fl_f16_to_f32(w[i]) * a[i];
    return sum;
}

static float dot1_bf16(int64_t n, const void *wv, const void *av) {
    const uint16_t *w = wv;
    const float *a = av;
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) sum += fl_bf16_to_f32(w[i]) * a[i];
    return sum;
}

/* The table's entries: the one-row dot applied to each activation row. */
#define FOR_EACH_TOKEN(type)                                                                       \
    static void dot_##type(int64_t n, const void *w, const void *act, size_t stride, int nt,       \
                           float *out) {                                                           \
        for (int t = 0; t < nt; t++) out[t] = dot1_##type(n, w, fl_act_row(act, stride, t));       \
    }
FOR_EACH_TOKEN(q4_0)
FOR_EACH_TOKEN(q4_1)
FOR_EACH_TOKEN(q5_0)
FOR_EACH_TOKEN(q5_1)
FOR_EACH_TOKEN(q8_0)
FOR_EACH_TOKEN(q4_k)
FOR_EACH_TOKEN(q5_k)
FOR_EACH_TOKEN(q6_k)
FOR_EACH_TOKEN(f32)
FOR_EACH_TOKEN(f16)
FOR_EACH_TOKEN(bf16)

const fl_kernel_table fl_kernels_scalar_table = {
    .dot =
        {
            [FL_TYPE_F32] = dot_f32,
            [FL_TYPE_F16] = dot_f16,
            [FL_TYPE_BF16] = dot_bf16,
            [FL_TYPE_Q4_0] = dot_q4_0,
            [FL_TYPE_Q4_1] = dot_q4_1,
            [FL_TYPE_Q5_0] = dot_q5_0,
            [FL_TYPE_Q5_1] = dot_q5_1,
            [FL_TYPE_Q8_0] = dot_q8_0,
            [FL_TYPE_Q4_K] = dot_q4_k,
            [FL_TYPE_Q5_K] = dot_q5_k,
            [FL_TYPE_Q6_K] = dot_q6_k,
        },
    .quantize_q8a = quantize_q8a,
    .quantize_q8k = quantize_q8k,
};

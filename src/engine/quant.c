/* Quantization (float rows -> blocks) and dequantization for every supported block format. */
#include "engine/quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

_Static_assert(sizeof(fl_block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(fl_block_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(fl_block_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(fl_block_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(fl_block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(fl_block_q4_k) == 144, "q4_k layout");
_Static_assert(sizeof(fl_block_q5_k) == 176, "q5_k layout");
_Static_assert(sizeof(fl_block_q6_k) == 210, "q6_k layout");
_Static_assert(sizeof(fl_block_q8_k) == 292, "q8_k layout");

/* Round to nearest, ties to even (the SIMD paths round the same way). */
static int nearest(float v) {
    return (int)nearbyintf(v);
}

static int clamp_int(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Stores d as f16 and returns the value the file will hold. */
static float store_f16(uint16_t *dst, float d) {
    *dst = fl_f32_to_f16(d);
    return fl_f16_to_f32(*dst);
}

static float inverse_or_zero(float d) {
    return d != 0.0f ? 1.0f / d : 0.0f;
}

/* ---- 32-element formats ------------------------------------------------------------------ */

/* Codes in [0, 2*bias) for value = (code - bias) * d, d chosen so that the value of largest
 * magnitude maps exactly to code 0. */
static float symmetric_codes(const float *x, int bias, uint8_t *codes, uint16_t *d_out) {
    float max = 0.0f;
    for (int i = 0; i < FL_QK; i++)
        if (fabsf(x[i]) > fabsf(max)) max = x[i];
    float d = store_f16(d_out, max / (float)-bias);
    float id = inverse_or_zero(d);
    for (int i = 0; i < FL_QK; i++)
        codes[i] = (uint8_t)clamp_int(nearest(x[i] * id) + bias, 0, 2 * bias - 1);
    return d;
}

/* Codes in [0, nmax] for value = code * d + m with m the block minimum. */
static void affine_codes(const float *x, int nmax, uint8_t *codes, uint16_t *d_out,
                         uint16_t *m_out) {
    float lo = x[0], hi = x[0];
    for (int i = 1; i < FL_QK; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    float d = store_f16(d_out, (hi - lo) / (float)nmax);
    float m = store_f16(m_out, lo);
    float id = inverse_or_zero(d);
    for (int i = 0; i < FL_QK; i++)
        codes[i] = (uint8_t)clamp_int(nearest((x[i] - m) * id), 0, nmax);
}

/* Elements i and i+16 share byte i: low nibble, high nibble. */
static void pack_nibbles(const uint8_t *codes, uint8_t *qs) {
    for (int i = 0; i < 16; i++) qs[i] = (uint8_t)((codes[i] & 15) | ((codes[i + 16] & 15) << 4));
}

static void unpack_nibbles(const uint8_t *qs, uint8_t *codes) {
    for (int i = 0; i < 16; i++) {
        codes[i] = qs[i] & 15;
        codes[i + 16] = qs[i] >> 4;
    }
}

/* Fifth bits: bit i of the little-endian 32-bit word qh. */
static void pack_high_bits(const uint8_t *codes, uint8_t *qh) {
    uint32_t bits = 0;
    for (int i = 0; i < FL_QK; i++) bits |= (uint32_t)((codes[i] >> 4) & 1) << i;
    for (int i = 0; i < 4; i++) qh[i] = (uint8_t)(bits >> (8 * i));
}

static void add_high_bits(const uint8_t *qh, uint8_t *codes) {
    for (int i = 0; i < FL_QK; i++) codes[i] |= (uint8_t)(((qh[i / 8] >> (i % 8)) & 1) << 4);
}

static void quantize_q8_0(const float *x, void *dst, int64_t nb) {
    fl_block_q8_0 *y = dst;
    for (int64_t b = 0; b < nb; b++, x += FL_QK) {
        float amax = 0.0f;
        for (int i = 0; i < FL_QK; i++) amax = fmaxf(amax, fabsf(x[i]));
        float d = store_f16(&y[b].d, amax / 127.0f);
        float id = inverse_or_zero(d);
        for (int i = 0; i < FL_QK; i++)
            y[b].qs[i] = (int8_t)clamp_int(nearest(x[i] * id), -127, 127);
    }
}

static void quantize_q4_0(const float *x, void *dst, int64_t nb) {
    fl_block_q4_0 *y = dst;
    uint8_t codes[FL_QK];
    for (int64_t b = 0; b < nb; b++, x += FL_QK) {
        symmetric_codes(x, 8, codes, &y[b].d);
        pack_nibbles(codes, y[b].qs);
    }
}

static void quantize_q5_0(const float *x, void *dst, int64_t nb) {
    fl_block_q5_0 *y = dst;
    uint8_t codes[FL_QK];
    for (int64_t b = 0; b < nb; b++, x += FL_QK) {
        symmetric_codes(x, 16, codes, &y[b].d);
        pack_nibbles(codes, y[b].qs);
        pack_high_bits(codes, y[b].qh);
    }
}

static void quantize_q4_1(const float *x, void *dst, int64_t nb) {
    fl_block_q4_1 *y = dst;
    uint8_t codes[FL_QK];
    for (int64_t b = 0; b < nb; b++, x += FL_QK) {
        affine_codes(x, 15, codes, &y[b].d, &y[b].m);
        pack_nibbles(codes, y[b].qs);
    }
}

static void quantize_q5_1(const float *x, void *dst, int64_t nb) {
    fl_block_q5_1 *y = dst;
    uint8_t codes[FL_QK];
    for (int64_t b = 0; b < nb; b++, x += FL_QK) {
        affine_codes(x, 31, codes, &y[b].d, &y[b].m);
        pack_nibbles(codes, y[b].qs);
        pack_high_bits(codes, y[b].qh);
    }
}

static void dequantize_q8_0(const void *src, float *y, int64_t nb) {
    const fl_block_q8_0 *x = src;
    for (int64_t b = 0; b < nb; b++, y += FL_QK) {
        float d = fl_f16_to_f32(x[b].d);
        for (int i = 0; i < FL_QK; i++) y[i] = d * (float)x[b].qs[i];
    }
}

static void dequantize_q4_0(const void *src, float *y, int64_t nb) {
    const fl_block_q4_0 *x = src;
    uint8_t codes[FL_QK];
    for (int64_t b = 0; b < nb; b++, y += FL_QK) {
        float d = fl_f16_to_f32(x[b].d);
        unpack_nibbles(x[b].qs, codes);
        for (int i = 0; i < FL_QK; i++) y[i] = d * (float)(codes[i] - 8);
    }
}

static void dequantize_q5_0(const void *src, float *y, int64_t nb) {
    const fl_block_q5_0 *x = src;
    uint8_t codes[FL_QK];
    for (int64_t b = 0; b < nb; b++, y += FL_QK) {
        float d = fl_f16_to_f32(x[b].d);
        unpack_nibbles(x[b].qs, codes);
        add_high_bits(x[b].qh, codes);
        for (int i = 0; i < FL_QK; i++) y[i] = d * (float)(codes[i] - 16);
    }
}

static void dequantize_q4_1(const void *src, float *y, int64_t nb) {
    const fl_block_q4_1 *x = src;
    uint8_t codes[FL_QK];
    for (int64_t b = 0; b < nb; b++, y += FL_QK) {
        float d = fl_f16_to_f32(x[b].d), m = fl_f16_to_f32(x[b].m);
        unpack_nibbles(x[b].qs, codes);
        for (int i = 0; i < FL_QK; i++) y[i] = d * (float)codes[i] + m;
    }
}

static void dequantize_q5_1(const void *src, float *y, int64_t nb) {
    const fl_block_q5_1 *x = src;
    uint8_t codes[FL_QK];
    for (int64_t b = 0; b < nb; b++, y += FL_QK) {
        float d = fl_f16_to_f32(x[b].d), m = fl_f16_to_f32(x[b].m);
        unpack_nibbles(x[b].qs, codes);
        add_high_bits(x[b].qh, codes);
        for (int i = 0; i < FL_QK; i++) y[i] = d * (float)codes[i] + m;
    }
}

/* ---- K-quants ------------------------------------------------------------------------------ */

/* Least-squares s, o minimising sum (s*q + o - x)^2 with o <= 0; returns the squared error. */
static float fit_affine(const float *x, const uint8_t *q, int n, float *s, float *o) {
    double sl = 0, sll = 0, sx = 0, slx = 0;
    for (int i = 0; i < n; i++) {
        sl += q[i];
        sll += (double)q[i] * q[i];
        sx += x[i];
        slx += (double)q[i] * x[i];
    }
    double det = n * sll - sl * sl;
    double ss = 0, oo = 0;
    if (det > 0) {
        ss = (n * slx - sl * sx) / det;
        oo = (sll * sx - sl * slx) / det;
    }
    if (det <= 0 || oo > 0) {
        oo = 0;
        ss = sll > 0 ? slx / sll : 0;
    }
    *s = (float)ss;
    *o = (float)oo;
    float err = 0;
    for (int i = 0; i < n; i++) {
        float e = *s * (float)q[i] + *o - x[i];
        err += e * e;
    }
    return err;
}

/* Finds a scale s >= 0 and min m >= 0 with x ~ s*q - m, q in [0, nmax], trying a few grid
 * densities around the plain min/max one and refitting each by least squares. */
static float search_scale_min(const float *x, int n, int nmax, float *m_out) {
    float lo = 0.0f, hi = x[0];
    for (int i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
    }
    *m_out = -lo;
    if (hi <= lo) return 0.0f;
    float best_s = (hi - lo) / (float)nmax, best_o = lo, best_err = FLT_MAX;
    uint8_t q[32];
    for (int step = -4; step <= 8; step++) {
        float iscale = ((float)nmax + 0.1f * (float)step) / (hi - lo);
        for (int i = 0; i < n; i++)
            q[i] = (uint8_t)clamp_int(nearest((x[i] - lo) * iscale), 0, nmax);
        float s, o;
        float err = fit_affine(x, q, n, &s, &o);
        if (s > 0 && err < best_err) {
            best_err = err;
            best_s = s;
            best_o = o;
        }
    }
    *m_out = -best_o;
    return best_s;
}

/* Least-squares symmetric scale for x ~ s*q, q in [-nmax, nmax-1]. */
static float search_scale_symmetric(const float *x, int n, int nmax) {
    float max = 0.0f;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > fabsf(max)) max = x[i];
    if (max == 0.0f) return 0.0f;
    float best_s = max / (float)-nmax, best_err = FLT_MAX;
    for (int step = -6; step <= 6; step++) {
        float iscale = -((float)nmax + 0.1f * (float)step) / max;
        double sxq = 0, sqq = 0;
        int q[16];
        for (int i = 0; i < n; i++) {
            q[i] = clamp_int(nearest(x[i] * iscale), -nmax, nmax - 1);
            sxq += (double)x[i] * q[i];
            sqq += (double)q[i] * q[i];
        }
        if (sqq <= 0) continue;
        float s = (float)(sxq / sqq), err = 0;
        for (int i = 0; i < n; i++) {
            float e = s * (float)q[i] - x[i];
            err += e * e;
        }
        if (err < best_err) {
            best_err = err;
            best_s = s;
        }
    }
    return best_s;
}

static void pack_k4_scales(const int *sc, const int *m, uint8_t *scales) {
    for (int j = 0; j < 4; j++) {
        scales[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        scales[j + 4] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        scales[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

/* Shared by Q4_K and Q5_K: picks the 8 sub-block scales/mins, stores d/dmin/scales and
 * writes the final codes (in [0, nmax]) for the 256 elements. */
static void quantize_k_affine(const float *x, int nmax, uint16_t *d_out, uint16_t *dmin_out,
                              uint8_t *scales, uint8_t *codes) {
    float s[8], m[8], max_s = 0.0f, max_m = 0.0f;
    for (int j = 0; j < 8; j++) {
        s[j] = search_scale_min(x + 32 * j, 32, nmax, &m[j]);
        max_s = fmaxf(max_s, s[j]);
        max_m = fmaxf(max_m, m[j]);
    }
    float d = store_f16(d_out, max_s / 63.0f);
    float dmin = store_f16(dmin_out, max_m / 63.0f);
    float id = inverse_or_zero(d), idmin = inverse_or_zero(dmin);
    int isc[8], im[8];
    for (int j = 0; j < 8; j++) {
        isc[j] = clamp_int(nearest(s[j] * id), 0, 63);
        im[j] = clamp_int(nearest(m[j] * idmin), 0, 63);
    }
    pack_k4_scales(isc, im, scales);
    for (int j = 0; j < 8; j++) {
        float ds = d * (float)isc[j], dm = dmin * (float)im[j];
        float ids = inverse_or_zero(ds);
        for (int i = 0; i < 32; i++) {
            int c = 32 * j + i;
            codes[c] = (uint8_t)clamp_int(nearest((x[c] + dm) * ids), 0, nmax);
        }
    }
}

/* Chunk c (64 elements) of qs: byte 32c+l holds element 64c+l (low) and 64c+32+l (high). */
static void pack_k_nibbles(const uint8_t *codes, uint8_t *qs) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++)
            qs[32 * c + l] =
                (uint8_t)((codes[64 * c + l] & 15) | ((codes[64 * c + 32 + l] & 15) << 4));
}

static void unpack_k_nibbles(const uint8_t *qs, uint8_t *codes) {
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            codes[64 * c + l] = qs[32 * c + l] & 15;
            codes[64 * c + 32 + l] = qs[32 * c + l] >> 4;
        }
}

static void quantize_q4_k(const float *x, void *dst, int64_t nb) {
    fl_block_q4_k *y = dst;
    uint8_t codes[FL_QK_K];
    for (int64_t b = 0; b < nb; b++, x += FL_QK_K) {
        quantize_k_affine(x, 15, &y[b].d, &y[b].dmin, y[b].scales, codes);
        pack_k_nibbles(codes, y[b].qs);
    }
}

static void quantize_q5_k(const float *x, void *dst, int64_t nb) {
    fl_block_q5_k *y = dst;
    uint8_t codes[FL_QK_K];
    for (int64_t b = 0; b < nb; b++, x += FL_QK_K) {
        quantize_k_affine(x, 31, &y[b].d, &y[b].dmin, y[b].scales, codes);
        pack_k_nibbles(codes, y[b].qs);
        memset(y[b].qh, 0, sizeof y[b].qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                y[b].qh[l] |= (uint8_t)((((codes[64 * c + l] >> 4) & 1) << (2 * c)) |
                                        (((codes[64 * c + 32 + l] >> 4) & 1) << (2 * c + 1)));
    }
}

/* Codes of a Q4_K/Q5_K block into codes[256] (fifth bits added for Q5_K when qh != NULL). */
static void k_affine_codes(const uint8_t *qs, const uint8_t *qh, uint8_t *codes) {
    unpack_k_nibbles(qs, codes);
    if (qh == NULL) return;
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            codes[64 * c + l] |= (uint8_t)(((qh[l] >> (2 * c)) & 1) << 4);
            codes[64 * c + 32 + l] |= (uint8_t)(((qh[l] >> (2 * c + 1)) & 1) << 4);
        }
}

static void dequantize_k_affine(uint16_t d16, uint16_t dmin16, const uint8_t *scales,
                                const uint8_t *codes, float *y) {
    float d = fl_f16_to_f32(d16), dmin = fl_f16_to_f32(dmin16);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        fl_k4_scale_min(scales, j, &sc, &m);
        float ds = d * (float)sc, dm = dmin * (float)m;
        for (int i = 0; i < 32; i++) y[32 * j + i] = ds * (float)codes[32 * j + i] - dm;
    }
}

static void dequantize_q4_k(const void *src, float *y, int64_t nb) {
    const fl_block_q4_k *x = src;
    uint8_t codes[FL_QK_K];
    for (int64_t b = 0; b < nb; b++, y += FL_QK_K) {
        k_affine_codes(x[b].qs, NULL, codes);
        dequantize_k_affine(x[b].d, x[b].dmin, x[b].scales, codes, y);
    }
}

static void dequantize_q5_k(const void *src, float *y, int64_t nb) {
    const fl_block_q5_k *x = src;
    uint8_t codes[FL_QK_K];
    for (int64_t b = 0; b < nb; b++, y += FL_QK_K) {
        k_affine_codes(x[b].qs, x[b].qh, codes);
        dequantize_k_affine(x[b].d, x[b].dmin, x[b].scales, codes, y);
    }
}

static void quantize_q6_k(const float *x, void *dst, int64_t nb) {
    fl_block_q6_k *y = dst;
    for (int64_t b = 0; b < nb; b++, x += FL_QK_K) {
        float s[16], max_s = 0.0f;
        for (int j = 0; j < 16; j++) {
            s[j] = search_scale_symmetric(x + 16 * j, 16, 32);
            max_s = fmaxf(max_s, fabsf(s[j]));
        }
        float d = store_f16(&y[b].d, max_s / 127.0f);
        float id = inverse_or_zero(d);
        uint8_t u[FL_QK_K]; /* code + 32, in [0, 63] */
        for (int j = 0; j < 16; j++) {
            int sc = clamp_int(nearest(s[j] * id), -128, 127);
            y[b].scales[j] = (int8_t)sc;
            float ids = inverse_or_zero(d * (float)sc);
            for (int i = 0; i < 16; i++)
                u[16 * j + i] = (uint8_t)(clamp_int(nearest(x[16 * j + i] * ids), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *v = u + 128 * h;
            for (int l = 0; l < 32; l++) {
                y[b].ql[64 * h + l] = (uint8_t)((v[l] & 15) | ((v[l + 64] & 15) << 4));
                y[b].ql[64 * h + l + 32] = (uint8_t)((v[l + 32] & 15) | ((v[l + 96] & 15) << 4));
                y[b].qh[32 * h + l] = (uint8_t)((v[l] >> 4) | ((v[l + 32] >> 4) << 2) |
                                                ((v[l + 64] >> 4) << 4) | ((v[l + 96] >> 4) << 6));
            }
        }
    }
}

static void dequantize_q6_k(const void *src, float *y, int64_t nb) {
    const fl_block_q6_k *x = src;
    for (int64_t b = 0; b < nb; b++, y += FL_QK_K) {
        float d = fl_f16_to_f32(x[b].d);
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x[b].ql + 64 * h, *qh = x[b].qh + 32 * h;
            float *out = y + 128 * h;
            for (int l = 0; l < 32; l++) {
                int q[4] = {(ql[l] & 15) | ((qh[l] & 3) << 4),
                            (ql[l + 32] & 15) | (((qh[l] >> 2) & 3) << 4),
                            (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                            (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)};
                for (int k = 0; k < 4; k++) {
                    int e = l + 32 * k;
                    out[e] = d * (float)x[b].scales[8 * h + e / 16] * (float)(q[k] - 32);
                }
            }
        }
    }
}

static void quantize_q8_k(const float *x, void *dst, int64_t nb) {
    fl_block_q8_k *y = dst;
    for (int64_t b = 0; b < nb; b++, x += FL_QK_K) {
        float amax = 0.0f;
        for (int i = 0; i < FL_QK_K; i++) amax = fmaxf(amax, fabsf(x[i]));
        float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        y[b].d = amax / 127.0f;
        for (int j = 0; j < 16; j++) {
            int sum = 0;
            for (int i = 16 * j; i < 16 * j + 16; i++) {
                y[b].qs[i] = (int8_t)clamp_int(nearest(x[i] * id), -127, 127);
                sum += y[b].qs[i];
            }
            y[b].bsums[j] = (int16_t)sum;
        }
    }
}

static void dequantize_q8_k(const void *src, float *y, int64_t nb) {
    const fl_block_q8_k *x = src;
    for (int64_t b = 0; b < nb; b++, y += FL_QK_K)
        for (int i = 0; i < FL_QK_K; i++) y[i] = x[b].d * (float)x[b].qs[i];
}

/* ---- plain float types ---------------------------------------------------------------------- */

static void quantize_f32(const float *x, void *dst, int64_t n) {
    memcpy(dst, x, (size_t)n * 4);
}
static void dequantize_f32(const void *src, float *y, int64_t n) {
    memcpy(y, src, (size_t)n * 4);
}

static void quantize_f16(const float *x, void *dst, int64_t n) {
    uint8_t *out = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = fl_f32_to_f16(x[i]);
        memcpy(out + 2 * i, &h, 2);
    }
}

static void dequantize_f16(const void *src, float *y, int64_t n) {
    const uint8_t *in = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, in + 2 * i, 2);
        y[i] = fl_f16_to_f32(h);
    }
}

static void quantize_bf16(const float *x, void *dst, int64_t n) {
    uint8_t *out = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = fl_f32_to_bf16(x[i]);
        memcpy(out + 2 * i, &h, 2);
    }
}

static void dequantize_bf16(const void *src, float *y, int64_t n) {
    const uint8_t *in = src;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, in + 2 * i, 2);
        y[i] = fl_bf16_to_f32(h);
    }
}

/* ---- dispatch -------------------------------------------------------------------------------- */

/* Both functions take a count of blocks (elements for the float types). */
typedef struct quant_ops {
    void (*quantize)(const float *x, void *dst, int64_t nb);
    void (*dequantize)(const void *src, float *y, int64_t nb);
} quant_ops;

static const quant_ops QUANT_OPS[FL_TYPE_COUNT] = {
    [FL_TYPE_F32] = {quantize_f32, dequantize_f32},
    [FL_TYPE_F16] = {quantize_f16, dequantize_f16},
    [FL_TYPE_BF16] = {quantize_bf16, dequantize_bf16},
    [FL_TYPE_Q8_0] = {quantize_q8_0, dequantize_q8_0},
    [FL_TYPE_Q4_0] = {quantize_q4_0, dequantize_q4_0},
    [FL_TYPE_Q4_1] = {quantize_q4_1, dequantize_q4_1},
    [FL_TYPE_Q5_0] = {quantize_q5_0, dequantize_q5_0},
    [FL_TYPE_Q5_1] = {quantize_q5_1, dequantize_q5_1},
    [FL_TYPE_Q4_K] = {quantize_q4_k, dequantize_q4_k},
    [FL_TYPE_Q5_K] = {quantize_q5_k, dequantize_q5_k},
    [FL_TYPE_Q6_K] = {quantize_q6_k, dequantize_q6_k},
    [FL_TYPE_Q8_K] = {quantize_q8_k, dequantize_q8_k},
};

bool fl_quant_supported(fl_type type) {
    return (unsigned)type < FL_TYPE_COUNT && QUANT_OPS[type].quantize != NULL;
}

size_t fl_quantize_row(fl_type type, const float *src, void *dst, int64_t n) {
    size_t bytes = fl_row_bytes(type, n);
    if (!fl_quant_supported(type) || bytes == 0) return 0;
    QUANT_OPS[type].quantize(src, dst, n / fl_type_traits_of(type)->block_size);
    return bytes;
}

bool fl_dequantize(fl_type type, const void *src, float *dst, int64_t n) {
    if (!fl_quant_supported(type) || (n > 0 && fl_row_bytes(type, n) == 0)) return false;
    QUANT_OPS[type].dequantize(src, dst, n / fl_type_traits_of(type)->block_size);
    return true;
}

/* Plain C reference versions of the transformer's per-vector operations. */
#include "engine/ops.h"

#include <math.h>
#include <string.h>

#include "engine/attention_impl.h"

void fl_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)x[i] * x[i];
    float inv = (float)(1.0 / sqrt(sum / n + eps));
    for (int i = 0; i < n; i++) out[i] = x[i] * inv * w[i];
}

void fl_rope_angles(const float *inv_freq, int n_pairs, double pos, float *cos_out,
                    float *sin_out) {
    for (int i = 0; i < n_pairs; i++) {
        double a = pos * inv_freq[i];
        cos_out[i] = (float)cos(a);
        sin_out[i] = (float)sin(a);
    }
}

void fl_rope_rotate(float *head, int n_pairs, const float *cos_a, const float *sin_a, bool neox) {
    for (int i = 0; i < n_pairs; i++) {
        float *a = neox ? &head[i] : &head[2 * i];
        float *b = neox ? &head[i + n_pairs] : &head[2 * i + 1];
        float x0 = *a, x1 = *b;
        *a = x0 * cos_a[i] - x1 * sin_a[i];
        *b = x0 * sin_a[i] + x1 * cos_a[i];
    }
}

void fl_add(float *x, const float *y, int n) {
    for (int i = 0; i < n; i++) x[i] += y[i];
}

typedef struct swiglu_task {
    const fl_attn_table *kt;
    float *out;
    const float *gate, *up;
    long n;
} swiglu_task;

static void swiglu_share(void *p, int ith, int nth) {
    const swiglu_task *t = p;
    long begin, end;
    fl_split_range(t->n, ith, nth, &begin, &end);
    t->kt->swiglu(t->out + begin, t->gate + begin, t->up + begin, (int)(end - begin));
}

enum { SWIGLU_POOL_MIN = 1 << 16 }; /* below this a pool run costs more than it saves */

void fl_swiglu(float *out, const float *gate, const float *up, long n, fl_pool *pool) {
    swiglu_task t = {fl_attn_for(fl_simd_active()), out, gate, up, n};
    if (n < SWIGLU_POOL_MIN)
        swiglu_share(&t, 0, 1);
    else
        fl_pool_run(pool, swiglu_share, &t);
}

void fl_attend(float *out, const float *q, const float *keys, const float *values, int n_keys,
               long stride, int head_dim, float scale) {
    /* out accumulates exp(s_j - max) * v_j; when a larger score arrives, what is there is
     * rescaled to the new maximum */
    float max = -INFINITY, denom = 0.0f;
    memset(out, 0, (size_t)head_dim * sizeof(float));
    for (int j = 0; j < n_keys; j++) {
        const float *k = keys + (long)j * stride;
        const float *v = values + (long)j * stride;
        float s = 0.0f;
        for (int d = 0; d < head_dim; d++) s += q[d] * k[d];
        s *= scale;
        float w;
        if (s > max) {
            float shrink = expf(max - s);
            denom *= shrink;
            for (int d = 0; d < head_dim; d++) out[d] *= shrink;
            max = s;
            w = 1.0f;
        } else {
            w = expf(s - max);
        }
        denom += w;
        for (int d = 0; d < head_dim; d++) out[d] += w * v[d];
    }
    if (denom > 0.0f)
        for (int d = 0; d < head_dim; d++) out[d] /= denom;
}

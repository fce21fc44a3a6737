/* fl_attention: work items are (key/value head, slice of its query heads, block of query
 * tokens), handed out dynamically, the ones with the most keys first (causal attention gives
 * later queries more). An item's query rows (tokens x heads of the slice) run through the keys
 * FL_ATTN_BK at a time: the block is transposed once for all rows, then each row gets its
 * scores, an online-softmax update (running maximum m, running sum l, output rescaled by
 * exp(m_old - m_new)) and the weighted values. Scratch lives on each thread's stack. */
#include "engine/attention.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "engine/attention_impl.h"
#include "engine/ops.h"

enum {
    BK = FL_ATTN_BK,
    MAX_ROWS = 32,      /* query rows per item */
    MAX_HEAD_DIM = 256, /* larger heads take fl_attend, one row at a time */
};

typedef struct attn_job {
    const fl_attn *a;
    const fl_attn_table *kt;
    int group;       /* query heads per key/value head */
    int heads;       /* query heads per item */
    int head_slices; /* items per group and query block */
    int block;       /* query tokens per item */
    int n_blocks;
    long n_items;
    atomic_long next;
} attn_job;

typedef struct attn_scratch {
    float q[MAX_ROWS * MAX_HEAD_DIM]; /* scaled queries */
    float o[MAX_ROWS * MAX_HEAD_DIM]; /* unnormalised outputs */
    float kt[MAX_HEAD_DIM * BK];      /* the key block, transposed */
    float s[BK];
    float m[MAX_ROWS], l[MAX_ROWS];
    int n_keys[MAX_ROWS];
} attn_scratch;

/* Keys [kb, kb + nk) of head g into kt (columns past nk zeroed). */
static void pack_keys(const fl_attn *a, int g, int kb, int nk, float *kt) {
    int hd = a->head_dim;
    for (int j = 0; j < nk; j++) {
        const float *key = a->k + (size_t)(kb + j) * a->kv_stride + (size_t)g * hd;
        for (int d = 0; d < hd; d++) kt[d * BK + j] = key[d];
    }
    if (nk < BK)
        for (int d = 0; d < hd; d++) memset(kt + d * BK + nk, 0, sizeof(float) * (BK - nk));
}

/* One item: heads [h0, h0 + nh) of key/value head g, query tokens [t0, t0 + nt). Row i is
 * token t0 + i / nh, head h0 + i % nh. */
static void run_item(const attn_job *job, attn_scratch *sc, int g, int h0, int nh, int t0, int nt) {
    const fl_attn *a = job->a;
    const fl_attn_table *kt = job->kt;
    int hd = a->head_dim, rows = nh * nt, kmax = 0;
    for (int i = 0; i < rows; i++) {
        int t = t0 + i / nh, h = h0 + i % nh;
        const float *q = a->q + (size_t)t * a->q_stride + (size_t)h * hd;
        for (int d = 0; d < hd; d++) sc->q[i * hd + d] = q[d] * a->scale;
        memset(sc->o + i * hd, 0, sizeof(float) * (size_t)hd);
        sc->m[i] = -INFINITY;
        sc->l[i] = 0.0f;
        sc->n_keys[i] = a->causal_base < 0 ? a->n_kv : a->causal_base + t + 1;
        if (sc->n_keys[i] > kmax) kmax = sc->n_keys[i];
    }
    for (int kb = 0; kb < kmax; kb += BK) {
        int nk = kmax - kb < BK ? kmax - kb : BK;
        pack_keys(a, g, kb, nk, sc->kt);
        const float *v = a->v + (size_t)kb * a->kv_stride + (size_t)g * hd;
        for (int i = 0; i < rows; i++) {
            int n = sc->n_keys[i] - kb < nk ? sc->n_keys[i] - kb : nk;
            if (n <= 0) continue;
            kt->scores(sc->q + i * hd, sc->kt, hd, sc->s);
            float mx = kt->max(sc->s, n);
            float m_new = mx > sc->m[i] ? mx : sc->m[i];
            float corr = sc->m[i] == -INFINITY ? 0.0f : expf(sc->m[i] - m_new);
            float sum = kt->exp_sum(sc->s, n, m_new);
            sc->l[i] = sc->l[i] * corr + sum;
            sc->m[i] = m_new;
            kt->accumulate(sc->o + i * hd, hd, corr, sc->s, n, v, a->kv_stride);
        }
    }
    for (int i = 0; i < rows; i++) {
        int t = t0 + i / nh, h = h0 + i % nh;
        float *out = a->out + (size_t)t * a->out_stride + (size_t)h * hd;
        float inv = sc->l[i] > 0.0f ? 1.0f / sc->l[i] : 0.0f;
        for (int d = 0; d < hd; d++) out[d] = sc->o[i * hd + d] * inv;
    }
}

static void attn_worker(void *p, int ith, int nth) {
    (void)ith;
    (void)nth;
    attn_job *job = p;
    const fl_attn *a = job->a;
    attn_scratch sc;
    long per_block = (long)a->n_head_kv * job->head_slices;
    for (;;) {
        long u = atomic_fetch_add_explicit(&job->next, 1, memory_order_relaxed);
        if (u >= job->n_items) return;
        int qb = job->n_blocks - 1 - (int)(u / per_block); /* most keys first */
        int g = (int)(u % per_block) / job->head_slices,
            hs = (int)(u % per_block) % job->head_slices;
        int h0 = g * job->group + hs * job->heads;
        int nh =
            job->group - hs * job->heads < job->heads ? job->group - hs * job->heads : job->heads;
        int t0 = qb * job->block;
        int nt = a->n_q - t0 < job->block ? a->n_q - t0 : job->block;
        run_item(job, &sc, g, h0, nh, t0, nt);
    }
}

/* Heads too wide for the scratch: one (token, head) row at a time through fl_attend. */
static void wide_heads(void *p, int ith, int nth) {
    const fl_attn *a = ((const attn_job *)p)->a;
    int group = a->n_head / a->n_head_kv;
    long begin, end;
    fl_split_range((long)a->n_q * a->n_head, ith, nth, &begin, &end);
    for (long item = begin; item < end; item++) {
        int t = (int)(item / a->n_head), h = (int)(item % a->n_head);
        int n_keys = a->causal_base < 0 ? a->n_kv : a->causal_base + t + 1;
        size_t kv = (size_t)(h / group) * a->head_dim;
        fl_attend(a->out + (size_t)t * a->out_stride + (size_t)h * a->head_dim,
                  a->q + (size_t)t * a->q_stride + (size_t)h * a->head_dim, a->k + kv, a->v + kv,
                  n_keys, (long)a->kv_stride, a->head_dim, a->scale);
    }
}

static void attention_with(const fl_attn_table *kt, const fl_attn *a, fl_pool *pool) {
    if (a->n_q <= 0 || a->n_head <= 0 || a->n_head_kv <= 0) return;
    attn_job job = {.a = a, .kt = kt, .group = a->n_head / a->n_head_kv};
    if (a->head_dim > MAX_HEAD_DIM) {
        fl_pool_run(pool, wide_heads, &job);
        return;
    }
    job.heads = job.group < MAX_ROWS ? job.group : MAX_ROWS;
    job.head_slices = (job.group + job.heads - 1) / job.heads;
    job.block = MAX_ROWS / job.heads;
    job.n_blocks = (a->n_q + job.block - 1) / job.block;
    job.n_items = (long)job.n_blocks * a->n_head_kv * job.head_slices;
    atomic_store(&job.next, 0);
    fl_pool_run(pool, attn_worker, &job);
}

void fl_attention(const fl_attn *a, fl_pool *pool) {
    attention_with(fl_attn_for(fl_simd_active()), a, pool);
}

bool fl_attention_at(fl_simd level, const fl_attn *a, fl_pool *pool) {
    const fl_attn_table *kt = fl_attn_for(level);
    if (!kt) return false;
    attention_with(kt, a, pool);
    return true;
}

const fl_attn_table *fl_attn_for(fl_simd level) {
    static const fl_attn_table *const tables[FL_SIMD_COUNT] = {
        &fl_attn_scalar_table, &fl_attn_avx2_table, &fl_attn_avx512_table};
    if ((unsigned)level >= FL_SIMD_COUNT || !fl_simd_available(level)) return NULL;
    return tables[level];
}

/* ---- scalar pieces ------------------------------------------------------------------------- */

float fl_attn_exp(float x) {
    if (x < -87.0f) return 0.0f;
    /* NaN stays NaN and overflow gives infinity, as expf (converting either to int is UB) */
    if (!(x <= 88.0f)) return x + INFINITY;
    float n = nearbyintf(x * 1.44269504f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f; /* ln 2 in two parts */
    float p =
        1.0f +
        r * (1.0f +
             r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
    return ldexpf(p, (int)n);
}

static void scalar_scores(const float *q, const float *kt, int hd, float *s) {
    for (int j = 0; j < BK; j++) s[j] = 0.0f;
    for (int d = 0; d < hd; d++)
        for (int j = 0; j < BK; j++) s[j] += q[d] * kt[d * BK + j];
}

static float scalar_max(const float *s, int n) {
    float m = -INFINITY;
    for (int j = 0; j < n; j++) m = s[j] > m ? s[j] : m;
    return m;
}

static float scalar_exp_sum(float *s, int n, float shift) {
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
        s[j] = fl_attn_exp(s[j] - shift);
        sum += s[j];
    }
    return sum;
}

static void scalar_accumulate(float *o, int hd, float corr, const float *p, int n, const float *v,
                              size_t v_stride) {
    for (int d = 0; d < hd; d++) o[d] *= corr;
    for (int j = 0; j < n; j++)
        for (int d = 0; d < hd; d++) o[d] += p[j] * v[(size_t)j * v_stride + d];
}

static void scalar_swiglu(float *out, const float *gate, const float *up, int n) {
    for (int i = 0; i < n; i++) out[i] = gate[i] / (1.0f + fl_attn_exp(-gate[i])) * up[i];
}

const fl_attn_table fl_attn_scalar_table = {
    .scores = scalar_scores,
    .max = scalar_max,
    .exp_sum = scalar_exp_sum,
    .accumulate = scalar_accumulate,
    .swiglu = scalar_swiglu,
};

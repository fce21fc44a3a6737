/* fl_attention (attention.c) at every SIMD level the CPU has, scalar included, against a naive
 * two-pass softmax in double precision: contexts up to 4096 keys, grouped-query heads (groups
 * of 1 to 8), causal and full attention, head sizes with vector tails, query counts that are
 * not multiples of the blocks, 1 and 2 threads; the vectorised exponential and the
 * feed-forward gate built on it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/attention.h"
#include "engine/attention_impl.h"
#include "support/rng.h"

typedef struct config {
    int n_q, n_kv, n_head, n_head_kv, head_dim, causal_base;
} config;

static const config CONFIGS[] = {
    {1, 1, 1, 1, 64, 0},        /* one query, one key */
    {37, 37, 8, 8, 64, 0},      /* causal prompt, no grouping */
    {45, 45, 14, 2, 64, 0},     /* Qwen2.5-0.5B's groups of 7 */
    {70, 100, 32, 8, 64, 30},   /* groups of 4 after 30 cached positions */
    {3, 4096, 8, 1, 128, 4093}, /* long context, groups of 8 */
    {1, 4096, 4, 2, 80, 4095},  /* generation step, head size with a tail */
    {50, 1500, 6, 6, 64, -1},   /* Whisper cross-attention: every key */
    {17, 300, 4, 4, 72, -1},    /* tails again, full attention */
    {5, 9, 2, 1, 320, 4},       /* heads too wide for the scratch: the fallback */
    {33, 600, 40, 1, 64, 567},  /* more query heads per group than a block holds */
};
enum { N_CONFIGS = sizeof CONFIGS / sizeof CONFIGS[0] };

typedef struct problem {
    float *q, *k, *v, *out;
    double vmax;
} problem;

static void make_problem(problem *p, const config *c, uint64_t *s) {
    size_t qn = (size_t)c->n_q * c->n_head * c->head_dim;
    size_t kn = (size_t)c->n_kv * c->n_head_kv * c->head_dim;
    p->q = malloc(qn * sizeof(float));
    p->out = malloc(qn * sizeof(float));
    p->k = malloc(kn * sizeof(float));
    p->v = malloc(kn * sizeof(float));
    assert_true(p->q && p->out && p->k && p->v);
    /* scores spread over about +-8: a peaked but not one-hot softmax */
    for (size_t i = 0; i < qn; i++) p->q[i] = test_rng_uniform(s) * 2.0f;
    for (size_t i = 0; i < kn; i++) p->k[i] = test_rng_uniform(s) * 2.0f;
    p->vmax = 0;
    for (size_t i = 0; i < kn; i++) {
        p->v[i] = test_rng_uniform(s) * 5.0f;
        if (fabs(p->v[i]) > p->vmax) p->vmax = fabs(p->v[i]);
    }
}

static void free_problem(problem *p) {
    free(p->q);
    free(p->k);
    free(p->v);
    free(p->out);
}

static fl_attn args_of(const config *c, const problem *p) {
    size_t q_stride = (size_t)c->n_head * c->head_dim,
           kv_stride = (size_t)c->n_head_kv * c->head_dim;
    return (fl_attn){p->q,           q_stride,
                     p->k,           p->v,
                     kv_stride,      p->out,
                     q_stride,       c->n_q,
                     c->n_head,      c->n_head_kv,
                     c->head_dim,    c->n_kv,
                     c->causal_base, 1.0f / sqrtf((float)c->head_dim)};
}

/* Two passes in double: scores and their maximum, then the normalised weights times v. */
static void check_against_reference(const config *c, const problem *p, const char *what) {
    int hd = c->head_dim, group = c->n_head / c->n_head_kv;
    double scale = 1.0 / sqrt((double)hd);
    double *sc = malloc(sizeof(double) * (size_t)c->n_kv);
    assert_non_null(sc);
    for (int t = 0; t < c->n_q; t++) {
        int n_keys = c->causal_base < 0 ? c->n_kv : c->causal_base + t + 1;
        for (int h = 0; h < c->n_head; h++) {
            const float *q = p->q + ((size_t)t * c->n_head + h) * hd;
            int g = h / group;
            double mx = -INFINITY, sum = 0;
            for (int j = 0; j < n_keys; j++) {
                const float *k = p->k + ((size_t)j * c->n_head_kv + g) * hd;
                double dot = 0;
                for (int d = 0; d < hd; d++) dot += (double)q[d] * k[d];
                sc[j] = dot * scale;
                if (sc[j] > mx) mx = sc[j];
            }
            for (int j = 0; j < n_keys; j++) sum += sc[j] = exp(sc[j] - mx);
            for (int d = 0; d < hd; d++) {
                double want = 0;
                for (int j = 0; j < n_keys; j++)
                    want += sc[j] * p->v[((size_t)j * c->n_head_kv + g) * hd + d];
                want /= sum;
                double got = p->out[((size_t)t * c->n_head + h) * hd + d];
                if (fabs(got - want) > 2e-5 * p->vmax)
                    fail_msg("%s: q=%d kv=%d heads=%d/%d hd=%d causal=%d: [t%d h%d d%d] %.9g vs "
                             "%.9g",
                             what, c->n_q, c->n_kv, c->n_head, c->n_head_kv, hd, c->causal_base, t,
                             h, d, got, want);
            }
        }
    }
    free(sc);
}

static void attention_matches_two_pass_reference(void **state) {
    (void)state;
    uint64_t s = 4242;
    fl_pool *pool = fl_pool_create(2);
    assert_non_null(pool);
    for (int ci = 0; ci < N_CONFIGS; ci++) {
        problem p;
        make_problem(&p, &CONFIGS[ci], &s);
        fl_attn a = args_of(&CONFIGS[ci], &p);
        for (int level = FL_SIMD_SCALAR; level < FL_SIMD_COUNT; level++) {
            for (int threads = 0; threads < 2; threads++) {
                memset(p.out, 0xff, sizeof(float) * (size_t)a.n_q * a.out_stride);
                if (!fl_attention_at((fl_simd)level, &a, threads ? pool : NULL)) continue;
                check_against_reference(&CONFIGS[ci], &p, fl_simd_name((fl_simd)level));
            }
        }
        /* and the entry point, at the active level */
        fl_attention(&a, pool);
        check_against_reference(&CONFIGS[ci], &p, "fl_attention");
        free_problem(&p);
    }
    fl_pool_free(pool);
}

/* The exponential of every level: within 1e-6 relative of exp() on [-87, 0], 0 below. */
static void exp_is_accurate(void **state) {
    (void)state;
    enum { N = 4096 };
    static float s[N];
    for (int level = FL_SIMD_SCALAR; level < FL_SIMD_COUNT; level++) {
        const fl_attn_table *t = fl_attn_for((fl_simd)level);
        if (!t) continue;
        static float x[N];
        for (int i = 0; i < N; i++) s[i] = x[i] = -87.0f * (float)i / (N - 1) + 1.5f;
        float sum = t->exp_sum(s, N - 3, 1.5f); /* N - 3: the vector loops' tails too */
        double want_sum = 0;
        for (int i = 0; i < N - 3; i++) {
            double want = exp((double)(x[i] - 1.5f)); /* the argument the kernel sees */
            want_sum += want;
            if (fabs(s[i] - want) > 1e-6 * want)
                fail_msg("%s: exp(%.7g) = %.9g, want %.9g", fl_simd_name((fl_simd)level),
                         (double)(x[i] - 1.5f), s[i], want);
        }
        assert_true(fabs(sum - want_sum) < 1e-5 * want_sum);
        s[0] = -200.0f;
        t->exp_sum(s, 1, 0.0f);
        assert_true(s[0] == 0.0f);
    }
}

/* The feed-forward gate of every level, in place (out = gate) as the forward pass calls it:
 * within 1e-6 relative of g / (1 + exp(-g)) x u in double precision, from g = -120 (exp's
 * argument capped: silu is -0 or a denormal-sized value) to +120, with vector tails. */
static void swiglu_is_accurate(void **state) {
    (void)state;
    enum { N = 1003 };
    static float gate[N], up[N];
    for (int level = FL_SIMD_SCALAR; level < FL_SIMD_COUNT; level++) {
        const fl_attn_table *t = fl_attn_for((fl_simd)level);
        if (!t) continue;
        for (int i = 0; i < N; i++) {
            gate[i] = -120.0f + 240.0f * (float)i / (N - 1);
            up[i] = 0.5f + (float)(i % 7);
        }
        t->swiglu(gate, gate, up, N);
        for (int i = 0; i < N; i++) {
            double g = (double)(-120.0f + 240.0f * (float)i / (N - 1));
            double want = g / (1.0 + exp(-g)) * (double)up[i];
            if (fabs(gate[i] - want) > 1e-6 * fabs(want) + 1e-30)
                fail_msg("%s: swiglu(%.7g) = %.9g, want %.9g", fl_simd_name((fl_simd)level), g,
                         gate[i], want);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(attention_matches_two_pass_reference),
        cmocka_unit_test(exp_is_accurate),
        cmocka_unit_test(swiglu_is_accurate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Sampling: greedy, temperature, top-k/top-p/min-p, penalties, logit bias, seeds, logprobs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fluid/fluid.h"

enum { DRAWS = 20000 };

static fluid_sampling params_with_seed(uint64_t seed) {
    fluid_sampling p;
    fluid_sampling_defaults(&p);
    p.seed = seed;
    return p;
}

static fluid_sampler *make(const fluid_sampling *p, int32_t n_vocab) {
    fluid_error err = {0};
    fluid_sampler *s = fluid_sampler_create(p, n_vocab, &err);
    if (s == NULL) fail_msg("fluid_sampler_create: %s", err.message);
    return s;
}

/* Draws `draws` tokens from a fresh sampler and counts them per id. */
static void frequencies(const fluid_sampling *p, const float *logits, int32_t n, int draws,
                        double *freq) {
    fluid_sampler *s = make(p, n);
    for (int32_t i = 0; i < n; i++) freq[i] = 0;
    for (int d = 0; d < draws; d++) {
        int32_t t = fluid_sampler_sample(s, logits);
        assert_true(t >= 0 && t < n);
        freq[t] += 1.0 / draws;
    }
    fluid_sampler_free(s);
}

static void softmax(const float *logits, int32_t n, double temperature, double *out) {
    double mx = -INFINITY, sum = 0;
    for (int32_t i = 0; i < n; i++) mx = fmax(mx, logits[i]);
    for (int32_t i = 0; i < n; i++) sum += out[i] = exp((logits[i] - mx) / temperature);
    for (int32_t i = 0; i < n; i++) out[i] /= sum;
}

static void assert_close(double a, double b, double tol) {
    if (fabs(a - b) > tol) fail_msg("%g and %g differ by more than %g", a, b, tol);
}

static void defaults_turn_everything_off(void **state) {
    (void)state;
    fluid_sampling p;
    memset(&p, 0x5a, sizeof p);
    fluid_sampling_defaults(&p);
    assert_true(p.temperature == 1.0f);
    assert_int_equal(p.top_k, 0);
    assert_true(p.top_p == 1.0f);
    assert_true(p.min_p == 0.0f);
    assert_true(p.repeat_penalty == 1.0f);
    assert_true(p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f);
    assert_null(p.logit_bias);
    assert_int_equal(p.n_logit_bias, 0);
    assert_true(p.seed == FLUID_SEED_RANDOM);
}

static void greedy_takes_argmax_and_lowest_id_on_ties(void **state) {
    (void)state;
    fluid_sampling p = params_with_seed(1);
    p.temperature = 0;
    float logits[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, NAN};
    fluid_sampler *s = make(&p, 6);
    for (int i = 0; i < 10; i++) assert_int_equal(fluid_sampler_sample(s, logits), 1);
    float neg[6] = {-5.0f, -INFINITY, -4.0f, -INFINITY, NAN, -4.5f};
    assert_int_equal(fluid_sampler_sample(s, neg), 2);
    fluid_sampler_free(s);
}

static void top_k_one_and_tiny_top_p_are_greedy(void **state) {
    (void)state;
    float logits[5] = {1.0f, 1.2f, 1.1f, 0.9f, 1.15f};
    for (uint64_t seed = 0; seed < 20; seed++) {
        fluid_sampling p = params_with_seed(seed);
        p.top_k = 1;
        fluid_sampler *s = make(&p, 5);
        assert_int_equal(fluid_sampler_sample(s, logits), 1);
        fluid_sampler_free(s);
        p = params_with_seed(seed);
        p.top_p = 1e-6f;
        s = make(&p, 5);
        assert_int_equal(fluid_sampler_sample(s, logits), 1);
        fluid_sampler_free(s);
    }
}

static void temperature_frequencies_follow_softmax(void **state) {
    (void)state;
    float logits[5] = {1.0f, 2.0f, 0.0f, 1.5f, -1.0f};
    double freq[5], want[5];
    const float temps[3] = {1.0f, 0.5f, 2.0f};
    for (int t = 0; t < 3; t++) {
        fluid_sampling p = params_with_seed(42 + (uint64_t)t);
        p.temperature = temps[t];
        frequencies(&p, logits, 5, DRAWS, freq);
        softmax(logits, 5, temps[t], want);
        for (int i = 0; i < 5; i++) assert_close(freq[i], want[i], 0.015);
    }
}

static void top_k_renormalises_over_the_k_best(void **state) {
    (void)state;
    float logits[5] = {1.0f, 2.0f, 0.0f, 1.5f, -1.0f};
    double freq[5], want[2];
    fluid_sampling p = params_with_seed(7);
    p.top_k = 2;
    frequencies(&p, logits, 5, DRAWS, freq);
    float best[2] = {2.0f, 1.5f};
    softmax(best, 2, 1.0, want);
    assert_close(freq[1], want[0], 0.015);
    assert_close(freq[3], want[1], 0.015);
    assert_true(freq[0] == 0 && freq[2] == 0 && freq[4] == 0);
}

static void top_p_keeps_the_smallest_set_reaching_p(void **state) {
    (void)state;
    /* probabilities 0.5, 0.3, 0.15, 0.05 (in a shuffled order): top_p 0.75 keeps 0.5 + 0.3 */
    float logits[4] = {logf(0.15f), logf(0.5f), logf(0.05f), logf(0.3f)};
    double freq[4];
    fluid_sampling p = params_with_seed(9);
    p.top_p = 0.75f;
    frequencies(&p, logits, 4, DRAWS, freq);
    assert_close(freq[1], 0.5 / 0.8, 0.015);
    assert_close(freq[3], 0.3 / 0.8, 0.015);
    assert_true(freq[0] == 0 && freq[2] == 0);
}

static void top_p_on_a_flat_large_vocabulary(void **state) {
    (void)state;
    /* Slowly decaying logits: the nucleus holds hundreds of tokens, so the candidate block has
     * to grow several times. Ids are in likelihood order, so the nucleus is a prefix. */
    enum { N = 5000 };
    float *logits = malloc(sizeof(float) * N);
    double *prob = malloc(sizeof(double) * N);
    assert_non_null(logits);
    assert_non_null(prob);
    for (int i = 0; i < N; i++) logits[i] = -0.004f * (float)i;
    softmax(logits, N, 1.0, prob);
    int nucleus = 0;
    for (double cum = 0; cum < 0.6; nucleus++) cum += prob[nucleus];
    fluid_sampling p = params_with_seed(11);
    p.top_p = 0.6f;
    fluid_sampler *s = make(&p, N);
    int32_t highest = 0;
    for (int d = 0; d < 4000; d++) {
        int32_t t = fluid_sampler_sample(s, logits);
        assert_true(t >= 0 && t < nucleus);
        if (t > highest) highest = t;
    }
    assert_true(highest >= nucleus - 30);
    fluid_sampler_free(s);
    free(logits);
    free(prob);
}

static void min_p_drops_unlikely_tokens(void **state) {
    (void)state;
    /* relative to the best: 1, 0.5, 0.2, 0.09, 0.01 */
    float logits[5] = {0.0f, logf(0.5f), logf(0.2f), logf(0.09f), logf(0.01f)};
    double freq[5];
    fluid_sampling p = params_with_seed(3);
    p.min_p = 0.1f;
    frequencies(&p, logits, 5, DRAWS, freq);
    assert_true(freq[3] == 0 && freq[4] == 0);
    assert_close(freq[0], 1.0 / 1.7, 0.015);
    assert_close(freq[1], 0.5 / 1.7, 0.015);
    assert_close(freq[2], 0.2 / 1.7, 0.015);
}

static void run_sequence(uint64_t seed, int32_t *out, int n) {
    enum { V = 50 };
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = sinf((float)i) * 2.0f;
    fluid_sampling p = params_with_seed(seed);
    p.temperature = 1.3f;
    fluid_sampler *s = make(&p, V);
    for (int i = 0; i < n; i++) out[i] = fluid_sampler_sample(s, logits);
    fluid_sampler_free(s);
}

static void seed_makes_sequences_reproducible(void **state) {
    (void)state;
    int32_t a[64], b[64], c[64];
    run_sequence(1234, a, 64);
    run_sequence(1234, b, 64);
    run_sequence(1235, c, 64);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
}

/* Greedy choice after accepting `history`: tells on which side of a threshold the penalised
 * logit of token 0 falls. */
static int32_t greedy_after(fluid_sampling p, const int32_t *history, int n_history,
                            const float *logits, int32_t n_vocab) {
    p.temperature = 0;
    fluid_sampler *s = make(&p, n_vocab);
    for (int i = 0; i < n_history; i++) fluid_sampler_accept(s, history[i]);
    int32_t t = fluid_sampler_sample(s, logits);
    fluid_sampler_free(s);
    return t;
}

static void repetition_penalty_divides_positive_and_multiplies_negative(void **state) {
    (void)state;
    const int32_t seen[1] = {0};
    fluid_sampling p = params_with_seed(0);
    float pos[3] = {4.0f, 2.5f, -3.0f}; /* 4/2 = 2 < 2.5; 4/1.5 = 2.67 > 2.5 */
    p.repeat_penalty = 2.0f;
    assert_int_equal(greedy_after(p, seen, 1, pos, 3), 1);
    p.repeat_penalty = 1.5f;
    assert_int_equal(greedy_after(p, seen, 1, pos, 3), 0);
    float neg[3] = {-1.0f, -1.5f, -3.0f}; /* -1*2 = -2 < -1.5; -1*1.4 = -1.4 > -1.5 */
    p.repeat_penalty = 2.0f;
    assert_int_equal(greedy_after(p, seen, 1, neg, 3), 1);
    p.repeat_penalty = 1.4f;
    assert_int_equal(greedy_after(p, seen, 1, neg, 3), 0);
}

static void frequency_and_presence_penalties_follow_openai(void **state) {
    (void)state;
    const int32_t seen[3] = {0, 0, 0};
    float logits[3] = {3.0f, 2.0f, -3.0f};
    fluid_sampling p = params_with_seed(0);
    p.frequency_penalty = 0.35f; /* 3 - 3*0.35 = 1.95 < 2 */
    assert_int_equal(greedy_after(p, seen, 3, logits, 3), 1);
    p.frequency_penalty = 0.3f; /* 2.1 > 2 */
    assert_int_equal(greedy_after(p, seen, 3, logits, 3), 0);
    p.frequency_penalty = 0;
    p.presence_penalty = 0.9f; /* once, whatever the count: 2.1 > 2 */
    assert_int_equal(greedy_after(p, seen, 3, logits, 3), 0);
    p.presence_penalty = 1.1f; /* 1.9 < 2 */
    assert_int_equal(greedy_after(p, seen, 3, logits, 3), 1);
    const int32_t seen1[1] = {1};
    p.presence_penalty = -1.5f; /* negative values encourage: token 1: 2 + 1.5 = 3.5 > 3 */
    assert_int_equal(greedy_after(p, seen1, 1, logits, 3), 1);
}

static void penalties_only_see_the_recent_window(void **state) {
    (void)state;
    float logits[8] = {4.0f, 2.5f, 0, 0, 0, 0, 0, 0};
    fluid_sampling p = params_with_seed(0);
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 3;
    const int32_t recent[3] = {5, 0, 6};
    assert_int_equal(greedy_after(p, recent, 3, logits, 8), 1); /* 0 still in the window */
    const int32_t old[4] = {0, 5, 6, 7};
    assert_int_equal(greedy_after(p, old, 4, logits, 8), 0); /* 0 has left the window */
    const int32_t back[5] = {0, 5, 6, 7, 0};
    assert_int_equal(greedy_after(p, back, 5, logits, 8), 1); /* and came back */
    p.repeat_last_n = -1;
    int32_t long_ago[200] = {0};
    for (int i = 1; i < 200; i++) long_ago[i] = 5 + i % 3;
    assert_int_equal(greedy_after(p, long_ago, 200, logits, 8), 1); /* -1: everything counts */
    p.repeat_last_n = 0;
    assert_int_equal(greedy_after(p, recent, 3, logits, 8), 0); /* 0: no penalties */
}

static void logit_bias_adds_and_minus_100_bans(void **state) {
    (void)state;
    float logits[4] = {0.0f, 1.0f, 0.5f, 8.0f};
    fluid_logit_bias ban = {3, -100.0f};
    fluid_sampling p = params_with_seed(5);
    p.logit_bias = &ban;
    p.n_logit_bias = 1;
    p.temperature = 2.0f;
    double freq[4];
    frequencies(&p, logits, 4, 5000, freq);
    assert_true(freq[3] == 0);
    assert_true(freq[0] > 0 && freq[1] > 0 && freq[2] > 0);

    fluid_logit_bias boost = {2, 0.75f}; /* 0.5 + 0.75 = 1.25 > 1 */
    p.logit_bias = &boost;
    logits[3] = 0.0f;
    assert_int_equal(greedy_after(p, NULL, 0, logits, 4), 2);
    boost.bias = 0.25f;
    assert_int_equal(greedy_after(p, NULL, 0, logits, 4), 1);
}

static void invalid_parameters_are_refused(void **state) {
    (void)state;
    fluid_error err = {0};
    fluid_sampling p = params_with_seed(0);
    assert_null(fluid_sampler_create(&p, 0, &err));
    assert_int_equal(err.code, FLUID_ERR_ARGUMENT);
    p.top_p = 0;
    assert_null(fluid_sampler_create(&p, 10, &err));
    p = params_with_seed(0);
    p.temperature = -1;
    assert_null(fluid_sampler_create(&p, 10, &err));
    p = params_with_seed(0);
    fluid_logit_bias bad = {10, 1.0f};
    p.logit_bias = &bad;
    p.n_logit_bias = 1;
    assert_null(fluid_sampler_create(&p, 10, &err));
    assert_non_null(strstr(err.message, "logit_bias"));
    assert_null(fluid_sampler_create(NULL, 10, &err));
}

static void large_vocabulary_with_all_filters(void **state) {
    (void)state;
    enum { N = 256000 };
    float *logits = malloc(sizeof(float) * N);
    assert_non_null(logits);
    uint32_t x = 12345;
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        logits[i] = (float)(x >> 8) / (float)(1 << 24) * 10.0f;
    }
    fluid_sampling p = params_with_seed(99);
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.1f;
    fluid_sampler *s = make(&p, N);
    /* The penalty pushes accepted tokens down, so after `step` steps the candidates are among
     * the 40 + step best raw logits. */
    fluid_token_logprob top[60];
    fluid_logprobs(logits, N, 0, 60, top);
    for (int step = 0; step < 20; step++) {
        int32_t t = fluid_sampler_sample(s, logits);
        int found = 0;
        for (int i = 0; i < 40 + step; i++) found |= top[i].token == t;
        assert_true(found);
        fluid_sampler_accept(s, t);
    }
    fluid_sampler_free(s);
    free(logits);
}

static void logprobs_are_a_normalised_log_softmax(void **state) {
    (void)state;
    enum { N = 1000 };
    float logits[N];
    for (int i = 0; i < N; i++) logits[i] = 30.0f * sinf((float)i * 0.37f) + 100.0f;
    fluid_token_logprob *top = malloc(sizeof *top * N);
    assert_non_null(top);
    float lp = fluid_logprobs(logits, N, 17, N + 5, top);
    double sum = 0;
    for (int i = 0; i < N; i++) {
        sum += exp(top[i].logprob);
        if (i > 0) assert_true(top[i].logprob <= top[i - 1].logprob);
        if (top[i].token == 17) assert_true(top[i].logprob == lp);
    }
    assert_close(sum, 1.0, 1e-5);
    double want[N];
    softmax(logits, N, 1.0, want);
    assert_close(lp, log(want[17]), 1e-4);

    fluid_token_logprob top3[3];
    float tied[4] = {1.0f, 2.0f, 2.0f, 0.0f};
    float lp0 = fluid_logprobs(tied, 4, 0, 3, top3);
    assert_int_equal(top3[0].token, 1);
    assert_int_equal(top3[1].token, 2);
    assert_int_equal(top3[2].token, 0);
    assert_true(top3[2].logprob == lp0);
    assert_true(isinf(fluid_logprobs(tied, 4, 4, 0, NULL)));
    free(top);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_turn_everything_off),
        cmocka_unit_test(greedy_takes_argmax_and_lowest_id_on_ties),
        cmocka_unit_test(top_k_one_and_tiny_top_p_are_greedy),
        cmocka_unit_test(temperature_frequencies_follow_softmax),
        cmocka_unit_test(top_k_renormalises_over_the_k_best),
        cmocka_unit_test(top_p_keeps_the_smallest_set_reaching_p),
        cmocka_unit_test(top_p_on_a_flat_large_vocabulary),
        cmocka_unit_test(min_p_drops_unlikely_tokens),
        cmocka_unit_test(seed_makes_sequences_reproducible),
        cmocka_unit_test(repetition_penalty_divides_positive_and_multiplies_negative),
        cmocka_unit_test(frequency_and_presence_penalties_follow_openai),
        cmocka_unit_test(penalties_only_see_the_recent_window),
        cmocka_unit_test(logit_bias_adds_and_minus_100_bans),
        cmocka_unit_test(invalid_parameters_are_refused),
        cmocka_unit_test(large_vocabulary_with_all_filters),
        cmocka_unit_test(logprobs_are_a_normalised_log_softmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

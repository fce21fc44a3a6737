/* Token sampling: logit bias, repetition/presence/frequency penalties, temperature, top-k,
 * top-p, min-p and a seeded draw; plus log-probabilities of the raw distribution.
 *
 * Every step works on a copy of the logits as (logit, id) candidates. Filters shrink the
 * candidate count n and keep the candidates in no particular order: top-k and top-p select
 * the best ones with quickselect-style partitions (top-p by probability mass), so a 256k-token
 * vocabulary is never sorted. */
#include "fluid/fluid.h"
#include "util/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* A window longer than this is refused (it would only waste memory: no context is this long). */
#define MAX_REPEAT_WINDOW (1 << 24)
/* A bias at or below this bans the token outright, as OpenAI documents for -100. */
#define BAN_BIAS (-100.0f)
/* Below this temperature sampling is greedy (the distribution is a spike anyway). */
#define MIN_TEMPERATURE 1e-4f

typedef struct candidate {
    float logit;
    float prob; /* exp(logit), unnormalised; filled once the candidates are few enough */
    int32_t id;
} candidate;

struct fluid_sampler {
    fluid_sampling params;
    fluid_logit_bias *bias; /* own copy of params.logit_bias */
    int32_t n_vocab;
    uint64_t rng[4]; /* xoshiro256** state */

    /* Penalty bookkeeping: occurrences of each token in the window, the tokens that may have a
     * count (each listed once; stale entries are dropped when the penalties run), and for a
     * bounded window the ring of its tokens. */
    int32_t *counts;
    uint8_t *listed;
    int32_t *present;
    int32_t n_present;
    int32_t *ring;
    int32_t ring_cap; /* 0 = unbounded window (repeat_last_n = -1) */
    int32_t ring_len;
    int32_t ring_head;

    candidate *cand; /* n_vocab working candidates */
};

/* ---- random numbers: splitmix64 to seed xoshiro256** ----------------------------------- */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) {
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t fresh_seed(void) {
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) == (ssize_t)sizeof seed) return seed;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000007ULL ^ (uint64_t)ts.tv_nsec;
}

static void rng_seed(uint64_t s[4], uint64_t seed) {
    if (seed == FLUID_SEED_RANDOM) seed = fresh_seed();
    for (int i = 0; i < 4; i++) s[i] = splitmix64(&seed);
}

/* ---- set-up ------------------------------------------------------------------------------ */

void fluid_sampling_defaults(fluid_sampling *params) {
    if (params == NULL) return;
    *params = (fluid_sampling){
        .temperature = 1.0f,
        .top_k = 0,
        .top_p = 1.0f,
        .min_p = 0.0f,
        .repeat_penalty = 1.0f,
        .repeat_last_n = 64,
        .presence_penalty = 0.0f,
        .frequency_penalty = 0.0f,
        .logit_bias = NULL,
        .n_logit_bias = 0,
        .seed = FLUID_SEED_RANDOM,
    };
}

static fluid_status check_params(const fluid_sampling *p, int32_t n_vocab, fluid_error *err) {
    if (n_vocab <= 0) return fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: n_vocab must be > 0");
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature))
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: temperature must be >= 0");
    if (p->top_k < 0) return fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: top_k must be >= 0");
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: top_p must be in (0, 1]");
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: min_p must be in [0, 1]");
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty))
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: repeat_penalty must be > 0");
    if (p->repeat_last_n < -1 || p->repeat_last_n > MAX_REPEAT_WINDOW)
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: repeat_last_n must be in [-1, %d]",
                            MAX_REPEAT_WINDOW);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: penalties must be finite");
    if (p->n_logit_bias > 0 && p->logit_bias == NULL)
        return fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: logit_bias is NULL");
    for (size_t i = 0; i < p->n_logit_bias; i++) {
        const fluid_logit_bias *b = &p->logit_bias[i];
        if (b->token < 0 || b->token >= n_vocab)
            return fl_set_error(err, FLUID_ERR_ARGUMENT,
                                "sampler: logit_bias token %d is outside the vocabulary (0..%d)",
                                (int)b->token, (int)n_vocab - 1);
        if (isnan(b->bias))
            return fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: logit_bias is NaN");
    }
    return FLUID_OK;
}

fluid_sampler *fluid_sampler_create(const fluid_sampling *params, int32_t n_vocab,
                                    fluid_error *err) {
    if (params == NULL) {
        fl_set_error(err, FLUID_ERR_ARGUMENT, "sampler: params is NULL");
        return NULL;
    }
    if (check_params(params, n_vocab, err) != FLUID_OK) return NULL;
    fluid_sampler *s = calloc(1, sizeof *s);
    if (s == NULL) goto nomem;
    s->params = *params;
    s->n_vocab = n_vocab;
    if (params->n_logit_bias > 0) {
        s->bias = malloc(params->n_logit_bias * sizeof *s->bias);
        if (s->bias == NULL) goto nomem;
        memcpy(s->bias, params->logit_bias, params->n_logit_bias * sizeof *s->bias);
        s->params.logit_bias = s->bias;
    }
    s->counts = calloc((size_t)n_vocab, sizeof *s->counts);
    s->listed = calloc((size_t)n_vocab, sizeof *s->listed);
    s->present = malloc((size_t)n_vocab * sizeof *s->present);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    if (!s->counts || !s->listed || !s->present || !s->cand) goto nomem;
    if (params->repeat_last_n > 0) {
        s->ring_cap = params->repeat_last_n;
        s->ring = malloc((size_t)s->ring_cap * sizeof *s->ring);
        if (s->ring == NULL) goto nomem;
    }
    rng_seed(s->rng, params->seed);
    return s;
nomem:
    fluid_sampler_free(s);
    fl_set_error(err, FLUID_ERR_NOMEM, "sampler: out of memory (vocabulary of %d tokens)",
                 (int)n_vocab);
    return NULL;
}

void fluid_sampler_free(fluid_sampler *s) {
    if (s == NULL) return;
    free(s->bias);
    free(s->counts);
    free(s->listed);
    free(s->present);
    free(s->ring);
    free(s->cand);
    free(s);
}

/* ---- penalty bookkeeping ----------------------------------------------------------------- */

void fluid_sampler_accept(fluid_sampler *s, int32_t token) {
    if (s == NULL || token < 0 || token >= s->n_vocab) return;
    if (s->params.repeat_last_n == 0) return;
    if (s->ring_cap > 0) {
        if (s->ring_len == s->ring_cap) {
            s->counts[s->ring[s->ring_head]]--; /* the oldest token leaves the window */
        } else {
            s->ring_len++;
        }
        s->ring[s->ring_head] = token;
        s->ring_head = (s->ring_head + 1) % s->ring_cap;
    }
    s->counts[token]++;
    if (!s->listed[token]) {
        s->listed[token] = 1;
        s->present[s->n_present++] = token;
    }
}

static bool penalties_active(const fluid_sampling *p) {
    return p->repeat_last_n != 0 && (p->repeat_penalty != 1.0f || p->presence_penalty != 0.0f ||
                                     p->frequency_penalty != 0.0f);
}

static float penalised(const fluid_sampling *p, float logit, int32_t count) {
    if (p->repeat_penalty != 1.0f)
        logit = logit > 0.0f ? logit / p->repeat_penalty : logit * p->repeat_penalty;
    return logit - (float)count * p->frequency_penalty - p->presence_penalty;
}

/* Applies the penalties to candidates indexed by token id (before any filter reorders them),
 * dropping tokens that have left the window from the present list on the way. */
static void apply_penalties(fluid_sampler *s, candidate *cand) {
    int32_t kept = 0;
    for (int32_t i = 0; i < s->n_present; i++) {
        int32_t t = s->present[i];
        if (s->counts[t] == 0) {
            s->listed[t] = 0;
            continue;
        }
        cand[t].logit = penalised(&s->params, cand[t].logit, s->counts[t]);
        s->present[kept++] = t;
    }
    s->n_present = kept;
}

/* ---- candidate selection ----------------------------------------------------------------- */

/* The order of "most likely first": higher logit, then lower id (so ties are deterministic). */
static bool ranks_before(candidate a, candidate b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

static void swap_cand(candidate *a, candidate *b) {
    candidate t = *a;
    *a = *b;
    *b = t;
}

/* Partitions c[lo..hi] around a median-of-three pivot: better candidates before it, worse
 * after; returns the pivot's final index. */
static int32_t partition(candidate *c, int32_t lo, int32_t hi) {
    int32_t mid = lo + (hi - lo) / 2;
    if (ranks_before(c[mid], c[lo])) swap_cand(&c[mid], &c[lo]);
    if (ranks_before(c[hi], c[lo])) swap_cand(&c[hi], &c[lo]);
    if (ranks_before(c[mid], c[hi])) swap_cand(&c[mid], &c[hi]);
    candidate pivot = c[hi];
    int32_t store = lo;
    for (int32_t i = lo; i < hi; i++)
        if (ranks_before(c[i], pivot)) swap_cand(&c[i], &c[store++]);
    swap_cand(&c[store], &c[hi]);
    return store;
}

/* Rearranges c[0..n) so that its k best candidates come first (in no particular order). */
static void select_best(candidate *c, int32_t n, int32_t k) {
    int32_t lo = 0, hi = n - 1;
    while (lo < hi) {
        int32_t store = partition(c, lo, hi);
        if (store == k - 1 || store == k) return;
        if (store < k)
            lo = store + 1;
        else
            hi = store - 1;
    }
}

static int compare_rank(const void *pa, const void *pb) {
    candidate a = *(const candidate *)pa, b = *(const candidate *)pb;
    return ranks_before(a, b) ? -1 : ranks_before(b, a) ? 1 : 0;
}

static float max_logit(const candidate *c, int32_t n) {
    float m = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (c[i].logit > m) m = c[i].logit;
    return m;
}

/* Fills prob = exp(logit) (the logits are at most 0) and returns their sum. */
static double fill_probs(candidate *c, int32_t n) {
    double total = 0.0;
    for (int32_t i = 0; i < n; i++) total += c[i].prob = expf(c[i].logit);
    return total;
}

static double mass(const candidate *c, int32_t lo, int32_t hi) {
    double sum = 0.0;
    for (int32_t i = lo; i < hi; i++) sum += c[i].prob;
    return sum;
}

/* The size of the smallest most-likely-first prefix whose probability reaches top_p (moved to
 * the front, unsorted). A quickselect on probability mass: each partition step keeps the side
 * where the cumulative mass crosses the target, so this is linear on average; only the last
 * few candidates are sorted. */
static int32_t top_p_count(candidate *c, int32_t n, double total, float top_p) {
    double target = (double)top_p * total, before = 0.0;
    int32_t lo = 0, hi = n; /* c[0..lo) are in, c[hi..n) are out, c[lo..hi) undecided */
    while (hi - lo > 32) {
        int32_t store = partition(c, lo, hi - 1);
        double upper = mass(c, lo, store);
        if (before + upper >= target) {
            hi = store;
        } else if (before + upper + c[store].prob >= target) {
            return store + 1;
        } else {
            before += upper + c[store].prob;
            lo = store + 1;
        }
    }
    qsort(c + lo, (size_t)(hi - lo), sizeof *c, compare_rank);
    for (int32_t i = lo; i < hi; i++) {
        before += c[i].prob;
        if (before >= target) return i + 1;
    }
    return hi > 0 ? hi : 1; /* rounding left the sum a hair short of the target */
}

/* Keeps the candidates whose probability is at least min_p times the best one's. */
static int32_t min_p_filter(candidate *c, int32_t n, float min_p) {
    float threshold = max_logit(c, n) + logf(min_p);
    int32_t kept = 0;
    for (int32_t i = 0; i < n; i++)
        if (c[i].logit >= threshold) c[kept++] = c[i];
    return kept;
}

static int32_t draw(fluid_sampler *s, const candidate *c, int32_t n) {
    double u = rng_uniform(s->rng) * mass(c, 0, n);
    double cum = 0.0;
    int32_t last = 0;
    for (int32_t i = 0; i < n; i++) {
        if (c[i].prob <= 0.0f) continue;
        cum += c[i].prob;
        last = i;
        if (u < cum) return c[i].id;
    }
    return c[last].id; /* u fell past the sum by rounding */
}

static int32_t argmax(const candidate *c, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (ranks_before(c[i], c[best])) best = i;
    return c[best].id;
}

/* Copies the logits into candidates (NaN counts as impossible) and applies bias and penalties. */
static void prepare(fluid_sampler *s, const float *logits) {
    candidate *c = s->cand;
    for (int32_t i = 0; i < s->n_vocab; i++)
        c[i] = (candidate){isnan(logits[i]) ? -INFINITY : logits[i], 0.0f, i};
    for (size_t i = 0; i < s->params.n_logit_bias; i++) {
        const fluid_logit_bias *b = &s->params.logit_bias[i];
        c[b->token].logit = b->bias <= BAN_BIAS ? -INFINITY : c[b->token].logit + b->bias;
    }
    if (penalties_active(&s->params)) apply_penalties(s, c);
}

int32_t fluid_sampler_sample(fluid_sampler *s, const float *logits) {
    if (s == NULL || logits == NULL) return -1;
    const fluid_sampling *p = &s->params;
    candidate *c = s->cand;
    int32_t n = s->n_vocab;
    prepare(s, logits);
    if (p->temperature < MIN_TEMPERATURE) return argmax(c, n);

    float mx = max_logit(c, n);
    if (mx == -INFINITY) return argmax(c, n); /* everything banned: best effort */
    /* Shifted by the maximum first so that a small temperature cannot overflow. */
    float inv_t = 1.0f / p->temperature;
    for (int32_t i = 0; i < n; i++) c[i].logit = (c[i].logit - mx) * inv_t;
    if (p->top_k > 0 && p->top_k < n) {
        select_best(c, n, p->top_k);
        n = p->top_k;
    }
    double total = fill_probs(c, n);
    if (p->top_p < 1.0f) n = top_p_count(c, n, total, p->top_p);
    if (p->min_p > 0.0f) n = min_p_filter(c, n, p->min_p);
    return draw(s, c, n);
}

/* ---- log-probabilities ------------------------------------------------------------------- */

/* Inserts (id, logit) into top[0..*n), kept best first, holding at most k entries; when full,
 * the caller has checked that logit beats the last entry, which drops out. */
static void insert_top(fluid_token_logprob *top, int32_t *n, int32_t k, int32_t id, float logit) {
    int32_t i = *n < k ? (*n)++ : k - 1;
    while (i > 0 && logit > top[i - 1].logprob) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = (fluid_token_logprob){id, logit};
}

float fluid_logprobs(const float *logits, int32_t n_vocab, int32_t token, int32_t k,
                     fluid_token_logprob *top) {
    if (logits == NULL || n_vocab <= 0) return -INFINITY;
    float mx = -INFINITY;
    for (int32_t i = 0; i < n_vocab; i++)
        if (logits[i] > mx) mx = logits[i];
    if (mx == -INFINITY) return -INFINITY;
    double total = 0.0;
    for (int32_t i = 0; i < n_vocab; i++)
        if (!isnan(logits[i])) total += expf(logits[i] - mx);
    double lse = (double)mx + log(total);

    if (top != NULL && k > 0) {
        if (k > n_vocab) k = n_vocab;
        int32_t n = 0;
        for (int32_t i = 0; i < n_vocab; i++) {
            float l = isnan(logits[i]) ? -INFINITY : logits[i];
            if (n == k && !(l > top[k - 1].logprob)) continue;
            insert_top(top, &n, k, i, l);
        }
        for (int32_t i = 0; i < k; i++) top[i].logprob = (float)((double)top[i].logprob - lse);
    }
    if (token < 0 || token >= n_vocab || isnan(logits[token])) return -INFINITY;
    return (float)((double)logits[token] - lse);
}

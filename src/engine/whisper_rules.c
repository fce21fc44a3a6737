/* OpenAI Whisper's logit filters (suppressed tokens, blank suppression at the start, timestamp
 * rules) and small numeric helpers of the decoding. */
#include "engine/whisper_internal.h"

#include <math.h>
#include <stdlib.h>
#include <zlib.h>

static void suppress_range(float *logits, int32_t from, int32_t to) {
    for (int32_t i = from; i < to; i++) logits[i] = -INFINITY;
}

static void suppress_list(float *logits, const int32_t *ids, size_t n, int32_t n_vocab) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < n_vocab) logits[ids[i]] = -INFINITY;
}

void wh_log_softmax(float *x, int32_t n) {
    float max = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (x[i] > max) max = x[i];
    if (max == -INFINITY) return;
    double sum = 0.0;
    for (int32_t i = 0; i < n; i++) sum += x[i] == -INFINITY ? 0.0 : exp((double)(x[i] - max));
    float lse = max + (float)log(sum);
    for (int32_t i = 0; i < n; i++) x[i] -= lse;
}

/* The timestamp rules: timestamps come in pairs (except right before the end), never go
 * backwards, a segment has a non-zero length, the first token is a timestamp (at most
 * max_initial_timestamp), and a timestamp is forced when all timestamps together are more
 * likely than any single text token. */
static void timestamp_rules(const wh_rules *r, const int32_t *sampled, size_t n, float *logits) {
    const wh_specials *sp = r->sp;
    int32_t beg = sp->beg, nv = r->n_vocab;
    logits[sp->notimestamps] = -INFINITY;
    bool last_ts = n >= 1 && sampled[n - 1] >= beg;
    bool penult_ts = n < 2 || sampled[n - 2] >= beg;
    if (last_ts) {
        if (penult_ts)
            suppress_range(logits, beg, nv); /* a pair is complete: text next */
        else
            suppress_range(logits, 0, sp->eot); /* close the pair (or end) */
    }
    int32_t last_stamp = -1;
    for (size_t i = 0; i < n; i++)
        if (sampled[i] >= beg) last_stamp = sampled[i];
    if (last_stamp >= 0) {
        /* no going back; after a lone timestamp the next one must be strictly later */
        int32_t first_allowed = last_ts && !penult_ts ? last_stamp : last_stamp + 1;
        suppress_range(logits, beg, first_allowed < nv ? first_allowed : nv);
    }
    if (n == 0) {
        suppress_range(logits, 0, beg);
        if (r->max_initial_timestamp >= 0 && beg + r->max_initial_timestamp + 1 < nv)
            suppress_range(logits, beg + r->max_initial_timestamp + 1, nv);
    }
    /* log-probabilities share one normaliser, so the comparison holds on the logits */
    float max_text = -INFINITY, ts_max = -INFINITY;
    for (int32_t i = 0; i < beg; i++)
        if (logits[i] > max_text) max_text = logits[i];
    for (int32_t i = beg; i < nv; i++)
        if (logits[i] > ts_max) ts_max = logits[i];
    if (ts_max > -INFINITY) {
        double sum = 0.0;
        for (int32_t i = beg; i < nv; i++) sum += exp((double)(logits[i] - ts_max));
        if (ts_max + log(sum) > max_text) suppress_range(logits, 0, beg);
    }
}

void wh_apply_rules(const wh_rules *r, const int32_t *sampled, size_t n_sampled, float *logits) {
    if (n_sampled == 0) suppress_list(logits, r->suppress_blank, r->n_suppress_blank, r->n_vocab);
    suppress_list(logits, r->suppress, r->n_suppress, r->n_vocab);
    if (r->timestamps) timestamp_rules(r, sampled, n_sampled, logits);
}

float wh_compression_ratio(const char *text, size_t len) {
    if (len == 0) return 0.0f;
    uLongf bound = compressBound((uLong)len);
    Bytef *buf = malloc(bound);
    if (!buf) return 0.0f;
    float ratio = 0.0f;
    if (compress2(buf, &bound, (const Bytef *)text, (uLong)len, Z_DEFAULT_COMPRESSION) == Z_OK &&
        bound > 0)
        ratio = (float)len / (float)bound;
    free(buf);
    return ratio;
}

static wh_span span_of(const int32_t *tok, size_t begin, size_t end, int32_t beg) {
    wh_span sp = {begin, end, (tok[begin] - beg) * WH_TIME_PRECISION,
                  (tok[end - 1] - beg) * WH_TIME_PRECISION};
    return sp;
}

size_t wh_split_window(const int32_t *tok, size_t n, int32_t beg, size_t window_frames,
                       wh_span *spans, size_t *advance) {
    size_t count = 0, last = 0;
    for (size_t i = 1; i < n; i++) {
        if (tok[i - 1] < beg || tok[i] < beg) continue;
        spans[count++] = span_of(tok, last, i, beg);
        last = i;
    }
    bool single_ending = n >= 2 && tok[n - 2] < beg && tok[n - 1] >= beg;
    *advance = window_frames;
    if (count > 0) {
        if (single_ending && last < n) spans[count++] = span_of(tok, last, n, beg);
        /* otherwise continue from the last complete timestamp (2 mel frames per step) */
        else if (!single_ending)
            *advance = (size_t)(tok[last - 1] - beg) * 2;
        return count;
    }
    /* no pair: one segment up to the last timestamp, or the whole window */
    double duration = (double)window_frames * WH_HOP / FLUID_WHISPER_SAMPLE_RATE;
    for (size_t i = n; i-- > 0;) {
        if (tok[i] < beg) continue;
        if (tok[i] > beg) duration = (tok[i] - beg) * WH_TIME_PRECISION;
        break;
    }
    if (n == 0) return 0;
    spans[0] = (wh_span){0, n, 0.0, duration};
    return 1;
}

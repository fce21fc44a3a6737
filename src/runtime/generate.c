/* The generation loop of a chat or completion job: prompt → tokens → decode → sample →
 * detokenize → stop strings → events. */
#include <stdlib.h>
#include <string.h>

#include "runtime/engine.h"
#include "runtime/common.h"
#include "runtime/stopmatch.h"

#define PREFILL_CHUNK 256 /* prompt tokens per decode call: cancel is checked in between */
#define DEFAULT_CTX_CAP 4096

/* A token whose text has been produced but not yet released (it may be part of a stop). */
typedef struct pending_logprob {
    rt_token_logprob lp;
    size_t end; /* offset just after the token's text in the generated text */
} pending_logprob;

typedef struct gen {
    rt_job *job;
    const rt_chat_request *req;
    const rt_run_env *env;
    fluid_model *model;
    const fluid_vocab *vocab;
    int32_t n_vocab;
    fluid_session *session;
    fluid_sampler *sampler;
    fluid_detok *detok;
    int64_t reserved;
    rt_stopper stop;
    size_t pushed;  /* bytes of generated text given to the stopper */
    size_t emitted; /* bytes of generated text released to the client */
    pending_logprob *pending;
    size_t n_pending, cap_pending;
    fluid_token_logprob *top;
    rt_usage usage;
    rt_error error;
} gen;

static rt_status engine_error(gen *g, rt_status status, const fluid_error *ferr, const char *what) {
    return rt_set_error(&g->error, status, 0, "%s: %s", what, ferr->message);
}

static void token_text(const fluid_vocab *vocab, int32_t token, char *buf, size_t *len) {
    size_t n = fluid_token_bytes(vocab, token, false, buf, RT_TOKEN_TEXT_MAX - 1);
    if (n > RT_TOKEN_TEXT_MAX - 1) n = RT_TOKEN_TEXT_MAX - 1;
    buf[n] = '\0';
    *len = n;
}

/* Builds the prompt text: the chat template applied to the messages, or the raw prompt. */
static char *prompt_text(gen *g, bool *add_special) {
    fluid_error ferr = {0};
    *add_special = true;
    if (g->req->n_messages == 0) {
        char *p = strdup(g->req->prompt != NULL ? g->req->prompt : "");
        if (p == NULL) rt_set_error(&g->error, RT_ERR_INTERNAL, 0, "out of memory");
        return p;
    }
    char *text = fluid_chat_format(g->vocab, g->req->messages, g->req->n_messages, true, &ferr);
    if (text == NULL) {
        engine_error(g, RT_ERR_INTERNAL, &ferr, "cannot apply the chat template");
        return NULL;
    }
    /* Templates that write the BOS token themselves must not get a second one. */
    int32_t bos = fluid_token_bos(g->vocab);
    if (bos >= 0) {
        char bos_text[RT_TOKEN_TEXT_MAX];
        size_t n = fluid_token_bytes(g->vocab, bos, true, bos_text, sizeof bos_text);
        if (n > 0 && n < sizeof bos_text && strncmp(text, bos_text, n) == 0) *add_special = false;
    }
    return text;
}

static rt_status tokenize_prompt(gen *g, int32_t **tokens, size_t *n_tokens) {
    bool add_special = true;
    char *text = prompt_text(g, &add_special);
    if (text == NULL) return g->error.status;
    fluid_error ferr = {0};
    fluid_status st =
        fluid_tokenize(g->vocab, text, strlen(text), add_special, true, tokens, n_tokens, &ferr);
    free(text);
    if (st != FLUID_OK) return engine_error(g, RT_ERR_BAD_REQUEST, &ferr, "cannot tokenize");
    if (*n_tokens == 0)
        return rt_set_error(&g->error, RT_ERR_BAD_REQUEST, 0, "the prompt is empty");
    return RT_OK;
}

/* OpenAI's errors when the prompt, or the prompt and the max_tokens the client asked for, do
 * not fit the context, so clients that shorten the history on them work here too. Without
 * max_tokens from the client, generation runs until the context is full. */
static rt_status check_context(gen *g, size_t n_prompt, int32_t ctx) {
    const char *field = g->req->n_messages > 0 ? "messages" : "prompt";
    if (n_prompt >= (size_t)ctx)
        return rt_set_field_error(&g->error, "context_length_exceeded", field,
                                  "This model's maximum context length is %d tokens. However, "
                                  "your %s resulted in %zu tokens (at least one token must be "
                                  "left for the completion). Please reduce the length of the %s.",
                                  (int)ctx, field, n_prompt, field);
    size_t wanted = n_prompt + (size_t)g->req->max_tokens;
    if (g->req->max_tokens_explicit && wanted > (size_t)ctx)
        return rt_set_field_error(&g->error, "context_length_exceeded", field,
                                  "This model's maximum context length is %d tokens. However, "
                                  "you requested %zu tokens (%zu in the %s, %d in the "
                                  "completion). Please reduce the length of the %s or completion.",
                                  (int)ctx, wanted, n_prompt, field, (int)g->req->max_tokens,
                                  field);
    return RT_OK;
}

static rt_status open_session(gen *g, size_t n_prompt) {
    fluid_error ferr = {0};
    int n_ctx = g->env->n_ctx;
    if (n_ctx <= 0) {
        fluid_model_info info;
        fluid_model_get_info(g->model, &info);
        n_ctx = info.n_ctx_train > 0 && info.n_ctx_train < DEFAULT_CTX_CAP ? info.n_ctx_train
                                                                           : DEFAULT_CTX_CAP;
    }
    g->session = fluid_session_create(g->model, n_ctx, &ferr);
    if (g->session == NULL)
        return engine_error(g, RT_ERR_INTERNAL, &ferr, "cannot start a session");
    int64_t bytes = (int64_t)fluid_session_bytes(g->session);
    rt_status st = g->env->reserve(g->env->reserve_user, bytes, &g->error);
    if (st != RT_OK) return st;
    g->reserved = bytes;
    return check_context(g, n_prompt, fluid_session_n_ctx(g->session));
}

/* True (with the error set) when the model's file was truncated under it: what the last step
 * computed came from zeroed weights (see util/mapguard.h). */
static bool file_changed(gen *g) {
    if (!fluid_model_file_damaged(g->model)) return false;
    rt_set_error(&g->error, RT_ERR_INTERNAL, 0,
                 "the model file changed on disk while in use; it is unloaded and will be loaded "
                 "again by the next request");
    return true;
}

/* Evaluates the prompt in chunks, checking for cancellation between them. */
static rt_status prefill(gen *g, const int32_t *tokens, size_t n) {
    fluid_error ferr = {0};
    for (size_t at = 0; at < n; at += PREFILL_CHUNK) {
        if (rt_job_cancelled(g->job)) return RT_OK;
        int32_t chunk = (int32_t)(n - at < PREFILL_CHUNK ? n - at : PREFILL_CHUNK);
        if (fluid_session_decode(g->session, tokens + at, chunk, g->env->pool, &ferr) != FLUID_OK)
            return engine_error(g, RT_ERR_INTERNAL, &ferr, "decoding the prompt failed");
        if (file_changed(g)) return g->error.status;
    }
    return RT_OK;
}

/* Releases the tokens whose text is now entirely emitted, with the text itself. */
static bool emit(gen *g, const char *text, size_t len, bool all_tokens) {
    g->emitted += len;
    size_t n = 0;
    while (n < g->n_pending && (all_tokens || g->pending[n].end <= g->emitted)) n++;
    rt_token_logprob *lps = NULL;
    if (n > 0) {
        lps = malloc(n * sizeof *lps);
        if (lps == NULL) return false;
        for (size_t i = 0; i < n; i++) lps[i] = g->pending[i].lp;
        memmove(g->pending, g->pending + n, (g->n_pending - n) * sizeof *g->pending);
        g->n_pending -= n;
    }
    bool ok = rt_job_emit_text(g->job, text, len, lps, n);
    free(lps);
    return ok;
}

static bool release_ready(gen *g, bool at_end) {
    size_t ready = rt_stopper_ready(&g->stop, at_end);
    bool all = at_end && !g->stop.matched;
    if (ready == 0 && !all) return true;
    bool ok = emit(g, g->stop.buf, ready, all);
    rt_stopper_consume(&g->stop, ready);
    return ok;
}

static bool record_logprob(gen *g, const float *logits, int32_t token) {
    if (g->n_pending == g->cap_pending) {
        size_t cap = g->cap_pending > 0 ? g->cap_pending * 2 : 16;
        pending_logprob *grown = realloc(g->pending, cap * sizeof *grown);
        if (grown == NULL) return false;
        g->pending = grown;
        g->cap_pending = cap;
    }
    pending_logprob *p = &g->pending[g->n_pending++];
    memset(p, 0, sizeof *p);
    int32_t k = g->req->top_logprobs;
    if (k < 0) k = 0;
    if (k > RT_MAX_TOP_LOGPROBS) k = RT_MAX_TOP_LOGPROBS;
    p->lp.logprob = fluid_logprobs(logits, g->n_vocab, token, k, g->top);
    token_text(g->vocab, token, p->lp.text, &p->lp.text_len);
    p->lp.n_top = k;
    for (int32_t i = 0; i < k; i++) {
        token_text(g->vocab, g->top[i].token, p->lp.top[i].text, &p->lp.top[i].text_len);
        p->lp.top[i].logprob = g->top[i].logprob;
    }
    p->end = SIZE_MAX; /* set once the token's text is known */
    return true;
}

static bool push_text(gen *g, const char *text, size_t len) {
    if (!rt_stopper_push(&g->stop, text, len)) return false;
    g->pushed += len;
    if (g->n_pending > 0 && g->pending[g->n_pending - 1].end == SIZE_MAX)
        g->pending[g->n_pending - 1].end = g->pushed;
    return true;
}

/* The decoding loop proper. Returns the finish reason; errors go to g->error. */
static rt_finish_reason decode_loop(gen *g) {
    fluid_error ferr = {0};
    const rt_chat_request *req = g->req;
    int32_t n_ctx = fluid_session_n_ctx(g->session);
    for (;;) {
        if (rt_job_cancelled(g->job)) return RT_FINISH_CANCELLED;
        const float *logits = fluid_session_logits(g->session, -1);
        if (logits == NULL) {
            rt_set_error(&g->error, RT_ERR_INTERNAL, 0, "the engine gave no logits");
            return RT_FINISH_ERROR;
        }
        int32_t token = fluid_sampler_sample(g->sampler, logits);
        if (token < 0 || fluid_token_is_eog(g->vocab, token)) return RT_FINISH_STOP;
        g->usage.completion_tokens++;
        if (req->logprobs && !record_logprob(g, logits, token)) goto oom;
        fluid_sampler_accept(g->sampler, token);
        size_t len = 0;
        const char *piece = fluid_detok_push(g->detok, token, &len);
        if (!push_text(g, piece, len) || !release_ready(g, false)) goto oom;
        if (g->stop.matched) return RT_FINISH_STOP;
        if (req->max_tokens > 0 && g->usage.completion_tokens >= req->max_tokens)
            return RT_FINISH_LENGTH;
        /* Prompt and completion together never pass the context. */
        if (fluid_session_n_past(g->session) + 1 >= n_ctx) return RT_FINISH_LENGTH;
        fluid_status st = fluid_session_decode(g->session, &token, 1, g->env->pool, &ferr);
        if (st == FLUID_ERR_CONTEXT_FULL) return RT_FINISH_LENGTH;
        if (st != FLUID_OK) {
            engine_error(g, RT_ERR_INTERNAL, &ferr, "decoding failed");
            return RT_FINISH_ERROR;
        }
        if (file_changed(g)) return RT_FINISH_ERROR;
    }
oom:
    rt_set_error(&g->error, RT_ERR_INTERNAL, 0, "out of memory while generating");
    return RT_FINISH_ERROR;
}

/* Emits what the detokenizer and the stop matcher still hold once generation ended. */
static void drain(gen *g, rt_finish_reason reason) {
    if (reason != RT_FINISH_STOP && reason != RT_FINISH_LENGTH) return;
    if (g->stop.matched) {
        g->n_pending = 0;
        return;
    }
    size_t len = 0;
    const char *rest = fluid_detok_flush(g->detok, &len);
    if (push_text(g, rest, len)) release_ready(g, !g->stop.matched);
    if (g->stop.matched) g->n_pending = 0;
}

static rt_finish_reason run(gen *g) {
    int32_t *tokens = NULL;
    size_t n_tokens = 0;
    fluid_error ferr = {0};
    if (tokenize_prompt(g, &tokens, &n_tokens) != RT_OK) return RT_FINISH_ERROR;
    g->usage.prompt_tokens = (int)n_tokens;
    rt_finish_reason reason = RT_FINISH_ERROR;
    if (open_session(g, n_tokens) != RT_OK) goto out;
    g->sampler = fluid_sampler_create(&g->req->sampling, g->n_vocab, &ferr);
    if (g->sampler == NULL) {
        engine_error(g, RT_ERR_BAD_REQUEST, &ferr, "bad sampling parameters");
        goto out;
    }
    g->detok = fluid_detok_create(g->vocab, false);
    g->top = calloc(RT_MAX_TOP_LOGPROBS, sizeof *g->top);
    if (g->detok == NULL || g->top == NULL) {
        rt_set_error(&g->error, RT_ERR_INTERNAL, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_tokens; i++) fluid_sampler_accept(g->sampler, tokens[i]);
    if (g->req->echo && g->req->prompt != NULL)
        rt_job_emit_text(g->job, g->req->prompt, strlen(g->req->prompt), NULL, 0);
    if (prefill(g, tokens, n_tokens) != RT_OK) goto out;
    reason = decode_loop(g);
    drain(g, reason);
out:
    free(tokens);
    return reason;
}

void rt_generate(fluid_model *model, rt_job *job, const rt_run_env *env) {
    gen g = {.job = job, .req = rt_job_chat(job), .env = env, .model = model};
    g.vocab = fluid_model_vocab(model);
    fluid_model_info info;
    fluid_model_get_info(model, &info);
    g.n_vocab = info.n_vocab; /* the logits' width: padded embedding rows included */
    rt_stopper_init(&g.stop, g.req->stop, g.req->n_stop);
    rt_finish_reason reason = run(&g);
    if (rt_job_cancelled(job) && reason != RT_FINISH_ERROR) reason = RT_FINISH_CANCELLED;
    /* Memory is given back before the client hears the job ended, so /health agrees. */
    fluid_session_free(g.session);
    if (g.reserved != 0) env->reserve(env->reserve_user, -g.reserved, NULL);
    rt_job_result result = {.reason = reason, .usage = g.usage, .error = &g.error};
    rt_job_finish(job, &result);
    rt_stopper_free(&g.stop);
    free(g.pending);
    free(g.top);
    fluid_detok_free(g.detok);
    fluid_sampler_free(g.sampler);
}

/* fluid-cli's language-model mode: tokenize a prompt, or generate text from it.
 *
 * Output (stdout), in this order:
 *   - the generated text, streamed as it is produced, then one newline;
 *   - with --top-logprobs K: one JSON line per generated token,
 *       {"token":ID,"logprob":LP,"top":[[ID,LP],...]}
 *     (the K most likely tokens, most likely first; LP is the natural-log probability under the
 *     model's raw distribution, null when it is -infinity);
 *   - with --token-ids: the generated token ids, space-separated, as the last line.
 * The end-of-generation token that stops generation is not part of the output. With --tokenize
 * only the prompt's token ids are printed (one line, BOS/EOS as the vocabulary asks).
 * Timings go to stderr. Exit code 0 on success, 1 on any error. */
#include "fluid-cli/llm.h"

#include "fluid/fluid.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct llm_options {
    const char *model;
    const char *prompt;
    const char *system;
    int32_t n_predict;
    int32_t n_threads;
    int32_t n_ctx;
    int32_t top_logprobs;
    bool chat, token_ids, tokenize, help;
    fluid_sampling sampling;
} llm_options;

/* ---- command line ------------------------------------------------------------------------ */

typedef enum { OPT_FLAG, OPT_STRING, OPT_INT, OPT_FLOAT, OPT_U64 } opt_kind;

typedef struct opt_spec {
    const char *name, *alias;
    opt_kind kind;
    size_t offset; /* of the field in llm_options */
    const char *help;
} opt_spec;

#define FIELD(f) offsetof(llm_options, f)

static const opt_spec OPTIONS[] = {
    {"--model", "-m", OPT_STRING, FIELD(model),
     "MODEL.gguf: the model (or a vocabulary-only "
     "GGUF with --tokenize)"},
    {"--prompt", "-p", OPT_STRING, FIELD(prompt), "TEXT: the prompt"},
    {"--n-predict", "-n", OPT_INT, FIELD(n_predict), "N: tokens to generate at most (128)"},
    {"--threads", "-t", OPT_INT, FIELD(n_threads), "N: compute threads (0 = one per core)"},
    {"--ctx-size", "-c", OPT_INT, FIELD(n_ctx), "N: context size (prompt + N tokens)"},
    {"--temp", NULL, OPT_FLOAT, FIELD(sampling.temperature), "T: temperature, 0 = greedy (1)"},
    {"--top-k", NULL, OPT_INT, FIELD(sampling.top_k), "K: keep the K best tokens, 0 = off"},
    {"--top-p", NULL, OPT_FLOAT, FIELD(sampling.top_p), "P: nucleus sampling, 1 = off"},
    {"--min-p", NULL, OPT_FLOAT, FIELD(sampling.min_p), "P: drop tokens below P x best, 0 = off"},
    {"--repeat-penalty", NULL, OPT_FLOAT, FIELD(sampling.repeat_penalty),
     "R: penalise recent tokens, 1 = off"},
    {"--repeat-last-n", NULL, OPT_INT, FIELD(sampling.repeat_last_n),
     "N: recent tokens the penalties see (64, -1 = all)"},
    {"--presence-penalty", NULL, OPT_FLOAT, FIELD(sampling.presence_penalty),
     "X: OpenAI presence penalty (0)"},
    {"--frequency-penalty", NULL, OPT_FLOAT, FIELD(sampling.frequency_penalty),
     "X: OpenAI frequency penalty (0)"},
    {"--seed", "-s", OPT_U64, FIELD(sampling.seed), "S: random seed (default: a fresh one)"},
    {"--chat", NULL, OPT_FLAG, FIELD(chat), "wrap the prompt as a user message (chat template)"},
    {"--system", NULL, OPT_STRING, FIELD(system), "TEXT: system message (with --chat)"},
    {"--token-ids", NULL, OPT_FLAG, FIELD(token_ids), "print the generated ids as the last line"},
    {"--top-logprobs", NULL, OPT_INT, FIELD(top_logprobs),
     "K: print a JSON line of the K likeliest tokens per generated token"},
    {"--tokenize", NULL, OPT_FLAG, FIELD(tokenize), "only print the prompt's token ids"},
    {"--help", "-h", OPT_FLAG, FIELD(help), "show this help"},
};

enum { N_OPTIONS = sizeof OPTIONS / sizeof OPTIONS[0] };

void cli_llm_usage(FILE *out) {
    fprintf(out, "Language models (GGUF):\n"
                 "  fluid-cli -m MODEL.gguf -p PROMPT [-n N] [options]\n");
    for (int i = 0; i < N_OPTIONS; i++) {
        const opt_spec *o = &OPTIONS[i];
        char names[48];
        snprintf(names, sizeof names, "%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "",
                 o->name);
        fprintf(out, "  %-22s %s\n", names, o->help);
    }
    fprintf(out,
            "Output: the generated text and a newline; with --top-logprobs one line per token\n"
            "  {\"token\":ID,\"logprob\":LP,\"top\":[[ID,LP],...]} (natural log, null for\n"
            "  -inf); with --token-ids the ids as the last line. Timings go to stderr.\n");
}

static const opt_spec *find_option(const char *arg) {
    for (int i = 0; i < N_OPTIONS; i++)
        if (strcmp(arg, OPTIONS[i].name) == 0 ||
            (OPTIONS[i].alias && strcmp(arg, OPTIONS[i].alias) == 0))
            return &OPTIONS[i];
    return NULL;
}

/* Stores text as the option's value; false (with a message) when it does not parse. */
static bool set_value(llm_options *o, const opt_spec *spec, const char *text) {
    char *field = (char *)o + spec->offset;
    char *end = NULL;
    errno = 0;
    switch (spec->kind) {
    case OPT_STRING:
        *(const char **)field = text;
        return true;
    case OPT_INT: {
        long v = strtol(text, &end, 10);
        if (errno == 0 && end != text && *end == '\0' && v >= INT32_MIN && v <= INT32_MAX) {
            *(int32_t *)field = (int32_t)v;
            return true;
        }
        break;
    }
    case OPT_FLOAT: {
        float v = strtof(text, &end);
        if (errno == 0 && end != text && *end == '\0' && isfinite(v)) {
            *(float *)field = v;
            return true;
        }
        break;
    }
    case OPT_U64: {
        unsigned long long v = strtoull(text, &end, 10);
        if (errno == 0 && end != text && *end == '\0' && text[0] != '-') {
            *(uint64_t *)field = (uint64_t)v;
            return true;
        }
        break;
    }
    case OPT_FLAG:
        break;
    }
    fprintf(stderr, "fluid-cli: invalid value '%s' for %s\n", text, spec->name);
    return false;
}

static bool parse_args(int argc, char **argv, llm_options *o) {
    *o = (llm_options){.n_predict = 128};
    fluid_sampling_defaults(&o->sampling);
    for (int i = 1; i < argc; i++) {
        const opt_spec *spec = find_option(argv[i]);
        if (spec == NULL) {
            fprintf(stderr, "fluid-cli: unknown option '%s' (see --help)\n", argv[i]);
            return false;
        }
        if (spec->kind == OPT_FLAG) {
            *(bool *)((char *)o + spec->offset) = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "fluid-cli: %s needs a value\n", spec->name);
            return false;
        }
        if (!set_value(o, spec, argv[++i])) return false;
    }
    if (o->help) return true;
    const char *problem = NULL;
    if (o->prompt == NULL)
        problem = "no prompt given (-p PROMPT)";
    else if (o->n_predict < 0)
        problem = "-n must be >= 0";
    else if (o->n_threads < 0)
        problem = "-t must be >= 0";
    else if (o->n_ctx < 0)
        problem = "-c must be >= 0";
    else if (o->top_logprobs < 0)
        problem = "--top-logprobs must be >= 0";
    else if (o->system && !o->chat)
        problem = "--system needs --chat";
    if (problem) {
        fprintf(stderr, "fluid-cli: %s\n", problem);
        return false;
    }
    return true;
}

/* ---- prompt ------------------------------------------------------------------------------ */

/* The prompt's tokens (chat-formatted with --chat); NULL after printing an error. */
static int32_t *prompt_tokens(const fluid_vocab *vocab, const llm_options *o, size_t *n) {
    fluid_error err = {0};
    char *formatted = NULL;
    const char *text = o->prompt;
    if (o->chat) {
        fluid_chat_message msgs[2];
        size_t n_msgs = 0;
        if (o->system) msgs[n_msgs++] = (fluid_chat_message){"system", o->system};
        msgs[n_msgs++] = (fluid_chat_message){"user", o->prompt};
        formatted = fluid_chat_format(vocab, msgs, n_msgs, true, &err);
        if (formatted == NULL) {
            fprintf(stderr, "fluid-cli: chat template: %s\n", err.message);
            return NULL;
        }
        text = formatted;
    }
    int32_t *tokens = NULL;
    /* A chat-formatted prompt holds special tokens' text (e.g. "<|im_start|>"); a raw prompt is
     * taken literally. */
    fluid_status st = fluid_tokenize(vocab, text, strlen(text), true, o->chat, &tokens, n, &err);
    free(formatted);
    if (st != FLUID_OK) {
        fprintf(stderr, "fluid-cli: tokenize: %s\n", err.message);
        return NULL;
    }
    return tokens;
}

static void print_ids(const int32_t *ids, size_t n) {
    for (size_t i = 0; i < n; i++) printf(i ? " %" PRId32 : "%" PRId32, ids[i]);
    printf("\n");
}

static int run_tokenize(const llm_options *o) {
    fluid_error err = {0};
    fluid_vocab *vocab = fluid_vocab_load(o->model, &err);
    if (vocab == NULL) {
        fprintf(stderr, "fluid-cli: %s: %s\n", o->model, err.message);
        return 1;
    }
    size_t n = 0;
    int32_t *tokens = prompt_tokens(vocab, o, &n);
    if (tokens) print_ids(tokens, n);
    free(tokens);
    fluid_vocab_free(vocab);
    return tokens ? 0 : 1;
}

/* ---- generation -------------------------------------------------------------------------- */

typedef struct generation {
    int32_t *ids;             /* generated tokens */
    fluid_token_logprob *top; /* top_logprobs entries per generated token */
    float *logprob;           /* of each generated token */
    int32_t n;
} generation;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void print_logprob(float lp) {
    if (isfinite(lp))
        printf("%.6f", (double)lp);
    else
        printf("null");
}

static void print_logprob_lines(const generation *g, int32_t k) {
    for (int32_t i = 0; i < g->n; i++) {
        printf("{\"token\":%" PRId32 ",\"logprob\":", g->ids[i]);
        print_logprob(g->logprob[i]);
        printf(",\"top\":[");
        for (int32_t j = 0; j < k; j++) {
            const fluid_token_logprob *t = &g->top[(size_t)i * (size_t)k + (size_t)j];
            printf(j ? ",[%" PRId32 "," : "[%" PRId32 ",", t->token);
            print_logprob(t->logprob);
            printf("]");
        }
        printf("]}\n");
    }
}

static void write_text(const char *text, size_t len) {
    if (len == 0) return;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
}

/* Decodes the prompt, then samples up to n_predict tokens, streaming their text. */
/* Token ids the model scores: the rows of its output matrix, which may be more than the
 * vocabulary's tokens (embeddings padded to a round count). */
static int32_t logits_width(const fluid_model *model) {
    fluid_model_info info;
    fluid_model_get_info(model, &info);
    return info.n_vocab;
}

static bool generate(fluid_model *model, fluid_session *s, fluid_pool *pool, fluid_sampler *sampler,
                     const int32_t *prompt, size_t n_prompt, const llm_options *o, generation *g,
                     fluid_error *err) {
    const fluid_vocab *vocab = fluid_model_vocab(model);
    int32_t n_vocab = logits_width(model);
    for (size_t i = 0; i < n_prompt; i++) fluid_sampler_accept(sampler, prompt[i]);
    double t0 = now_seconds();
    if (fluid_session_decode(s, prompt, (int32_t)n_prompt, pool, err) != FLUID_OK) return false;
    double t1 = now_seconds();
    fluid_detok *detok = fluid_detok_create(vocab, false);
    if (detok == NULL) {
        err->code = FLUID_ERR_NOMEM;
        snprintf(err->message, sizeof err->message, "out of memory");
        return false;
    }
    bool ok = true;
    while (g->n < o->n_predict) {
        const float *logits = fluid_session_logits(s, -1);
        if (logits == NULL) {
            err->code = FLUID_ERR_ARGUMENT;
            snprintf(err->message, sizeof err->message, "the session returned no logits");
            ok = false;
            break;
        }
        int32_t tok = fluid_sampler_sample(sampler, logits);
        if (tok < 0 || fluid_token_is_eog(vocab, tok)) break;
        float lp = fluid_logprobs(logits, n_vocab, tok, o->top_logprobs,
                                  g->top ? g->top + (size_t)g->n * (size_t)o->top_logprobs : NULL);
        if (g->logprob) g->logprob[g->n] = lp;
        g->ids[g->n++] = tok;
        fluid_sampler_accept(sampler, tok);
        size_t len = 0;
        const char *piece = fluid_detok_push(detok, tok, &len);
        write_text(piece, len);
        if (g->n < o->n_predict && fluid_session_decode(s, &tok, 1, pool, err) != FLUID_OK) {
            ok = false;
            break;
        }
    }
    size_t len = 0;
    const char *rest = fluid_detok_flush(detok, &len);
    write_text(rest, len);
    write_text("\n", 1);
    fluid_detok_free(detok);
    double t2 = now_seconds();
    fprintf(stderr,
            "fluid-cli: prompt %zu tokens in %.3f s (%.1f t/s); generated %" PRId32
            " tokens in %.3f s (%.1f t/s)\n",
            n_prompt, t1 - t0, (double)n_prompt / (t1 - t0 + 1e-9), g->n, t2 - t1,
            (double)g->n / (t2 - t1 + 1e-9));
    return ok;
}

static bool alloc_generation(generation *g, const llm_options *o) {
    size_t n = o->n_predict > 0 ? (size_t)o->n_predict : 1;
    g->ids = malloc(n * sizeof *g->ids);
    if (o->top_logprobs > 0) {
        g->logprob = malloc(n * sizeof *g->logprob);
        g->top = malloc(n * (size_t)o->top_logprobs * sizeof *g->top);
        if (g->logprob == NULL || g->top == NULL) return false;
    }
    return g->ids != NULL;
}

static void free_generation(generation *g) {
    free(g->ids);
    free(g->top);
    free(g->logprob);
}

static int run_generate(const llm_options *o) {
    fluid_error err = {0};
    int status = 1;
    int32_t *prompt = NULL;
    fluid_session *s = NULL;
    fluid_pool *pool = NULL;
    fluid_sampler *sampler = NULL;
    generation g = {0};
    fluid_model *model = fluid_model_load(o->model, &err);
    if (model == NULL) {
        fprintf(stderr, "fluid-cli: %s: %s\n", o->model, err.message);
        return 1;
    }
    const fluid_vocab *vocab = fluid_model_vocab(model);
    if (vocab == NULL) {
        fprintf(stderr, "fluid-cli: %s has no tokenizer (tokenizer.ggml.*)\n", o->model);
        goto done;
    }
    int32_t n_vocab = logits_width(model);
    size_t n_prompt = 0;
    prompt = prompt_tokens(vocab, o, &n_prompt);
    if (prompt == NULL) goto done;
    if (n_prompt == 0) {
        fprintf(stderr, "fluid-cli: the prompt is empty and the vocabulary adds no BOS\n");
        goto done;
    }
    if (o->top_logprobs > n_vocab) {
        fprintf(stderr,
                "fluid-cli: --top-logprobs is larger than the model's token count (%" PRId32 ")\n",
                n_vocab);
        goto done;
    }
    int64_t want_ctx = o->n_ctx > 0 ? o->n_ctx : (int64_t)n_prompt + o->n_predict;
    if (want_ctx > INT32_MAX) want_ctx = INT32_MAX;
    s = fluid_session_create(model, (int32_t)want_ctx, &err);
    sampler = s ? fluid_sampler_create(&o->sampling, n_vocab, &err) : NULL;
    if (sampler == NULL) {
        fprintf(stderr, "fluid-cli: %s\n", err.message);
        goto done;
    }
    pool = fluid_pool_create(o->n_threads);
    if (pool == NULL) {
        fprintf(stderr, "fluid-cli: cannot create %" PRId32 " threads\n", o->n_threads);
        goto done;
    }
    if (!alloc_generation(&g, o)) {
        fprintf(stderr, "fluid-cli: out of memory\n");
        goto done;
    }
    bool ok = generate(model, s, pool, sampler, prompt, n_prompt, o, &g, &err);
    if (o->top_logprobs > 0) print_logprob_lines(&g, o->top_logprobs);
    if (o->token_ids) print_ids(g.ids, (size_t)g.n);
    if (!ok) fprintf(stderr, "fluid-cli: %s\n", err.message);
    status = ok ? 0 : 1;
done:
    free_generation(&g);
    fluid_sampler_free(sampler);
    if (pool) fluid_pool_free(pool);
    if (s) fluid_session_free(s);
    free(prompt);
    fluid_model_free(model);
    return status;
}

int cli_llm_main(int argc, char **argv) {
    llm_options o;
    if (!parse_args(argc, argv, &o)) return 1;
    if (o.help) {
        cli_llm_usage(stdout);
        return 0;
    }
    if (o.model == NULL) {
        fprintf(stderr, "fluid-cli: no model given (-m MODEL)\n");
        return 1;
    }
    return o.tokenize ? run_tokenize(&o) : run_generate(&o);
}

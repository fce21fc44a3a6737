/* Test helper: evaluates token ids with a model and writes the logits of every position, then
 * optionally generates greedily.
 *
 *   fluid-logits -m MODEL.gguf -o OUT.f32 [--chunk N] [--max-batch N] [--generate N]
 *                [-t THREADS] [-c N_CTX] TOKEN...
 *
 * The prompt is fed in decode calls of --chunk tokens (0 = all at once, 1 = one by one); the
 * session evaluates at most --max-batch tokens together (exercising its own splitting). OUT
 * receives n_prompt x n_vocab float32 (native byte order). --generate N then picks N tokens by
 * argmax (lowest id on ties), each decoded alone with only the last logits kept, and prints them
 * space-separated on one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/model.h"
#include "fluid/fluid.h"

typedef struct options {
    const char *model, *out;
    int chunk, max_batch, generate, threads, n_ctx;
    int32_t *tokens;
    int n_tokens;
} options;

static int usage(void) {
    fprintf(stderr, "usage: fluid-logits -m MODEL -o OUT [--chunk N] [--max-batch N] "
                    "[--generate N] [-t THREADS] [-c N_CTX] TOKEN...\n");
    return 2;
}

static bool parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 1 << 24) return false;
    *out = (int)v;
    return true;
}

static bool parse_args(int argc, char **argv, options *o) {
    o->tokens = calloc((size_t)argc, sizeof(int32_t));
    if (o->tokens == NULL) return false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_value = i + 1 < argc;
        int *num = strcmp(a, "--chunk") == 0       ? &o->chunk
                   : strcmp(a, "--max-batch") == 0 ? &o->max_batch
                   : strcmp(a, "--generate") == 0  ? &o->generate
                   : strcmp(a, "-t") == 0          ? &o->threads
                   : strcmp(a, "-c") == 0          ? &o->n_ctx
                                                   : NULL;
        if (num != NULL) {
            if (!has_value || !parse_int(argv[++i], num)) return false;
        } else if (strcmp(a, "-m") == 0 && has_value) {
            o->model = argv[++i];
        } else if (strcmp(a, "-o") == 0 && has_value) {
            o->out = argv[++i];
        } else {
            int tok;
            if (!parse_int(a, &tok)) return false;
            o->tokens[o->n_tokens++] = tok;
        }
    }
    return o->model != NULL && o->out != NULL && o->n_tokens > 0;
}

static int32_t argmax(const float *v, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* Feeds the prompt and writes the logits of every position to `out`. */
static bool eval_prompt(fluid_session *s, const options *o, int32_t n_vocab, fluid_pool *pool,
                        FILE *out, fluid_error *err) {
    int step = o->chunk > 0 ? o->chunk : o->n_tokens;
    fluid_session_keep_all_logits(s, true);
    for (int done = 0; done < o->n_tokens; done += step) {
        int n = o->n_tokens - done < step ? o->n_tokens - done : step;
        if (fluid_session_decode(s, o->tokens + done, n, pool, err) != FLUID_OK) return false;
        for (int i = 0; i < n; i++) {
            const float *row = fluid_session_logits(s, i);
            if (row == NULL ||
                fwrite(row, sizeof(float), (size_t)n_vocab, out) != (size_t)n_vocab) {
                fprintf(stderr, "fluid-logits: no logits for position %d\n", done + i);
                return false;
            }
        }
    }
    return true;
}

static bool generate(fluid_session *s, const options *o, int32_t n_vocab, fluid_pool *pool,
                     fluid_error *err) {
    fluid_session_keep_all_logits(s, false);
    int32_t next = argmax(fluid_session_logits(s, -1), n_vocab);
    for (int i = 0; i < o->generate; i++) {
        printf("%s%d", i ? " " : "", (int)next);
        if (i + 1 == o->generate) break;
        if (fluid_session_decode(s, &next, 1, pool, err) != FLUID_OK) return false;
        next = argmax(fluid_session_logits(s, -1), n_vocab);
    }
    printf("\n");
    return true;
}

int main(int argc, char **argv) {
    options o = {.threads = 2};
    if (!parse_args(argc, argv, &o)) {
        free(o.tokens);
        return usage();
    }
    fluid_error err = {0};
    int rc = 1;
    fluid_pool *pool = fluid_pool_create(o.threads);
    fluid_model *model = fluid_model_load(o.model, &err);
    fluid_session *s = model ? fluid_session_create(model, o.n_ctx, &err) : NULL;
    FILE *out = s ? fopen(o.out, "wb") : NULL;
    if (s != NULL && out != NULL) {
        if (o.max_batch > 0 && o.max_batch < s->max_batch) s->max_batch = o.max_batch;
        fluid_model_info info;
        fluid_model_get_info(model, &info);
        if (eval_prompt(s, &o, info.n_vocab, pool, out, &err) &&
            generate(s, &o, info.n_vocab, pool, &err))
            rc = 0;
    }
    if (out != NULL && fclose(out) != 0) rc = 1;
    if (rc != 0) fprintf(stderr, "fluid-logits: %s\n", err.message[0] ? err.message : "failed");
    fluid_session_free(s);
    fluid_model_free(model);
    fluid_pool_free(pool);
    free(o.tokens);
    return rc;
}

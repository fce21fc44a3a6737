/* fluid-bench -m MODEL.gguf [-t THREADS] [-p N_PROMPT] [-n N_GEN] [-r REPS] [--json|-o json]
 *
 * The tests of llama-bench: ppN evaluates an N-token prompt in one decode call, tgN generates
 * N tokens one decode call at a time; both start from an empty context, after one warm-up
 * run, and are repeated REPS times. -t, -p and -n take comma-separated lists. Tokens are fixed
 * pseudo-random ids, so no sampling is timed. One row per test: tokens/s mean +- sample stddev.
 * With --json: a JSON array, one object per test, with llama-bench's field names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/cpu.h"
#include "engine/gguf.h"
#include "engine/model.h"
#include "engine/quant.h"
#include "fluid-bench/bench.h"
#include "fluid/fluid.h"

enum { MAX_LIST = 16, MAX_REPS = 100 };

typedef struct int_list {
    int v[MAX_LIST];
    int n;
} int_list;

typedef struct options {
    const char *model;
    int_list threads, prompt, gen;
    int reps;
    bool json;
} options;

/* Facts about the model shown in every row. */
typedef struct model_facts {
    char type[96]; /* e.g. "qwen2 0.5B Q4_K_M" */
    uint64_t size; /* bytes of all tensors */
    uint64_t n_params;
    uint64_t weight_bytes;     /* weights read to generate one token */
    uint64_t kv_bytes_per_pos; /* KV cache bytes read per cached position */
    int32_t n_vocab;
} model_facts;

typedef struct test_result {
    const char *kind; /* "pp" or "tg" */
    int n_prompt, n_gen, threads;
    double samples_ns[MAX_REPS];
    double samples_ts[MAX_REPS];
    int n;
} test_result;

static bool parse_list(const char *s, int_list *out, int min) {
    out->n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < min || v > 1 << 20 || out->n == MAX_LIST) return false;
        out->v[out->n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end != ',' && *end != '\0') return false;
    }
    return out->n > 0;
}

static int usage(void) {
    fprintf(stderr, "usage: fluid-bench -m MODEL.gguf [-t THREADS] [-p N_PROMPT] [-n N_GEN] "
                    "[-r REPS] [--json | -o json|md]\n"
                    "       fluid-bench --membw [-t THREADS] [--size MIB] [-r PASSES]\n"
                    "(-t, -p and -n take comma-separated lists)\n");
    return 2;
}

static bool parse_args(int argc, char **argv, options *o) {
    *o = (options){.threads = {{2}, 1}, .prompt = {{512}, 1}, .gen = {{128}, 1}, .reps = 5};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        if (i + 1 >= argc) return false;
        const char *v = argv[++i];
        if (strcmp(a, "-m") == 0)
            o->model = v;
        else if (strcmp(a, "-t") == 0) {
            if (!parse_list(v, &o->threads, 1)) return false;
        } else if (strcmp(a, "-p") == 0) {
            if (!parse_list(v, &o->prompt, 0)) return false;
        } else if (strcmp(a, "-n") == 0) {
            if (!parse_list(v, &o->gen, 0)) return false;
        } else if (strcmp(a, "-r") == 0) {
            o->reps = atoi(v);
            if (o->reps < 1 || o->reps > MAX_REPS) return false;
        } else if (strcmp(a, "-o") == 0) {
            if (strcmp(v, "json") != 0 && strcmp(v, "md") != 0) return false;
            o->json = strcmp(v, "json") == 0;
        } else
            return false;
    }
    return o->model != NULL;
}

static void upper(char *s) {
    for (; *s; s++)
        if (*s >= 'a' && *s <= 'z') *s = (char)(*s - 'a' + 'A');
}

/* Type label, size and the bytes one generated token reads: every tensor, except that only one
 * row of token_embd is read when the output matrix is separate. */
static bool model_facts_of(const char *path, const fluid_model *m, model_facts *f) {
    char err[256];
    gguf_file *g = gguf_open(path, err, sizeof err);
    if (g == NULL) {
        fprintf(stderr, "fluid-bench: %s: %s\n", path, err);
        return false;
    }
    memset(f, 0, sizeof *f);
    fluid_model_info info;
    fluid_model_get_info(m, &info);
    const fl_tensor *embd = gguf_find_tensor(g, "token_embd.weight");
    bool tied = gguf_find_tensor(g, "output.weight") == NULL;
    for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
        const fl_tensor *t = gguf_tensor(g, i);
        f->size += t->nbytes;
        f->weight_bytes += t == embd && !tied ? fl_row_bytes(t->type, t->ne[0]) : t->nbytes;
    }
    uint32_t ft;
    char type[32];
    if (gguf_get_u32(g, "general.file_type", &ft) && strcmp(fl_ftype_name((fl_ftype)ft), "unknown"))
        snprintf(type, sizeof type, "%s", fl_ftype_name((fl_ftype)ft));
    else
        snprintf(type, sizeof type, "%s", info.type_name);
    upper(type);
    if (info.n_params >= 1000000000ull)
        snprintf(f->type, sizeof f->type, "%s %.1fB %s", info.arch, (double)info.n_params / 1e9,
                 type);
    else
        snprintf(f->type, sizeof f->type, "%s %.0fM %s", info.arch, (double)info.n_params / 1e6,
                 type);
    f->n_params = info.n_params;
    f->n_vocab = info.n_vocab;
    f->kv_bytes_per_pos =
        2ull * (uint64_t)m->hp.n_layer * (uint64_t)fl_hp_kv_dim(&m->hp) * sizeof(float);
    gguf_close(g);
    return true;
}

/* Runs one test `reps` times after a warm-up; false on a decode error. */
static bool run_test(fluid_session *s, fluid_pool *pool, const int32_t *tokens, test_result *r,
                     int reps) {
    fluid_error err = {0};
    for (int rep = -1; rep < reps; rep++) {
        fluid_session_rewind(s, 0);
        double t0 = bench_now();
        bool ok;
        if (r->n_prompt > 0) {
            ok = fluid_session_decode(s, tokens, r->n_prompt, pool, &err) == FLUID_OK;
        } else {
            ok = true;
            int n = rep < 0 ? 1 : r->n_gen; /* llama-bench warms generation up with one token */
            for (int i = 0; i < n && ok; i++)
                ok = fluid_session_decode(s, &tokens[i], 1, pool, &err) == FLUID_OK;
        }
        double dt = bench_now() - t0;
        if (!ok) {
            fprintf(stderr, "fluid-bench: decode failed: %s\n", err.message);
            return false;
        }
        if (rep < 0) continue;
        r->samples_ns[r->n] = dt * 1e9;
        r->samples_ts[r->n] = (double)(r->n_prompt + r->n_gen) / dt;
        r->n++;
    }
    return true;
}

static void print_size(char *buf, size_t n, uint64_t bytes) {
    if (bytes >= (1ull << 30))
        snprintf(buf, n, "%.2f GiB", (double)bytes / (1ull << 30));
    else
        snprintf(buf, n, "%.2f MiB", (double)bytes / (1ull << 20));
}

static void print_row(const model_facts *f, const test_result *r) {
    char size[32], test[32];
    print_size(size, sizeof size, f->size);
    snprintf(test, sizeof test, "%s%d", r->kind, r->n_prompt + r->n_gen);
    bench_stats ts = bench_stats_of(r->samples_ts, r->n);
    printf("| %s | %s | %.2f M | CPU (%s) | %d | %s | %.2f ± %.2f |\n", f->type, size,
           (double)f->n_params / 1e6, fl_simd_name(fl_simd_active()), r->threads, test, ts.mean,
           ts.stddev);
    fflush(stdout);
}

static void json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static void json_array(const double *v, int n, const char *fmt) {
    putchar('[');
    for (int i = 0; i < n; i++) {
        if (i) printf(", ");
        printf(fmt, v[i]);
    }
    putchar(']');
}

static void print_json(const options *o, const model_facts *f, const test_result *r, bool first,
                       const char *when) {
    bench_stats ns = bench_stats_of(r->samples_ns, r->n), ts = bench_stats_of(r->samples_ts, r->n);
    printf("%s\n  {\n    \"build_commit\": \"fluid-%s\",\n    \"cpu_info\": ", first ? "" : ",",
           FLUID_VERSION);
    json_string("x86-64");
    printf(",\n    \"backends\": \"CPU\",\n    \"simd\": \"%s\",\n    \"model_filename\": ",
           fl_simd_name(fl_simd_active()));
    json_string(o->model);
    printf(",\n    \"model_type\": ");
    json_string(f->type);
    printf(",\n    \"model_size\": %llu,\n    \"model_n_params\": %llu,\n",
           (unsigned long long)f->size, (unsigned long long)f->n_params);
    printf("    \"n_batch\": %d,\n    \"n_threads\": %d,\n    \"type_k\": \"f32\",\n"
           "    \"type_v\": \"f32\",\n    \"n_gpu_layers\": 0,\n    \"use_mmap\": true,\n",
           r->n_prompt > 0 ? r->n_prompt : 1, r->threads);
    printf("    \"test\": \"%s%d\",\n    \"n_prompt\": %d,\n    \"n_gen\": %d,\n", r->kind,
           r->n_prompt + r->n_gen, r->n_prompt, r->n_gen);
    printf("    \"weight_bytes_per_token\": %llu,\n    \"kv_bytes_per_position\": %llu,\n",
           (unsigned long long)f->weight_bytes, (unsigned long long)f->kv_bytes_per_pos);
    printf("    \"test_time\": \"%s\",\n    \"avg_ns\": %.0f,\n    \"stddev_ns\": %.0f,\n"
           "    \"avg_ts\": %.6f,\n    \"stddev_ts\": %.6f,\n    \"samples_ns\": ",
           when, ns.mean, ns.stddev, ts.mean, ts.stddev);
    json_array(r->samples_ns, r->n, "%.0f");
    printf(",\n    \"samples_ts\": ");
    json_array(r->samples_ts, r->n, "%.6f");
    printf("\n  }");
}

/* All tests at one thread count. */
static bool bench_threads(const options *o, fluid_model *m, const model_facts *f, int threads,
                          const int32_t *tokens, int max_ctx, bool *first) {
    fluid_error err = {0};
    fluid_pool *pool = fluid_pool_create(threads);
    fluid_session *s = pool ? fluid_session_create(m, max_ctx, &err) : NULL;
    bool ok = s != NULL;
    if (!ok) fprintf(stderr, "fluid-bench: cannot create a session: %s\n", err.message);
    for (int k = 0; ok && k < o->prompt.n + o->gen.n; k++) {
        test_result r = {.threads = threads};
        if (k < o->prompt.n) {
            r.kind = "pp";
            r.n_prompt = o->prompt.v[k];
        } else {
            r.kind = "tg";
            r.n_gen = o->gen.v[k - o->prompt.n];
        }
        if (r.n_prompt + r.n_gen == 0) continue;
        time_t now = time(NULL);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
        ok = run_test(s, pool, tokens, &r, o->reps);
        if (!ok) break;
        if (o->json)
            print_json(o, f, &r, *first, when);
        else
            print_row(f, &r);
        *first = false;
    }
    fluid_session_free(s);
    fluid_pool_free(pool);
    return ok;
}

static int max_of(const int_list *l) {
    int m = 0;
    for (int i = 0; i < l->n; i++)
        if (l->v[i] > m) m = l->v[i];
    return m;
}

int bench_llm_main(int argc, char **argv) {
    options o;
    if (!parse_args(argc, argv, &o)) return usage();
    fluid_error err = {0};
    fluid_model *m = fluid_model_load(o.model, &err);
    if (m == NULL) {
        fprintf(stderr, "fluid-bench: %s: %s\n", o.model, err.message);
        return 1;
    }
    model_facts f;
    int max_ctx = max_of(&o.prompt) > max_of(&o.gen) ? max_of(&o.prompt) : max_of(&o.gen);
    int32_t *tokens = malloc(sizeof(int32_t) * (size_t)(max_ctx + 1));
    int status = 1;
    if (tokens == NULL || !model_facts_of(o.model, m, &f)) goto done;
    uint64_t seed = 0x2545f4914f6cdd1dull;
    for (int i = 0; i <= max_ctx; i++) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        tokens[i] = (int32_t)(seed % (uint64_t)f.n_vocab);
    }
    if (o.json)
        printf("[");
    else
        printf("| model | size | params | backend | threads | test | t/s |\n"
               "| --- | ---: | ---: | --- | ---: | ---: | ---: |\n");
    bool first = true;
    status = 0;
    for (int i = 0; i < o.threads.n && status == 0; i++)
        if (!bench_threads(&o, m, &f, o.threads.v[i], tokens, max_ctx + 1, &first)) status = 1;
    if (o.json) {
        printf("\n]\n");
    } else {
        double mean_pos = (max_of(&o.gen) - 1) / 2.0;
        printf("\nweights read per generated token: %.2f MiB; KV cache read: %.3f MiB per cached "
               "position (%.2f MiB on average over tg%d)\n",
               (double)f.weight_bytes / 1048576.0, (double)f.kv_bytes_per_pos / 1048576.0,
               (double)f.kv_bytes_per_pos * mean_pos / 1048576.0, max_of(&o.gen));
    }
done:
    free(tokens);
    fluid_model_free(m);
    return status;
}

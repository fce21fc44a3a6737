/* fluid-quantize IN.gguf OUT.gguf TYPE [-t THREADS]: converts a GGUF model to another file
 * type (q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m q5_k_m q6_k f16 bf16 f32). All metadata is copied
 * (general.file_type is set to the new type); each tensor gets the type the mixture policy
 * chooses (norms and biases stay F32) and is converted row by row while the output file is
 * written, so memory use stays small whatever the model size. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/quant.h"
#include "engine/threadpool.h"
#include "fluid/fluid.h"

enum { ROWS_PER_BATCH = 64 };

typedef struct convert_job {
    const fl_tensor *src;
    fl_type dst_type;
    int64_t row_len, n_rows;
    size_t src_row_bytes, dst_row_bytes;
    float *floats;      /* ROWS_PER_BATCH rows of row_len floats */
    unsigned char *out; /* ROWS_PER_BATCH converted rows */
    int64_t batch_first, batch_rows;
    fl_pool *pool;
} convert_job;

static void convert_rows(void *p, int ith, int nth) {
    convert_job *j = p;
    long begin, end;
    fl_split_range((long)j->batch_rows, ith, nth, &begin, &end);
    for (long i = begin; i < end; i++) {
        int64_t row = j->batch_first + i;
        float *f = j->floats + (size_t)i * (size_t)j->row_len;
        fl_dequantize(j->src->type, (const char *)j->src->data + (size_t)row * j->src_row_bytes, f,
                      j->row_len);
        fl_quantize_row(j->dst_type, f, j->out + (size_t)i * j->dst_row_bytes, j->row_len);
    }
}

static bool produce_tensor(void *ctx, gguf_sink *sink) {
    convert_job *j = ctx;
    for (j->batch_first = 0; j->batch_first < j->n_rows; j->batch_first += ROWS_PER_BATCH) {
        int64_t left = j->n_rows - j->batch_first;
        j->batch_rows = left < ROWS_PER_BATCH ? left : ROWS_PER_BATCH;
        fl_pool_run(j->pool, convert_rows, j);
        if (!gguf_sink_write(sink, j->out, (size_t)j->batch_rows * j->dst_row_bytes)) return false;
    }
    return true;
}

static int usage(void) {
    fprintf(stderr, "usage: fluid-quantize IN.gguf OUT.gguf TYPE [-t THREADS]\n"
                    "TYPE: q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m q5_k_m q6_k f16 bf16 f32\n");
    return 2;
}

/* n_layer from ARCH.block_count (0 when absent: then no layer gets extra bits). */
static int block_count(const gguf_file *f) {
    gguf_str arch;
    char key[160];
    uint32_t n = 0;
    if (gguf_get_str(f, "general.architecture", &arch) && arch.len < 100) {
        snprintf(key, sizeof key, "%.*s.block_count", (int)arch.len, arch.ptr);
        gguf_get_u32(f, key, &n);
    }
    return (int)n;
}

/* Copies every key but general.file_type, then sets it to the new type. */
static bool copy_metadata(gguf_writer *w, const gguf_file *in, fl_ftype ftype) {
    for (int64_t i = 0; i < gguf_n_kv(in); i++) {
        gguf_str key = gguf_kv_key(in, i);
        if (key.len == strlen("general.file_type") &&
            memcmp(key.ptr, "general.file_type", key.len) == 0)
            continue;
        if (!gguf_writer_copy_kv_index(w, in, i)) return false;
    }
    return gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype);
}

typedef struct plan {
    convert_job *jobs;
    int64_t n;
    size_t max_floats, max_out;
    size_t bytes_in, bytes_out;
} plan;

/* Chooses every tensor's type and registers it with the writer. */
static bool plan_tensors(const gguf_file *in, gguf_writer *w, fl_ftype ftype, plan *p) {
    fl_mixture_model model = {.n_layer = block_count(in),
                              .has_output = gguf_find_tensor(in, "output.weight") != NULL};
    p->n = gguf_n_tensors(in);
    p->jobs = calloc((size_t)(p->n > 0 ? p->n : 1), sizeof *p->jobs);
    if (p->jobs == NULL) return false;
    for (int64_t i = 0; i < p->n; i++) {
        const fl_tensor *t = gguf_tensor(in, i);
        convert_job *j = &p->jobs[i];
        j->src = t;
        j->row_len = t->ne[0];
        j->n_rows = j->row_len > 0 ? fl_tensor_nelements(t) / j->row_len : 0;
        j->dst_type = fl_mixture_tensor_type(ftype, t->name, t->n_dims, t->ne[0], &model);
        if (!fl_quant_supported(t->type)) {
            fprintf(stderr, "fluid-quantize: %s: cannot read type %s\n", t->name,
                    fl_type_traits_of(t->type) ? fl_type_traits_of(t->type)->name : "?");
            return false;
        }
        if (t->n_dims < 2 && t->type != FL_TYPE_F32 && t->type != FL_TYPE_F16 &&
            t->type != FL_TYPE_BF16)
            j->dst_type = t->type; /* a quantized vector is kept as it is */
        j->src_row_bytes = fl_row_bytes(t->type, j->row_len);
        j->dst_row_bytes = fl_row_bytes(j->dst_type, j->row_len);
        size_t floats = (size_t)ROWS_PER_BATCH * (size_t)j->row_len;
        if (floats > p->max_floats) p->max_floats = floats;
        if (ROWS_PER_BATCH * j->dst_row_bytes > p->max_out)
            p->max_out = ROWS_PER_BATCH * j->dst_row_bytes;
        p->bytes_in += t->nbytes;
        p->bytes_out += (size_t)j->n_rows * j->dst_row_bytes;
        printf("%-32s [%6lld x %6lld] %-5s -> %s\n", t->name, (long long)t->ne[0],
               (long long)j->n_rows, fl_type_traits_of(t->type)->name,
               fl_type_traits_of(j->dst_type)->name);
        if (!gguf_writer_add_tensor_stream(w, t->name, j->dst_type, t->n_dims, t->ne,
                                           produce_tensor, j))
            return false;
    }
    return true;
}

int main(int argc, char **argv) {
    int threads = 0;
    const char *pos[3];
    int n_pos = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-t") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (argv[i][0] == '-' || n_pos == 3)
            return usage();
        else
            pos[n_pos++] = argv[i];
    }
    fl_ftype ftype;
    if (n_pos != 3) return usage();
    if (!fl_ftype_from_name(pos[2], &ftype)) {
        fprintf(stderr, "fluid-quantize: unknown type '%s'\n", pos[2]);
        return usage();
    }
    char err[512];
    gguf_file *in = gguf_open(pos[0], err, sizeof err);
    if (in == NULL) {
        fprintf(stderr, "fluid-quantize: %s: %s\n", pos[0], err);
        return 1;
    }
    int status = 1;
    plan p = {0};
    float *floats = NULL;
    unsigned char *out = NULL;
    gguf_writer *w = gguf_writer_create();
    fl_pool *pool = fluid_pool_create(threads);
    if (w == NULL || pool == NULL || !copy_metadata(w, in, ftype) ||
        !plan_tensors(in, w, ftype, &p)) {
        fprintf(stderr, "fluid-quantize: cannot prepare the output (out of memory?)\n");
        goto done;
    }
    floats = malloc(p.max_floats * sizeof(float) + 1);
    out = malloc(p.max_out + 1);
    if (floats == NULL || out == NULL) {
        fprintf(stderr, "fluid-quantize: out of memory\n");
        goto done;
    }
    for (int64_t i = 0; i < p.n; i++) {
        p.jobs[i].floats = floats;
        p.jobs[i].out = out;
        p.jobs[i].pool = pool;
    }
    if (!gguf_writer_write(w, pos[1], err, sizeof err)) {
        fprintf(stderr, "fluid-quantize: %s: %s\n", pos[1], err);
        goto done;
    }
    printf("%s: %s, %.1f MiB -> %.1f MiB\n", pos[1], fl_ftype_name(ftype),
           (double)p.bytes_in / 1048576.0, (double)p.bytes_out / 1048576.0);
    status = 0;
done:
    free(floats);
    free(out);
    free(p.jobs);
    fl_pool_free(pool);
    gguf_writer_free(w);
    gguf_close(in);
    return status;
}

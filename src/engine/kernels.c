/* Reference kernels: plain C, one float accumulator per output. */
#include "engine/kernels.h"

#include <string.h>

bool fl_kernels_support(fl_type type) {
    return type == FL_TYPE_F32 || type == FL_TYPE_F16 || type == FL_TYPE_BF16;
}

void fl_dequantize_row(const fl_tensor *w, int64_t row, float *dst) {
    int64_t cols = w->ne[0];
    const char *base = (const char *)w->data + (size_t)row * fl_row_bytes(w->type, cols);
    switch (w->type) {
    case FL_TYPE_F32:
        memcpy(dst, base, (size_t)cols * sizeof(float));
        break;
    case FL_TYPE_F16:
    case FL_TYPE_BF16: {
        bool is_f16 = w->type == FL_TYPE_F16;
        for (int64_t i = 0; i < cols; i++) {
            uint16_t h;
            memcpy(&h, base + 2 * i, 2);
            dst[i] = is_f16 ? fl_f16_to_f32(h) : fl_bf16_to_f32(h);
        }
        break;
    }
    default:
        memset(dst, 0, (size_t)cols * sizeof(float));
        break;
    }
}

typedef struct matmul_task {
    const fl_tensor *w;
    const float *x;
    int n_tok;
    float *y;
} matmul_task;

enum { ROW_CHUNK = 4096 };

static void matmul_rows(void *p, int ith, int nth) {
    const matmul_task *t = p;
    int64_t rows = t->w->ne[1], cols = t->w->ne[0];
    long begin, end;
    fl_split_range((long)rows, ith, nth, &begin, &end);
    float row[ROW_CHUNK];
    for (long r = begin; r < end; r++) {
        /* rows wider than the stack buffer are converted chunk by chunk */
        for (int tok = 0; tok < t->n_tok; tok++) t->y[(size_t)tok * rows + r] = 0.0f;
        for (int64_t c0 = 0; c0 < cols; c0 += ROW_CHUNK) {
            int64_t n = cols - c0 < ROW_CHUNK ? cols - c0 : ROW_CHUNK;
            fl_tensor part = *t->w;
            part.ne[0] = n;
            part.data = (const char *)t->w->data + (size_t)r * fl_row_bytes(t->w->type, cols) +
                        fl_row_bytes(t->w->type, c0);
            fl_dequantize_row(&part, 0, row);
            for (int tok = 0; tok < t->n_tok; tok++) {
                const float *xr = t->x + (size_t)tok * cols + c0;
                float sum = 0.0f;
                for (int64_t i = 0; i < n; i++) sum += row[i] * xr[i];
                t->y[(size_t)tok * rows + r] += sum;
            }
        }
    }
}

void fl_matmul(const fl_tensor *w, const float *x, int n_tok, float *y, fl_pool *pool) {
    matmul_task task = {w, x, n_tok, y};
    fl_pool_run(pool, matmul_rows, &task);
}

/* GGUF reader and writer: round trips of every value type, hand-built files that must be
 * rejected, the shared vocabulary files, and a corruption sweep (truncations, bit flips,
 * overwritten counts) that must never crash or leak. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf.h"

/* ---- helpers ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static char *temp_path(const char *tag) {
    static char buf[4][256];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, 256, "%s/fluid_test_gguf_%d_%s.gguf", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
             (int)getpid(), tag);
    return p;
}

static uint8_t *read_whole(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) return NULL;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *p = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *size = (size_t)n;
    return p;
}

static bool str_is(gguf_str s, const char *want) {
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

/* A hand-built GGUF image (for files the writer refuses to produce). */
typedef struct image {
    uint8_t buf[4096];
    size_t len;
} image;

static void put(image *im, const void *p, size_t n) {
    assert_true(im->len + n <= sizeof im->buf);
    memcpy(im->buf + im->len, p, n);
    im->len += n;
}
static void put_u32(image *im, uint32_t v) {
    put(im, &v, 4);
}
static void put_u64(image *im, uint64_t v) {
    put(im, &v, 8);
}
static void put_str(image *im, const char *s) {
    put_u64(im, strlen(s));
    put(im, s, strlen(s));
}
static void put_header(image *im, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    im->len = 0;
    put(im, "GGUF", 4);
    put_u32(im, version);
    put_u64(im, n_tensors);
    put_u64(im, n_kv);
}
static void put_tensor_info(image *im, const char *name, uint32_t n_dims, const uint64_t *ne,
                            uint32_t type, uint64_t offset) {
    put_str(im, name);
    put_u32(im, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) put_u64(im, ne[i]);
    put_u32(im, type);
    put_u64(im, offset);
}
static void pad_to(image *im, size_t alignment) {
    static const uint8_t zero[64];
    put(im, zero, (alignment - im->len % alignment) % alignment);
}
static void put_zeros(image *im, size_t n) {
    while (n > 0) {
        static const uint8_t zero[64];
        size_t k = n < 64 ? n : 64;
        put(im, zero, k);
        n -= k;
    }
}

/* Opens an image and expects failure with `needle` in the message. */
static void expect_reject(const image *im, const char *needle) {
    char err[256] = "";
    gguf_file *f = gguf_open_memory(im->buf, im->len, err, sizeof err);
    if (f != NULL) fail_msg("accepted a bad file (expected '%s')", needle);
    if (strstr(err, needle) == NULL) fail_msg("message '%s' lacks '%s'", err, needle);
}

static gguf_file *expect_accept(const image *im) {
    char err[256] = "";
    gguf_file *f = gguf_open_memory(im->buf, im->len, err, sizeof err);
    if (f == NULL) fail_msg("rejected a good file: %s", err);
    return f;
}

/* ---- writer -> reader round trip ---- */

typedef struct stream_ctx {
    int64_t n;
} stream_ctx;

/* Writes floats 0, 1, 2, ... in uneven pieces. */
static bool produce_counting(void *ctx, gguf_sink *sink) {
    const stream_ctx *s = ctx;
    for (int64_t i = 0; i < s->n;) {
        float buf[7];
        int k = 0;
        for (; k < 7 && i < s->n; k++, i++) buf[k] = (float)i;
        if (!gguf_sink_write(sink, buf, (size_t)k * sizeof(float))) return false;
    }
    return true;
}

static bool produce_short(void *ctx, gguf_sink *sink) {
    (void)ctx;
    float v = 1.0f;
    return gguf_sink_write(sink, &v, sizeof v);
}

static void write_every_type(gguf_writer *w) {
    uint8_t u8 = 200;
    int8_t i8 = -100;
    uint16_t u16 = 60000;
    int16_t i16 = -30000;
    uint64_t u64 = UINT64_MAX;
    int64_t i64 = INT64_MIN;
    double f64 = -1.25e300;
    assert_true(gguf_writer_set_val(w, "t.u8", GGUF_TYPE_UINT8, &u8));
    assert_true(gguf_writer_set_val(w, "t.i8", GGUF_TYPE_INT8, &i8));
    assert_true(gguf_writer_set_val(w, "t.u16", GGUF_TYPE_UINT16, &u16));
    assert_true(gguf_writer_set_val(w, "t.i16", GGUF_TYPE_INT16, &i16));
    assert_true(gguf_writer_set_u32(w, "t.u32", 4000000000u));
    assert_true(gguf_writer_set_i32(w, "t.i32", -2000000000));
    assert_true(gguf_writer_set_f32(w, "t.f32", 0.375f));
    assert_true(gguf_writer_set_bool(w, "t.bool", true));
    assert_true(gguf_writer_set_str(w, "t.str", "héllo wörld"));
    assert_true(gguf_writer_set_str(w, "t.empty", ""));
    assert_true(gguf_writer_set_val(w, "t.u64", GGUF_TYPE_UINT64, &u64));
    assert_true(gguf_writer_set_val(w, "t.i64", GGUF_TYPE_INT64, &i64));
    assert_true(gguf_writer_set_val(w, "t.f64", GGUF_TYPE_FLOAT64, &f64));
    assert_false(gguf_writer_set_val(w, "t.bad", GGUF_TYPE_STRING, "x"));
    /* replacing keeps one entry with the new value */
    assert_true(gguf_writer_set_u32(w, "t.replaced", 1));
    assert_true(gguf_writer_set_str(w, "t.replaced", "second"));

    int32_t ints[5] = {-1, 0, 1, 1 << 30, -7};
    float floats[3] = {1.5f, -2.0f, 1e-30f};
    uint8_t bools[2] = {1, 0};
    double doubles[2] = {3.5, -0.0};
    assert_true(gguf_writer_set_arr(w, "a.i32", GGUF_TYPE_INT32, ints, 5));
    assert_true(gguf_writer_set_arr(w, "a.f32", GGUF_TYPE_FLOAT32, floats, 3));
    assert_true(gguf_writer_set_arr(w, "a.bool", GGUF_TYPE_BOOL, bools, 2));
    assert_true(gguf_writer_set_arr(w, "a.f64", GGUF_TYPE_FLOAT64, doubles, 2));
    assert_true(gguf_writer_set_arr(w, "a.empty", GGUF_TYPE_UINT8, NULL, 0));
    const char *strs[4] = {"a", "", "Ġthe", "<|im_end|>"};
    assert_true(gguf_writer_set_arr_str(w, "a.str", strs, 4));
    assert_false(gguf_writer_set_arr(w, "a.bad", GGUF_TYPE_STRING, strs, 4));
}

static void check_every_type(const gguf_file *f) {
    uint32_t u32;
    int64_t i64;
    float f32;
    bool b;
    gguf_str s;
    assert_true(gguf_get_u32(f, "t.u8", &u32));
    assert_int_equal(u32, 200);
    assert_true(gguf_get_i64(f, "t.i8", &i64));
    assert_int_equal(i64, -100);
    assert_true(gguf_get_u32(f, "t.u16", &u32));
    assert_int_equal(u32, 60000);
    assert_true(gguf_get_i64(f, "t.i16", &i64));
    assert_int_equal(i64, -30000);
    assert_true(gguf_get_u32(f, "t.u32", &u32));
    assert_int_equal(u32, 4000000000u);
    assert_true(gguf_get_i64(f, "t.i32", &i64));
    assert_int_equal(i64, -2000000000);
    assert_false(gguf_get_u32(f, "t.i32", &u32)); /* negative does not fit */
    assert_true(gguf_get_f32(f, "t.f32", &f32));
    assert_true(f32 == 0.375f);
    assert_true(gguf_get_f32(f, "t.u16", &f32)); /* integers read as floats */
    assert_true(f32 == 60000.0f);
    assert_true(gguf_get_bool(f, "t.bool", &b));
    assert_true(b);
    assert_false(gguf_get_bool(f, "t.u8", &b));
    assert_true(gguf_get_str(f, "t.str", &s));
    assert_true(str_is(s, "héllo wörld"));
    assert_true(gguf_get_str(f, "t.empty", &s));
    assert_int_equal(s.len, 0);
    assert_false(gguf_get_str(f, "t.u32", &s));
    assert_false(gguf_get_i64(f, "t.u64", &i64)); /* UINT64_MAX does not fit */
    assert_false(gguf_get_u32(f, "t.u64", &u32));
    assert_true(gguf_get_i64(f, "t.i64", &i64));
    assert_true(i64 == INT64_MIN);
    int64_t k = gguf_find_key(f, "t.f64");
    assert_true(k >= 0);
    assert_int_equal(gguf_kv_type(f, k), GGUF_TYPE_FLOAT64);
    assert_true(str_is(gguf_kv_key(f, k), "t.f64"));
    assert_true(gguf_get_f32(f, "t.f64", &f32));
    assert_true(isinf(f32));
    assert_true(gguf_get_str(f, "t.replaced", &s));
    assert_true(str_is(s, "second"));
    assert_int_equal(gguf_find_key(f, "missing"), -1);
    assert_int_equal(gguf_kv_type(f, -1), GGUF_TYPE_COUNT);
    assert_int_equal(gguf_kv_type(f, gguf_n_kv(f)), GGUF_TYPE_COUNT);
    assert_null(gguf_kv_key(f, gguf_n_kv(f)).ptr);

    gguf_type et;
    uint64_t n;
    const void *data;
    double d;
    assert_true(gguf_get_arr(f, "a.i32", &et, &n, &data));
    assert_int_equal(et, GGUF_TYPE_INT32);
    assert_int_equal(n, 5);
    int32_t ints[5];
    memcpy(ints, data, sizeof ints);
    assert_int_equal(ints[3], 1 << 30);
    assert_true(gguf_get_arr_num(f, "a.i32", 4, &d));
    assert_true(d == -7.0);
    assert_false(gguf_get_arr_num(f, "a.i32", 5, &d));
    assert_true(gguf_get_arr_num(f, "a.f32", 2, &d));
    assert_true((float)d == 1e-30f);
    assert_true(gguf_get_arr_num(f, "a.f64", 0, &d));
    assert_true(d == 3.5);
    assert_false(gguf_get_arr_num(f, "a.bool", 0, &d));
    assert_true(gguf_get_arr(f, "a.bool", &et, &n, &data));
    assert_int_equal(n, 2);
    assert_int_equal(((const uint8_t *)data)[0], 1);
    assert_true(gguf_get_arr(f, "a.empty", &et, &n, NULL));
    assert_int_equal(n, 0);
    assert_int_equal(et, GGUF_TYPE_UINT8);
    assert_true(gguf_get_arr(f, "a.str", &et, &n, NULL));
    assert_int_equal(et, GGUF_TYPE_STRING);
    assert_int_equal(n, 4);
    assert_true(gguf_get_arr_str(f, "a.str", 2, &s));
    assert_true(str_is(s, "Ġthe"));
    assert_true(gguf_get_arr_str(f, "a.str", 1, &s));
    assert_int_equal(s.len, 0);
    assert_true(gguf_get_arr_str(f, "a.str", 3, &s));
    assert_true(str_is(s, "<|im_end|>"));
    assert_false(gguf_get_arr_str(f, "a.str", 4, &s));
    assert_false(gguf_get_arr_str(f, "a.i32", 0, &s));
    assert_false(gguf_get_arr_num(f, "a.str", 0, &d));
    assert_false(gguf_get_arr(f, "t.u32", &et, &n, &data));
}

static void add_test_tensors(gguf_writer *w, stream_ctx *stream) {
    float m[3][4];
    for (int i = 0; i < 12; i++) m[i / 4][i % 4] = (float)i * 0.5f;
    int64_t ne2[2] = {4, 3};
    assert_true(gguf_writer_add_tensor(w, "m.f32", FL_TYPE_F32, 2, ne2, m, sizeof m));
    uint16_t h[5];
    for (int i = 0; i < 5; i++) h[i] = fl_f32_to_f16((float)i);
    int64_t ne1[1] = {5};
    assert_true(gguf_writer_add_tensor(w, "v.f16", FL_TYPE_F16, 1, ne1, h, sizeof h));
    uint8_t q[2 * 34];
    memset(q, 0x11, sizeof q);
    int64_t ne4[4] = {32, 1, 2, 1};
    assert_true(gguf_writer_add_tensor(w, "q.q8_0", FL_TYPE_Q8_0, 4, ne4, q, sizeof q));
    int64_t ne_s[3] = {stream->n, 1, 1};
    assert_true(
        gguf_writer_add_tensor_stream(w, "s.f32", FL_TYPE_F32, 3, ne_s, produce_counting, stream));
    /* refused: duplicate name, byte size mismatch, bad block multiple, bad n_dims, ne < 1 */
    assert_false(gguf_writer_add_tensor(w, "m.f32", FL_TYPE_F32, 2, ne2, m, sizeof m));
    assert_false(gguf_writer_add_tensor(w, "x", FL_TYPE_F32, 2, ne2, m, sizeof m - 4));
    int64_t ne_q[1] = {16};
    assert_false(gguf_writer_add_tensor(w, "x", FL_TYPE_Q8_0, 1, ne_q, q, 17));
    assert_false(gguf_writer_add_tensor(w, "x", FL_TYPE_F32, 5, ne4, m, sizeof m));
    int64_t ne0[1] = {0};
    assert_false(gguf_writer_add_tensor(w, "x", FL_TYPE_F32, 1, ne0, m, 0));
}

static void check_test_tensors(const gguf_file *f, uint32_t alignment, int64_t stream_n) {
    assert_int_equal(gguf_n_tensors(f), 4);
    assert_int_equal(gguf_alignment(f), alignment);
    assert_int_equal(gguf_data_offset(f) % alignment, 0);
    const fl_tensor *t = gguf_find_tensor(f, "m.f32");
    assert_non_null(t);
    assert_int_equal(t->type, FL_TYPE_F32);
    assert_int_equal(t->n_dims, 2);
    assert_int_equal(t->ne[0], 4);
    assert_int_equal(t->ne[1], 3);
    assert_int_equal(t->ne[2], 1);
    assert_int_equal(t->nbytes, 48);
    float v;
    memcpy(&v, (const float *)t->data + 7, 4);
    assert_true(v == 3.5f);
    t = gguf_find_tensor(f, "v.f16");
    assert_non_null(t);
    uint16_t h;
    memcpy(&h, (const uint8_t *)t->data + 8, 2);
    assert_true(fl_f16_to_f32(h) == 4.0f);
    t = gguf_find_tensor(f, "q.q8_0");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 4);
    assert_int_equal(t->ne[2], 2);
    assert_int_equal(t->nbytes, 68);
    t = gguf_find_tensor(f, "s.f32");
    assert_non_null(t);
    assert_int_equal(t->n_dims, 3);
    assert_int_equal(t->nbytes, (size_t)stream_n * 4);
    for (int64_t i = 0; i < stream_n; i++) {
        memcpy(&v, (const float *)t->data + i, 4);
        assert_true(v == (float)i);
    }
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const fl_tensor *ti = gguf_tensor(f, i);
        size_t off = (size_t)((const uint8_t *)ti->data - (const uint8_t *)gguf_tensor(f, 0)->data);
        assert_int_equal((gguf_data_offset(f) + off) % alignment, 0);
    }
    assert_null(gguf_tensor(f, 4));
    assert_null(gguf_tensor(f, -1));
    assert_null(gguf_find_tensor(f, "nope"));
}

static void round_trip(uint32_t alignment) {
    gguf_writer *w = gguf_writer_create();
    assert_non_null(w);
    write_every_type(w);
    if (alignment != 32) assert_true(gguf_writer_set_u32(w, "general.alignment", alignment));
    stream_ctx stream = {1000};
    add_test_tensors(w, &stream);
    const char *path = temp_path("roundtrip");
    char err[256];
    if (!gguf_writer_write(w, path, err, sizeof err)) fail_msg("write: %s", err);
    gguf_writer_free(w);

    gguf_file *f = gguf_open(path, err, sizeof err);
    if (f == NULL) fail_msg("open: %s", err);
    assert_int_equal(gguf_version(f), 3);
    check_every_type(f);
    check_test_tensors(f, alignment, stream.n);
    assert_int_equal(gguf_file_size(f) % alignment, 0); /* the last tensor is padded too */

    /* copy_kv copies any value, arrays of strings included, into a new file */
    gguf_writer *w2 = gguf_writer_create();
    for (int64_t i = 0; i < gguf_n_kv(f); i++) assert_true(gguf_writer_copy_kv_index(w2, f, i));
    assert_true(gguf_writer_copy_kv(w2, f, "a.str"));
    assert_false(gguf_writer_copy_kv(w2, f, "missing"));
    const char *path2 = temp_path("copy");
    if (!gguf_writer_write(w2, path2, err, sizeof err)) fail_msg("write copy: %s", err);
    gguf_writer_free(w2);
    gguf_file *g = gguf_open(path2, err, sizeof err);
    if (g == NULL) fail_msg("open copy: %s", err);
    check_every_type(g);
    assert_int_equal(gguf_n_kv(g), gguf_n_kv(f));
    assert_int_equal(gguf_n_tensors(g), 0);
    gguf_close(g);
    gguf_close(f);
    unlink(path);
    unlink(path2);
}

static void round_trip_default_alignment(void **state) {
    (void)state;
    round_trip(32);
}

static void round_trip_custom_alignment(void **state) {
    (void)state;
    round_trip(64);
    round_trip(1024); /* padding longer than any fixed buffer of zeros */
}

static void writer_failures_leave_no_file(void **state) {
    (void)state;
    char err[256];
    const char *path = temp_path("fail");
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    gguf_writer *w = gguf_writer_create();
    int64_t ne[1] = {4};
    assert_true(gguf_writer_add_tensor_stream(w, "short", FL_TYPE_F32, 1, ne, produce_short, NULL));
    assert_false(gguf_writer_write(w, path, err, sizeof err));
    assert_non_null(strstr(err, "too few bytes"));
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(access(tmp, F_OK), -1);
    gguf_writer_free(w);

    w = gguf_writer_create();
    assert_true(gguf_writer_set_u32(w, "general.alignment", 48));
    assert_false(gguf_writer_write(w, path, err, sizeof err));
    assert_non_null(strstr(err, "power of two"));
    gguf_writer_free(w);

    w = gguf_writer_create();
    assert_false(gguf_writer_write(w, "/nonexistent-dir/x.gguf", err, sizeof err));
    gguf_writer_free(w);
}

/* ---- hand-built files ---- */

static void nested_arrays_are_validated(void **state) {
    (void)state;
    image im;
    put_header(&im, 2, 0, 2);
    put_str(&im, "nested");
    put_u32(&im, GGUF_TYPE_ARRAY);
    put_u32(&im, GGUF_TYPE_ARRAY); /* array of 2 arrays */
    put_u64(&im, 2);
    put_u32(&im, GGUF_TYPE_STRING);
    put_u64(&im, 2);
    put_str(&im, "x");
    put_str(&im, "yz");
    put_u32(&im, GGUF_TYPE_UINT16);
    put_u64(&im, 3);
    put_zeros(&im, 6);
    put_str(&im, "after");
    put_u32(&im, GGUF_TYPE_UINT8);
    put(&im, "\x07", 1);
    gguf_file *f = expect_accept(&im);
    assert_int_equal(gguf_version(f), 2);
    gguf_type et;
    uint64_t n;
    assert_true(gguf_get_arr(f, "nested", &et, &n, NULL));
    assert_int_equal(et, GGUF_TYPE_ARRAY);
    assert_int_equal(n, 2);
    gguf_str s;
    double d;
    assert_false(gguf_get_arr_str(f, "nested", 0, &s));
    assert_false(gguf_get_arr_num(f, "nested", 0, &d));
    uint32_t u;
    assert_true(gguf_get_u32(f, "after", &u));
    assert_int_equal(u, 7);
    /* a copy of the nested array round-trips */
    gguf_writer *w = gguf_writer_create();
    assert_true(gguf_writer_copy_kv(w, f, "nested"));
    const char *path = temp_path("nested");
    char err[256];
    assert_true(gguf_writer_write(w, path, err, sizeof err));
    gguf_writer_free(w);
    gguf_close(f);
    f = gguf_open(path, err, sizeof err);
    assert_non_null(f);
    assert_true(gguf_get_arr(f, "nested", &et, &n, NULL));
    assert_int_equal(n, 2);
    gguf_close(f);
    unlink(path);

    /* bad element type inside the nested array */
    put_header(&im, 3, 0, 1);
    put_str(&im, "nested");
    put_u32(&im, GGUF_TYPE_ARRAY);
    put_u32(&im, GGUF_TYPE_ARRAY);
    put_u64(&im, 1);
    put_u32(&im, 99);
    put_u64(&im, 0);
    expect_reject(&im, "unknown array element type");
}

static void bad_headers_are_rejected(void **state) {
    (void)state;
    image im;
    put_header(&im, 1, 0, 0);
    expect_reject(&im, "version 1");
    put_header(&im, 4, 0, 0);
    expect_reject(&im, "unsupported GGUF version 4");
    put_header(&im, 3, 0, 0);
    im.buf[0] = 'X';
    expect_reject(&im, "bad magic");
    put_header(&im, 3, 0, 1ull << 60);
    expect_reject(&im, "metadata count");
    put_header(&im, 3, 1ull << 40, 0);
    expect_reject(&im, "tensor count");
    put_header(&im, 3, 0, 0);
    im.len = 10;
    expect_reject(&im, "truncated");
    put_header(&im, 3, 0, 0);
    gguf_close(expect_accept(&im)); /* empty but valid */

    put_header(&im, 3, 0, 1);
    put_str(&im, "k");
    put_u32(&im, 13);
    put_u32(&im, 0);
    expect_reject(&im, "unknown value type 13");

    put_header(&im, 3, 0, 1);
    put_str(&im, "k");
    put_u32(&im, GGUF_TYPE_STRING);
    put_u64(&im, 1000);
    put(&im, "abc", 3);
    expect_reject(&im, "exceeds");

    put_header(&im, 3, 0, 1);
    put_str(&im, "k");
    put_u32(&im, GGUF_TYPE_ARRAY);
    put_u32(&im, GGUF_TYPE_UINT64);
    put_u64(&im, UINT64_MAX / 4);
    put_u64(&im, 0);
    expect_reject(&im, "exceed");

    put_header(&im, 3, 0, 2);
    for (int i = 0; i < 2; i++) {
        put_str(&im, "dup");
        put_u32(&im, GGUF_TYPE_UINT8);
        put(&im, "\x01", 1);
    }
    expect_reject(&im, "duplicate metadata key 'dup'");
}

/* One tensor file with the given tensor info fields; data section of `data_bytes`. */
static void one_tensor(image *im, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                       uint64_t offset, size_t data_bytes) {
    put_header(im, 3, 1, 0);
    put_tensor_info(im, "w", n_dims, ne, type, offset);
    pad_to(im, 32);
    put_zeros(im, data_bytes);
}

static void bad_tensor_infos_are_rejected(void **state) {
    (void)state;
    image im;
    uint64_t ne[5] = {8, 2, 1, 1, 1};
    one_tensor(&im, 2, ne, FL_TYPE_F32, 0, 64);
    gguf_file *f = expect_accept(&im);
    assert_int_equal(gguf_find_tensor(f, "w")->nbytes, 64);
    gguf_close(f);

    one_tensor(&im, 2, ne, FL_TYPE_F32, 0, 63);
    expect_reject(&im, "past the end");
    one_tensor(&im, 2, ne, FL_TYPE_F32, 16, 128);
    expect_reject(&im, "not a multiple of the alignment");
    one_tensor(&im, 2, ne, 4 /* removed Q4_2 */, 0, 64);
    expect_reject(&im, "unknown tensor type");
    one_tensor(&im, 2, ne, 1000, 0, 64);
    expect_reject(&im, "unknown tensor type");
    one_tensor(&im, 5, ne, FL_TYPE_F32, 0, 64);
    expect_reject(&im, "n_dims");
    one_tensor(&im, 0, ne, FL_TYPE_F32, 0, 64);
    expect_reject(&im, "n_dims");
    one_tensor(&im, 2, ne, FL_TYPE_Q8_0, 0, 64);
    expect_reject(&im, "block size");
    uint64_t zero[2] = {8, 0};
    one_tensor(&im, 2, zero, FL_TYPE_F32, 0, 64);
    expect_reject(&im, "dimension < 1");
    uint64_t neg[2] = {8, UINT64_MAX};
    one_tensor(&im, 2, neg, FL_TYPE_F32, 0, 64);
    expect_reject(&im, "too large");
    uint64_t big[4] = {1ull << 32, 1ull << 32, 1, 1};
    one_tensor(&im, 2, big, FL_TYPE_F32, 0, 64);
    expect_reject(&im, "overflows");
    uint64_t big2[4] = {1ull << 62, 2, 1, 1};
    one_tensor(&im, 2, big2, FL_TYPE_F32, 0, 64);
    expect_reject(&im, "");
    one_tensor(&im, 2, ne, FL_TYPE_F32, UINT64_MAX - 31, 64);
    expect_reject(&im, "");

    /* two tensors: overlap, duplicate names */
    put_header(&im, 3, 2, 0);
    put_tensor_info(&im, "a", 1, ne, FL_TYPE_F32, 0);
    put_tensor_info(&im, "b", 1, ne, FL_TYPE_F32, 0);
    pad_to(&im, 32);
    put_zeros(&im, 64);
    expect_reject(&im, "overlap");
    put_header(&im, 3, 2, 0);
    put_tensor_info(&im, "a", 1, ne, FL_TYPE_F32, 0);
    put_tensor_info(&im, "a", 1, ne, FL_TYPE_F32, 32);
    pad_to(&im, 32);
    put_zeros(&im, 64);
    expect_reject(&im, "duplicate tensor name 'a'");

    /* alignment: 3 is refused, 16 changes where data starts, a string is refused */
    uint32_t aligns[3] = {3, 16, 0};
    for (int i = 0; i < 3; i++) {
        put_header(&im, 3, 1, 1);
        put_str(&im, "general.alignment");
        if (i < 2) {
            put_u32(&im, GGUF_TYPE_UINT32);
            put_u32(&im, aligns[i]);
        } else {
            put_u32(&im, GGUF_TYPE_STRING);
            put_str(&im, "32");
        }
        put_tensor_info(&im, "w", 1, ne, FL_TYPE_F32, 0);
        pad_to(&im, i == 1 ? 16 : 32);
        put_zeros(&im, 32);
        if (i == 1) {
            f = expect_accept(&im);
            assert_int_equal(gguf_alignment(f), 16);
            assert_int_equal(gguf_data_offset(f) % 16, 0);
            gguf_close(f);
        } else {
            expect_reject(&im, "general.alignment");
        }
    }

    /* a name with a NUL byte */
    put_header(&im, 3, 1, 0);
    put_u64(&im, 3);
    put(&im, "a\0b", 3);
    put_u32(&im, 1);
    put_u64(&im, 8);
    put_u32(&im, FL_TYPE_F32);
    put_u64(&im, 0);
    pad_to(&im, 32);
    put_zeros(&im, 32);
    expect_reject(&im, "NUL");
}

static void open_reports_missing_file(void **state) {
    (void)state;
    char err[256] = "";
    assert_null(gguf_open("/nonexistent/file.gguf", err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/file.gguf"));
    assert_null(gguf_open("/", err, sizeof err));
}

/* ---- shared vocabulary files ---- */

static const char *testdata(void) {
    const char *dir = getenv("FLUID_TESTDATA");
    if (dir == NULL || access(dir, R_OK) != 0) return NULL;
    return dir;
}

static void vocab_files_open_with_sane_values(void **state) {
    (void)state;
    static const struct {
        const char *name, *model;
        uint64_t n_tokens;
    } vocabs[] = {
        {"bert-bge", "bert", 30522},      {"deepseek-coder", "gpt2", 32256},
        {"deepseek-llm", "gpt2", 102400}, {"falcon", "gpt2", 65024},
        {"gemma-4", "gemma4", 262144},    {"gpt-2", "gpt2", 50257},
        {"gpt-neox", "gpt2", 50432},      {"llama-bpe", "gpt2", 128256},
        {"llama-spm", "llama", 32000},    {"mpt", "gpt2", 50432},
        {"phi-3", "llama", 32064},        {"qwen2", "gpt2", 151936},
        {"qwen35", "gpt2", 151936},       {"refact", "gpt2", 49216},
        {"starcoder", "gpt2", 49152},
    };
    const char *dir = testdata();
    if (dir == NULL) {
        print_message("FLUID_TESTDATA missing: skipping the vocabulary files\n");
        skip();
    }
    for (size_t v = 0; v < sizeof vocabs / sizeof vocabs[0]; v++) {
        char path[1024], err[512];
        snprintf(path, sizeof path, "%s/ggml-vocab-%s.gguf", dir, vocabs[v].name);
        gguf_file *f = gguf_open(path, err, sizeof err);
        if (f == NULL) fail_msg("%s", err);
        assert_true(gguf_version(f) == 2 || gguf_version(f) == 3);
        assert_int_equal(gguf_n_tensors(f), 0);
        gguf_str s;
        assert_true(gguf_get_str(f, "general.architecture", &s));
        assert_true(s.len > 0);
        assert_true(gguf_get_str(f, "tokenizer.ggml.model", &s));
        if (!str_is(s, vocabs[v].model)) fail_msg("%s: model %.*s", path, (int)s.len, s.ptr);
        gguf_type et;
        uint64_t n;
        assert_true(gguf_get_arr(f, "tokenizer.ggml.tokens", &et, &n, NULL));
        assert_int_equal(et, GGUF_TYPE_STRING);
        assert_int_equal(n, vocabs[v].n_tokens);
        for (uint64_t i = 0; i < n; i += 997)
            assert_true(gguf_get_arr_str(f, "tokenizer.ggml.tokens", i, &s));
        assert_true(gguf_get_arr_str(f, "tokenizer.ggml.tokens", n - 1, &s));
        assert_false(gguf_get_arr_str(f, "tokenizer.ggml.tokens", n, &s));
        uint64_t n_types;
        if (gguf_get_arr(f, "tokenizer.ggml.token_type", &et, &n_types, NULL)) {
            assert_int_equal(n_types, n);
            double d;
            assert_true(gguf_get_arr_num(f, "tokenizer.ggml.token_type", n - 1, &d));
            assert_true(d >= 0 && d <= 6);
        }
        if (strcmp(vocabs[v].model, "gpt2") == 0) {
            assert_true(gguf_get_arr(f, "tokenizer.ggml.merges", &et, &n, NULL));
            assert_int_equal(et, GGUF_TYPE_STRING);
            assert_true(n > 1000);
            assert_true(gguf_get_arr_str(f, "tokenizer.ggml.merges", 0, &s));
            assert_non_null(memchr(s.ptr, ' ', s.len));
        }
        uint32_t id;
        if (gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &id))
            assert_true(id < vocabs[v].n_tokens);
        gguf_close(f);
    }
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/ggml-vocab-qwen2.gguf", dir);
    gguf_file *f = gguf_open(path, err, sizeof err);
    assert_non_null(f);
    gguf_str s;
    assert_true(gguf_get_arr_str(f, "tokenizer.ggml.tokens", 151643, &s));
    assert_true(str_is(s, "<|endoftext|>"));
    gguf_close(f);
}

/* ---- corruption sweep ---- */

/* Opens the first `size` bytes of `data`, copied to the end of `scratch` (a heap block of
 * `cap` bytes) so that ASan catches any read past them, and, when the file opens, touches
 * everything the accessors expose. */
static int open_prefix(const uint8_t *data, size_t size, uint8_t *scratch, size_t cap) {
    assert_true(size <= cap);
    uint8_t *copy = scratch + (cap - size);
    memmove(copy, data, size);
    char err[256];
    gguf_file *f = gguf_open_memory(copy, size, err, sizeof err);
    int ok = f != NULL;
    if (f != NULL) {
        uint64_t sum = 0;
        for (int64_t i = 0; i < gguf_n_kv(f); i++) {
            gguf_str k = gguf_kv_key(f, i);
            if (k.len > 0) sum += (uint8_t)k.ptr[k.len - 1];
            char key[256];
            if (k.len >= sizeof key || memchr(k.ptr, 0, k.len) != NULL) continue;
            memcpy(key, k.ptr, k.len);
            key[k.len] = '\0';
            gguf_type et;
            uint64_t n;
            gguf_str s;
            double d;
            if (gguf_get_str(f, key, &s) && s.len > 0) sum += (uint8_t)s.ptr[s.len - 1];
            if (gguf_get_arr(f, key, &et, &n, NULL) && n > 0) {
                for (uint64_t j = 0; j < n; j += 1 + n / 16) {
                    if (gguf_get_arr_str(f, key, j, &s) && s.len > 0) sum += (uint8_t)s.ptr[0];
                    if (gguf_get_arr_num(f, key, j, &d)) sum += d == 0;
                }
                if (gguf_get_arr_str(f, key, n - 1, &s) && s.len > 0)
                    sum += (uint8_t)s.ptr[s.len - 1];
                if (gguf_get_arr_num(f, key, n - 1, &d)) sum += d == 0;
            }
        }
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
            const fl_tensor *t = gguf_tensor(f, i);
            const uint8_t *p = t->data;
            sum += p[0] + p[t->nbytes - 1];
            assert_true(gguf_find_tensor(f, t->name) == t);
        }
        (void)sum;
        gguf_close(f);
    }
    return ok;
}

/* A small model-like file with several tensors, written by our writer. */
static uint8_t *synthetic_model(size_t *size) {
    gguf_writer *w = gguf_writer_create();
    assert_true(gguf_writer_set_str(w, "general.architecture", "llama"));
    assert_true(gguf_writer_set_u32(w, "llama.block_count", 2));
    const char *toks[6] = {"a", "b", "ab", "<s>", "</s>", "Ġ"};
    assert_true(gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", toks, 6));
    int32_t types[6] = {1, 1, 1, 3, 3, 1};
    assert_true(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types, 6));
    static float data[64 * 6];
    for (int i = 0; i < 64 * 6; i++) data[i] = (float)i;
    int64_t ne[2] = {64, 6};
    assert_true(
        gguf_writer_add_tensor(w, "token_embd.weight", FL_TYPE_F32, 2, ne, data, sizeof data));
    int64_t ne1[1] = {64};
    assert_true(gguf_writer_add_tensor(w, "output_norm.weight", FL_TYPE_F32, 1, ne1, data, 256));
    int64_t neq[2] = {64, 2};
    assert_true(
        gguf_writer_add_tensor(w, "blk.0.attn_q.weight", FL_TYPE_Q8_0, 2, neq, data, 4 * 34));
    assert_true(gguf_writer_add_tensor(w, "blk.0.attn_k.weight", FL_TYPE_F16, 2, neq, data, 256));
    const char *path = temp_path("synthetic");
    char err[256];
    assert_true(gguf_writer_write(w, path, err, sizeof err));
    gguf_writer_free(w);
    uint8_t *bytes = read_whole(path, size);
    unlink(path);
    return bytes;
}

/* Truncations (every short prefix and a spread of longer ones), single-byte changes, bit flips,
 * and 8-byte overwrites of the little-endian values that look like counts or lengths. */
static void corrupt_sweep(const uint8_t *orig, size_t size, uint64_t seed, int n_trunc_spread,
                          int n_flips, int n_overwrites) {
    uint8_t *scratch = malloc(size);
    uint8_t *buf = malloc(size);
    assert_non_null(scratch);
    assert_non_null(buf);
    assert_true(open_prefix(orig, size, scratch, size));
    int opened = 0;
    size_t short_max = size < 4096 ? size : 4096;
    for (size_t len = 0; len < short_max; len++) opened += open_prefix(orig, len, scratch, size);
    for (int i = 0; i < n_trunc_spread && size > 4096; i++) {
        size_t len = 4096 + (size - 4096) * (size_t)i / (size_t)n_trunc_spread;
        opened += open_prefix(orig, len, scratch, size);
    }
    memcpy(buf, orig, size);
    uint64_t rng = seed;
    /* structure lives mostly in the first bytes and in the tensor infos: half the changes go
     * there, half anywhere */
    size_t head = size < 65536 ? size : 65536;
    for (int i = 0; i < n_flips; i++) {
        uint64_t r = splitmix64(&rng);
        size_t pos = (size_t)((r >> 8) % (i % 2 ? size : head));
        uint8_t old = buf[pos];
        buf[pos] = (r & 1) ? (uint8_t)(old ^ (1u << ((r >> 1) % 8))) : (uint8_t)(r >> 40);
        opened += open_prefix(buf, size, scratch, size);
        buf[pos] = old;
    }
    /* candidate count/length fields: 8-byte values below 2^24 */
    size_t *cands = malloc(sizeof(size_t) * (size / 8 + 1));
    assert_non_null(cands);
    size_t n_cands = 0;
    for (size_t p = 0; p + 8 <= size; p++) {
        uint64_t v;
        memcpy(&v, orig + p, 8);
        if (v > 0 && v < (1u << 24) && (p < head || (splitmix64(&rng) & 63) == 0)) {
            if (n_cands < size / 8 + 1) cands[n_cands++] = p;
        }
    }
    static const uint64_t nasty[] = {
        0, 1, 7, 255, 1u << 20, 1ull << 32, 1ull << 62, UINT64_MAX, UINT64_MAX - 7, INT64_MAX};
    for (int i = 0; i < n_overwrites && n_cands > 0; i++) {
        uint64_t r = splitmix64(&rng);
        size_t pos = cands[r % n_cands];
        uint64_t old, v;
        memcpy(&old, buf + pos, 8);
        switch ((r >> 32) % 3) {
        case 0:
            v = nasty[(r >> 40) % (sizeof nasty / sizeof nasty[0])];
            break;
        case 1:
            v = old + ((r >> 40) % 9) - 4;
            break;
        default:
            v = splitmix64(&rng);
            break;
        }
        memcpy(buf + pos, &v, 8);
        opened += open_prefix(buf, size, scratch, size);
        memcpy(buf + pos, &old, 8);
    }
    print_message("corruption sweep of %zu bytes: %d of the corrupted files opened\n", size,
                  opened);
    free(cands);
    free(buf);
    free(scratch);
}

static void corrupted_synthetic_model_never_crashes(void **state) {
    (void)state;
    size_t size;
    uint8_t *bytes = synthetic_model(&size);
    corrupt_sweep(bytes, size, 12345, 200, 4000, 3000);
    free(bytes);
}

static void corrupted_vocab_never_crashes(void **state) {
    (void)state;
    const char *dir = testdata();
    if (dir == NULL) {
        print_message("FLUID_TESTDATA missing: skipping the vocabulary corruption sweep\n");
        skip();
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/ggml-vocab-llama-spm.gguf", dir);
    size_t size;
    uint8_t *bytes = read_whole(path, &size);
    assert_non_null(bytes);
    corrupt_sweep(bytes, size, 777, 2000, 3000, 3000);
    free(bytes);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip_default_alignment),
        cmocka_unit_test(round_trip_custom_alignment),
        cmocka_unit_test(writer_failures_leave_no_file),
        cmocka_unit_test(nested_arrays_are_validated),
        cmocka_unit_test(bad_headers_are_rejected),
        cmocka_unit_test(bad_tensor_infos_are_rejected),
        cmocka_unit_test(open_reports_missing_file),
        cmocka_unit_test(vocab_files_open_with_sane_values),
        cmocka_unit_test(corrupted_synthetic_model_never_crashes),
        cmocka_unit_test(corrupted_vocab_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

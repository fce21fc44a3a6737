/* Placeholders until the real implementation lands; the owner deletes this file. */
#include "engine/gguf.h"

#include <stddef.h>

gguf_file *gguf_open(const char *path, char *err, size_t err_size) {
    (void)path;
    (void)err;
    (void)err_size;
    return NULL;
}

gguf_file *gguf_open_memory(const void *data, size_t size, char *err, size_t err_size) {
    (void)data;
    (void)size;
    (void)err;
    (void)err_size;
    return NULL;
}

void gguf_close(gguf_file *f) {
    (void)f;
}

uint32_t gguf_version(const gguf_file *f) {
    (void)f;
    return 0;
}

size_t gguf_file_size(const gguf_file *f) {
    (void)f;
    return 0;
}

int64_t gguf_n_kv(const gguf_file *f) {
    (void)f;
    return -1;
}

int64_t gguf_find_key(const gguf_file *f, const char *key) {
    (void)f;
    (void)key;
    return -1;
}

gguf_str gguf_kv_key(const gguf_file *f, int64_t index) {
    (void)f;
    (void)index;
    return (gguf_str){NULL, 0};
}

gguf_type gguf_kv_type(const gguf_file *f, int64_t index) {
    (void)f;
    (void)index;
    return GGUF_TYPE_UINT8;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    (void)f;
    (void)key;
    (void)out;
    return false;
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    (void)f;
    (void)key;
    (void)out;
    return false;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    (void)f;
    (void)key;
    (void)out;
    return false;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    (void)f;
    (void)key;
    (void)out;
    return false;
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    (void)f;
    (void)key;
    (void)out;
    return false;
}

bool gguf_get_arr(const gguf_file *f, const char *key, gguf_type *elem_type, uint64_t *count,
                  const void **data) {
    (void)f;
    (void)key;
    (void)elem_type;
    (void)count;
    (void)data;
    return false;
}

bool gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t index, gguf_str *out) {
    (void)f;
    (void)key;
    (void)index;
    (void)out;
    return false;
}

bool gguf_get_arr_num(const gguf_file *f, const char *key, uint64_t index, double *out) {
    (void)f;
    (void)key;
    (void)index;
    (void)out;
    return false;
}

int64_t gguf_n_tensors(const gguf_file *f) {
    (void)f;
    return -1;
}

const fl_tensor *gguf_tensor(const gguf_file *f, int64_t index) {
    (void)f;
    (void)index;
    return NULL;
}

const fl_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    (void)f;
    (void)name;
    return NULL;
}

gguf_writer *gguf_writer_create(void) {
    return NULL;
}

void gguf_writer_free(gguf_writer *w) {
    (void)w;
}

bool gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    (void)w;
    (void)key;
    (void)v;
    return false;
}

bool gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    (void)w;
    (void)key;
    (void)v;
    return false;
}

bool gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    (void)w;
    (void)key;
    (void)v;
    return false;
}

bool gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    (void)w;
    (void)key;
    (void)v;
    return false;
}

bool gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    (void)w;
    (void)key;
    (void)v;
    return false;
}

bool gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type, const void *data,
                         uint64_t count) {
    (void)w;
    (void)key;
    (void)elem_type;
    (void)data;
    (void)count;
    return false;
}

bool gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v,
                             uint64_t count) {
    (void)w;
    (void)key;
    (void)v;
    (void)count;
    return false;
}

bool gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, const char *key) {
    (void)w;
    (void)src;
    (void)key;
    return false;
}

bool gguf_writer_add_tensor(gguf_writer *w, const char *name, fl_type type, int n_dims,
                            const int64_t *ne, const void *data, size_t nbytes) {
    (void)w;
    (void)name;
    (void)type;
    (void)n_dims;
    (void)ne;
    (void)data;
    (void)nbytes;
    return false;
}

bool gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t err_size) {
    (void)w;
    (void)path;
    (void)err;
    (void)err_size;
    return false;
}

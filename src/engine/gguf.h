/* GGUF (v2/v3) files: a bounds-checked reader over a read-only mapping, and a writer.
 * Every offset and size in a file is checked at open time, so that after gguf_open succeeds
 * every accessor below is safe on a hostile file. */
#ifndef FLUID_ENGINE_GGUF_H
#define FLUID_ENGINE_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/tensor.h"

typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT = 13 /* not a type: returned for an invalid index */
} gguf_type;

/* Bytes taken by one value of a fixed-size type; 0 for STRING, ARRAY and unknown ids. */
size_t gguf_type_size(gguf_type type);

/* A string inside the file: not NUL-terminated. */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_file gguf_file;

/* Opens and validates a file (mapped read-only). On failure returns NULL and writes a message
 * to err. Versions 2 and 3 are read (little-endian only). */
gguf_file *gguf_open(const char *path, char *err, size_t err_size);
/* The same over bytes in memory (not copied: they must outlive the handle). For tests/fuzzing. */
gguf_file *gguf_open_memory(const void *data, size_t size, char *err, size_t err_size);
void gguf_close(gguf_file *f);
/* Whether the mapped file shrank while open (its data now reads as zeros; see util/mapguard.h). */
bool gguf_damaged(const gguf_file *f);

uint32_t gguf_version(const gguf_file *f);
size_t gguf_file_size(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
/* Offset of the (aligned) tensor data section from the start of the file. */
size_t gguf_data_offset(const gguf_file *f);

/* Metadata. Look-ups by key return false when the key is absent or of an unsuitable type.
 * Integer getters accept any integer type whose value fits; float getters accept any number. */
int64_t gguf_n_kv(const gguf_file *f);
int64_t gguf_find_key(const gguf_file *f, const char *key); /* index or -1 */
gguf_str gguf_kv_key(const gguf_file *f, int64_t index);
gguf_type gguf_kv_type(const gguf_file *f, int64_t index);
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);

/* Arrays: element type and count; for fixed-size element types, `data` points at the raw
 * little-endian elements (possibly unaligned: read with memcpy or the helpers below). For
 * arrays of strings or of arrays it points at the first serialized element. Arrays of arrays
 * are validated at open but the element getters below refuse them. */
bool gguf_get_arr(const gguf_file *f, const char *key, gguf_type *elem_type, uint64_t *count,
                  const void **data);
bool gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t index, gguf_str *out);
/* Element `index` of a numeric array converted to double (false if out of range/not numeric). */
bool gguf_get_arr_num(const gguf_file *f, const char *key, uint64_t index, double *out);

/* Tensors: views into the mapping, with shape, type and byte size checked against the file.
 * Every ne[i] >= 1 (unused dimensions are 1), ne[0] is a whole number of blocks, and the data
 * of two tensors never overlap. Names are NUL-terminated copies owned by the handle. */
int64_t gguf_n_tensors(const gguf_file *f);
const fl_tensor *gguf_tensor(const gguf_file *f, int64_t index);
const fl_tensor *gguf_find_tensor(const gguf_file *f, const char *name);

/* Writer: collects metadata and tensors, then writes a GGUF v3 file in one go (to PATH.tmp,
 * renamed to PATH on success). Setting a key again replaces its value; keys keep the order in
 * which they were first set. The alignment is general.alignment if set (a power of two, u32),
 * else 32. Setters return false on a bad argument or when out of memory. */
typedef struct gguf_writer gguf_writer;

gguf_writer *gguf_writer_create(void);
void gguf_writer_free(gguf_writer *w);
bool gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
bool gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
bool gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
bool gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
bool gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* Any fixed-size scalar type (`v` points at one value of that type). */
bool gguf_writer_set_val(gguf_writer *w, const char *key, gguf_type type, const void *v);
bool gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type, const void *data,
                         uint64_t count);
bool gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v, uint64_t count);
/* Copies one key/value (any type, arrays included) from an open file. */
bool gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, const char *key);
bool gguf_writer_copy_kv_index(gguf_writer *w, const gguf_file *src, int64_t index);
/* Adds a tensor; `data` (nbytes, matching type and shape) is copied. */
bool gguf_writer_add_tensor(gguf_writer *w, const char *name, fl_type type, int n_dims,
                            const int64_t *ne, const void *data, size_t nbytes);

/* Streaming tensors: the data is produced while the file is written, so a model bigger than
 * memory can be written. `produce` is called once, when the tensor's turn comes, and must pass
 * exactly the tensor's byte size to gguf_sink_write (in as many pieces as it likes); it returns
 * false (after setting a message with gguf_sink_fail) to abort the write. */
typedef struct gguf_sink gguf_sink;
typedef bool (*gguf_produce_fn)(void *ctx, gguf_sink *sink);
bool gguf_writer_add_tensor_stream(gguf_writer *w, const char *name, fl_type type, int n_dims,
                                   const int64_t *ne, gguf_produce_fn produce, void *ctx);
bool gguf_sink_write(gguf_sink *sink, const void *data, size_t nbytes);
void gguf_sink_fail(gguf_sink *sink, const char *message);
bool gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t err_size);

#endif

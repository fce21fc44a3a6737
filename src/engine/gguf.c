/* GGUF reader: the whole file is parsed and validated at open, so that accessors need no checks
 * beyond their own arguments. The layout (all little-endian):
 *   "GGUF", u32 version, u64 n_tensors, u64 n_kv,
 *   n_kv x { string key, u32 type, value },
 *   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset },
 *   padding to the alignment, tensor data (offsets relative to here).
 * A string is a u64 length followed by that many bytes; an array value is u32 element type,
 * u64 count, then the elements. */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/filemap.h"
#include "util/mapguard.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader assumes a little-endian host"
#endif

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32u
#define GGUF_MAX_ARRAY_DEPTH 8
/* Smallest possible serialized entries, used to bound counts by the bytes that remain. */
#define MIN_KV_BYTES 13u /* empty key (8) + type (4) + one-byte value */
#define MIN_TENSOR_BYTES                                                                           \
    32u                     /* empty name (8) + n_dims (4) + one ne (8) + type (4) + offset (8)    \
                             */
#define MIN_ARRAY_BYTES 12u /* element type (4) + count (8) */

size_t gguf_type_size(gguf_type type) {
    switch (type) {
    case GGUF_TYPE_UINT8:
    case GGUF_TYPE_INT8:
    case GGUF_TYPE_BOOL:
        return 1;
    case GGUF_TYPE_UINT16:
    case GGUF_TYPE_INT16:
        return 2;
    case GGUF_TYPE_UINT32:
    case GGUF_TYPE_INT32:
    case GGUF_TYPE_FLOAT32:
        return 4;
    case GGUF_TYPE_UINT64:
    case GGUF_TYPE_INT64:
    case GGUF_TYPE_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

/* ---- shared by reader and writer ---- */

/* Byte size of a tensor; false (with a reason) when the shape or type is invalid. */
static bool tensor_nbytes(uint32_t type, int n_dims, const int64_t *ne, size_t *out,
                          const char **why) {
    const fl_type_traits *tr = fl_type_traits_of(type);
    if (tr == NULL) {
        *why = "unknown tensor type";
        return false;
    }
    if (n_dims < 1 || n_dims > FL_MAX_DIMS) {
        *why = "n_dims must be 1..4";
        return false;
    }
    int64_t n = 1;
    for (int i = 0; i < n_dims; i++) {
        if (ne[i] < 1) {
            *why = "dimension < 1";
            return false;
        }
        if (n > INT64_MAX / ne[i]) {
            *why = "element count overflows";
            return false;
        }
        n *= ne[i];
    }
    if (ne[0] % tr->block_size != 0) {
        *why = "ne[0] is not a multiple of the type's block size";
        return false;
    }
    uint64_t blocks = (uint64_t)(n / tr->block_size);
    if (blocks > SIZE_MAX / tr->block_bytes) {
        *why = "byte size overflows";
        return false;
    }
    *out = (size_t)blocks * tr->block_bytes;
    return true;
}

static uint64_t fnv1a(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool str_eq(gguf_str a, const char *s, size_t n) {
    return a.len == n && memcmp(a.ptr, s, n) == 0;
}

/* ---- reader ---- */

typedef struct gguf_kv {
    gguf_str key;
    gguf_type type;
    size_t value_off;  /* file offset of the value (just after the type field) */
    size_t value_size; /* bytes of the serialized value */
    /* arrays only */
    gguf_type elem_type;
    uint64_t count;
    size_t elems_off; /* file offset of the first element */
    size_t *str_offs; /* arrays of strings: file offset of each element's length field */
} gguf_kv;

/* Open-addressing hash of names to indices (-1 = empty slot). */
typedef struct name_index {
    int64_t *slots;
    size_t mask;
} name_index;

struct gguf_file {
    const uint8_t *base;
    size_t size;
    void *map; /* mmap'ed region to unmap at close, or NULL */
    int guard; /* its slot in util/mapguard (-1 = none) */
    uint32_t version;
    uint32_t alignment;
    size_t data_off;
    int64_t n_kv;
    gguf_kv *kvs;
    name_index kv_index;
    int64_t n_tensors;
    fl_tensor *tensors;
    gguf_str *tensor_names; /* point into `names` */
    char *names;
    name_index tensor_index;
};

typedef gguf_str (*name_at_fn)(const gguf_file *f, int64_t i);

static gguf_str kv_name_at(const gguf_file *f, int64_t i) {
    return f->kvs[i].key;
}
static gguf_str tensor_name_at(const gguf_file *f, int64_t i) {
    return f->tensor_names[i];
}

static int64_t index_find(const gguf_file *f, const name_index *ix, name_at_fn name_at,
                          const char *s, size_t n) {
    if (ix->slots == NULL) return -1;
    for (size_t slot = fnv1a(s, n) & ix->mask;; slot = (slot + 1) & ix->mask) {
        int64_t i = ix->slots[slot];
        if (i < 0) return -1;
        if (str_eq(name_at(f, i), s, n)) return i;
    }
}

/* Builds the index of `count` names; returns the index of a duplicate name, -1 when none,
 * -2 when out of memory. */
static int64_t index_build(const gguf_file *f, name_index *ix, name_at_fn name_at, int64_t count) {
    size_t cap = 16;
    while (cap < (size_t)count * 2) cap *= 2;
    ix->slots = malloc(cap * sizeof *ix->slots);
    if (ix->slots == NULL) return -2;
    for (size_t i = 0; i < cap; i++) ix->slots[i] = -1;
    ix->mask = cap - 1;
    for (int64_t i = 0; i < count; i++) {
        gguf_str name = name_at(f, i);
        size_t slot = fnv1a(name.ptr, name.len) & ix->mask;
        for (; ix->slots[slot] >= 0; slot = (slot + 1) & ix->mask) {
            if (str_eq(name_at(f, ix->slots[slot]), name.ptr, name.len)) return i;
        }
        ix->slots[slot] = i;
    }
    return -1;
}

/* A parsing position with the first error message kept. */
typedef struct cursor {
    const uint8_t *base;
    size_t size;
    size_t pos;
    char *err;
    size_t err_size;
} cursor;

__attribute__((format(printf, 2, 3))) static bool fail(cursor *c, const char *fmt, ...) {
    if (c->err != NULL && c->err_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->err_size, fmt, ap);
        va_end(ap);
    }
    return false;
}

static size_t remaining(const cursor *c) {
    return c->size - c->pos;
}

static bool read_bytes(cursor *c, void *out, size_t n, const char *what) {
    if (remaining(c) < n) {
        return fail(c, "truncated file: %s at offset %zu needs %zu bytes, %zu left", what, c->pos,
                    n, remaining(c));
    }
    memcpy(out, c->base + c->pos, n);
    c->pos += n;
    return true;
}

static bool read_u32(cursor *c, uint32_t *v, const char *what) {
    *v = 0;
    return read_bytes(c, v, sizeof *v, what);
}

static bool read_u64(cursor *c, uint64_t *v, const char *what) {
    *v = 0;
    return read_bytes(c, v, sizeof *v, what);
}

static bool read_str(cursor *c, gguf_str *s, const char *what) {
    uint64_t len;
    if (!read_u64(c, &len, what)) return false;
    if (len > remaining(c)) {
        return fail(c, "%s at offset %zu: length %llu exceeds the %zu bytes left", what, c->pos - 8,
                    (unsigned long long)len, remaining(c));
    }
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += (size_t)len;
    return true;
}

/* Skips `count` elements of a fixed-size type. */
static bool skip_fixed(cursor *c, size_t elem_size, uint64_t count, const char *what) {
    if (count > remaining(c) / elem_size) {
        return fail(c, "%s at offset %zu: %llu elements of %zu bytes exceed the %zu bytes left",
                    what, c->pos, (unsigned long long)count, elem_size, remaining(c));
    }
    c->pos += (size_t)count * elem_size;
    return true;
}

static bool read_array_header(cursor *c, uint32_t *elem_type, uint64_t *count, const char *what) {
    return read_u32(c, elem_type, what) && read_u64(c, count, what);
}

/* Validates an array's elements (the header is already read); arrays of arrays recurse. */
static bool skip_array_elems(cursor *c, uint32_t elem_type, uint64_t count, int depth,
                             const char *what) {
    size_t fixed = gguf_type_size((gguf_type)elem_type);
    if (fixed > 0) return skip_fixed(c, fixed, count, what);
    if (elem_type == GGUF_TYPE_STRING) {
        if (count > remaining(c) / 8) {
            return fail(c, "%s: %llu strings cannot fit in the %zu bytes left", what,
                        (unsigned long long)count, remaining(c));
        }
        for (uint64_t i = 0; i < count; i++) {
            gguf_str s;
            if (!read_str(c, &s, what)) return false;
        }
        return true;
    }
    if (elem_type == GGUF_TYPE_ARRAY) {
        if (depth >= GGUF_MAX_ARRAY_DEPTH) return fail(c, "%s: arrays nested too deeply", what);
        if (count > remaining(c) / MIN_ARRAY_BYTES) {
            return fail(c, "%s: %llu arrays cannot fit in the %zu bytes left", what,
                        (unsigned long long)count, remaining(c));
        }
        for (uint64_t i = 0; i < count; i++) {
            uint32_t t;
            uint64_t n;
            if (!read_array_header(c, &t, &n, what)) return false;
            if (!skip_array_elems(c, t, n, depth + 1, what)) return false;
        }
        return true;
    }
    return fail(c, "%s: unknown array element type %u", what, elem_type);
}

/* Reads the elements of a top-level array, building the offset table of string arrays. */
static bool read_array(cursor *c, gguf_kv *kv, const char *what) {
    uint32_t elem_type;
    if (!read_array_header(c, &elem_type, &kv->count, what)) return false;
    kv->elem_type = (gguf_type)elem_type;
    kv->elems_off = c->pos;
    if (elem_type != GGUF_TYPE_STRING) return skip_array_elems(c, elem_type, kv->count, 1, what);
    if (kv->count > remaining(c) / 8) {
        return fail(c, "%s: %llu strings cannot fit in the %zu bytes left", what,
                    (unsigned long long)kv->count, remaining(c));
    }
    kv->str_offs = malloc((kv->count > 0 ? (size_t)kv->count : 1) * sizeof *kv->str_offs);
    if (kv->str_offs == NULL) return fail(c, "%s: out of memory", what);
    for (uint64_t i = 0; i < kv->count; i++) {
        kv->str_offs[i] = c->pos;
        gguf_str s;
        if (!read_str(c, &s, what)) return false;
    }
    return true;
}

static bool read_kv(cursor *c, gguf_kv *kv, int64_t index) {
    char what[64];
    snprintf(what, sizeof what, "metadata entry %lld", (long long)index);
    uint32_t type;
    if (!read_str(c, &kv->key, what) || !read_u32(c, &type, what)) return false;
    kv->type = (gguf_type)type;
    kv->value_off = c->pos;
    size_t fixed = gguf_type_size(kv->type);
    bool ok;
    if (fixed > 0) {
        ok = skip_fixed(c, fixed, 1, what);
    } else if (type == GGUF_TYPE_STRING) {
        gguf_str s;
        ok = read_str(c, &s, what);
    } else if (type == GGUF_TYPE_ARRAY) {
        ok = read_array(c, kv, what);
    } else {
        ok = fail(c, "%s (%.*s): unknown value type %u", what,
                  (int)(kv->key.len > 64 ? 64 : kv->key.len), kv->key.ptr, type);
    }
    kv->value_size = c->pos - kv->value_off;
    return ok;
}

static bool read_header(cursor *c, gguf_file *f, uint64_t *n_tensors, uint64_t *n_kv) {
    char magic[4];
    if (!read_bytes(c, magic, 4, "magic")) return false;
    if (memcmp(magic, GGUF_MAGIC, 4) != 0) return fail(c, "not a GGUF file (bad magic)");
    if (!read_u32(c, &f->version, "version")) return false;
    if (f->version == 1) {
        return fail(c, "GGUF version 1 is not supported (re-convert the model with a current "
                       "tool)");
    }
    if (f->version != 2 && f->version != 3) {
        return fail(c, "unsupported GGUF version %u (byte-swapped/big-endian files are not read)",
                    f->version);
    }
    if (!read_u64(c, n_tensors, "tensor count") || !read_u64(c, n_kv, "metadata count")) {
        return false;
    }
    if (*n_kv > remaining(c) / MIN_KV_BYTES) {
        return fail(c, "metadata count %llu cannot fit in a file of %zu bytes",
                    (unsigned long long)*n_kv, c->size);
    }
    if (*n_tensors > remaining(c) / MIN_TENSOR_BYTES) {
        return fail(c, "tensor count %llu cannot fit in a file of %zu bytes",
                    (unsigned long long)*n_tensors, c->size);
    }
    return true;
}

static bool read_metadata(cursor *c, gguf_file *f, uint64_t n_kv) {
    f->kvs = calloc(n_kv > 0 ? (size_t)n_kv : 1, sizeof *f->kvs);
    if (f->kvs == NULL)
        return fail(c, "out of memory for %llu metadata entries", (unsigned long long)n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        f->n_kv = (int64_t)i + 1; /* so that close frees a partly read entry */
        if (!read_kv(c, &f->kvs[i], (int64_t)i)) return false;
    }
    int64_t dup = index_build(f, &f->kv_index, kv_name_at, f->n_kv);
    if (dup == -2) return fail(c, "out of memory for the metadata index");
    if (dup >= 0) {
        gguf_str k = f->kvs[dup].key;
        return fail(c, "duplicate metadata key '%.*s'", (int)(k.len > 200 ? 200 : k.len), k.ptr);
    }
    return true;
}

/* The file offset and byte size a tensor info claims, for the overlap check. */
typedef struct extent {
    uint64_t off;
    size_t nbytes;
    int64_t index;
} extent;

static bool read_tensor_info(cursor *c, gguf_file *f, int64_t i, uint64_t *offset) {
    char what[64];
    snprintf(what, sizeof what, "tensor info %lld", (long long)i);
    fl_tensor *t = &f->tensors[i];
    gguf_str *name = &f->tensor_names[i];
    uint32_t n_dims, type;
    if (!read_str(c, name, what) || !read_u32(c, &n_dims, what)) return false;
    if (name->len == 0 || memchr(name->ptr, 0, name->len) != NULL) {
        return fail(c, "%s: empty name or name with a NUL byte", what);
    }
    int shown = (int)(name->len > 128 ? 128 : name->len);
    if (n_dims < 1 || n_dims > FL_MAX_DIMS) {
        return fail(c, "tensor '%.*s': n_dims %u is not in 1..%d", shown, name->ptr, n_dims,
                    FL_MAX_DIMS);
    }
    t->n_dims = (int)n_dims;
    for (int d = 0; d < FL_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        if (!read_u64(c, &ne, what)) return false;
        if (ne > INT64_MAX) {
            return fail(c, "tensor '%.*s': dimension %u is too large", shown, name->ptr, d);
        }
        t->ne[d] = (int64_t)ne;
    }
    if (!read_u32(c, &type, what) || !read_u64(c, offset, what)) return false;
    const char *why = NULL;
    if (!tensor_nbytes(type, t->n_dims, t->ne, &t->nbytes, &why)) {
        return fail(c, "tensor '%.*s' (type %u): %s", shown, name->ptr, type, why);
    }
    t->type = (fl_type)type;
    return true;
}

static int extent_cmp(const void *a, const void *b) {
    const extent *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

/* Checks each tensor's data lies inside the data section, aligned, and overlaps no other. */
static bool place_tensors(cursor *c, gguf_file *f, extent *ext) {
    size_t data_size = f->size - f->data_off;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const char *name = f->tensors[i].name;
        if (ext[i].off % f->alignment != 0) {
            return fail(c, "tensor '%s': data offset %llu is not a multiple of the alignment %u",
                        name, (unsigned long long)ext[i].off, f->alignment);
        }
        if (ext[i].off > data_size || ext[i].nbytes > data_size - ext[i].off) {
            return fail(c,
                        "tensor '%s': data (offset %llu, %zu bytes) extends past the end of "
                        "the file",
                        name, (unsigned long long)ext[i].off, ext[i].nbytes);
        }
        f->tensors[i].data = f->base + f->data_off + ext[i].off;
    }
    qsort(ext, (size_t)f->n_tensors, sizeof *ext, extent_cmp);
    for (int64_t i = 1; i < f->n_tensors; i++) {
        if (ext[i - 1].off + ext[i - 1].nbytes > ext[i].off) {
            return fail(c, "tensors '%s' and '%s' overlap", f->tensors[ext[i - 1].index].name,
                        f->tensors[ext[i].index].name);
        }
    }
    return true;
}

/* Copies tensor names into one NUL-terminated block owned by the handle. */
static bool copy_tensor_names(cursor *c, gguf_file *f) {
    size_t total = 1;
    for (int64_t i = 0; i < f->n_tensors; i++) total += f->tensor_names[i].len + 1;
    f->names = malloc(total);
    if (f->names == NULL) return fail(c, "out of memory for tensor names");
    char *p = f->names;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        memcpy(p, f->tensor_names[i].ptr, f->tensor_names[i].len);
        p[f->tensor_names[i].len] = '\0';
        f->tensors[i].name = p;
        f->tensor_names[i].ptr = p;
        p += f->tensor_names[i].len + 1;
    }
    return true;
}

static bool read_alignment(cursor *c, gguf_file *f) {
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t k = gguf_find_key(f, "general.alignment");
    if (k < 0) return true;
    uint32_t a;
    if (!gguf_get_u32(f, "general.alignment", &a)) {
        return fail(c, "general.alignment is not an unsigned 32-bit integer");
    }
    if (a == 0 || (a & (a - 1)) != 0) {
        return fail(c, "general.alignment %u is not a power of two", a);
    }
    f->alignment = a;
    return true;
}

/* The data section starts at the next multiple of the alignment. */
static bool find_data_start(cursor *c, gguf_file *f) {
    size_t pad = (f->alignment - c->pos % f->alignment) % f->alignment;
    if (pad > remaining(c)) {
        /* a file without tensors may end right after its metadata */
        if (f->n_tensors > 0) return fail(c, "truncated file: no room for the data section");
        pad = remaining(c);
    }
    f->data_off = c->pos + pad;
    return true;
}

static bool read_tensors(cursor *c, gguf_file *f, uint64_t n_tensors) {
    size_t n = n_tensors > 0 ? (size_t)n_tensors : 1;
    f->tensors = calloc(n, sizeof *f->tensors);
    f->tensor_names = calloc(n, sizeof *f->tensor_names);
    extent *ext = calloc(n, sizeof *ext);
    bool ok = f->tensors != NULL && f->tensor_names != NULL && ext != NULL;
    if (!ok) fail(c, "out of memory for %llu tensor infos", (unsigned long long)n_tensors);
    for (uint64_t i = 0; ok && i < n_tensors; i++) {
        ok = read_tensor_info(c, f, (int64_t)i, &ext[i].off);
        ext[i].nbytes = f->tensors[i].nbytes;
        ext[i].index = (int64_t)i;
    }
    f->n_tensors = (int64_t)n_tensors;
    ok = ok && copy_tensor_names(c, f) && read_alignment(c, f);
    if (ok) {
        int64_t dup = index_build(f, &f->tensor_index, tensor_name_at, f->n_tensors);
        if (dup == -2) ok = fail(c, "out of memory for the tensor index");
        if (dup >= 0) ok = fail(c, "duplicate tensor name '%s'", f->tensors[dup].name);
    }
    ok = ok && find_data_start(c, f) && place_tensors(c, f, ext);
    free(ext);
    return ok;
}

static gguf_file *parse(const uint8_t *base, size_t size, void *map, int guard, char *err,
                        size_t err_size) {
    gguf_file *f = calloc(1, sizeof *f);
    if (f == NULL) {
        fl_mapguard_remove(guard);
        if (map != NULL) munmap(map, size);
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    f->base = base;
    f->size = size;
    f->map = map;
    f->guard = guard;
    cursor c = {base, size, 0, err, err_size};
    uint64_t n_tensors = 0, n_kv = 0;
    if (!read_header(&c, f, &n_tensors, &n_kv) || !read_metadata(&c, f, n_kv) ||
        !read_tensors(&c, f, n_tensors)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

gguf_file *gguf_open_memory(const void *data, size_t size, char *err, size_t err_size) {
    if (data == NULL && size > 0) {
        snprintf(err, err_size, "no data");
        return NULL;
    }
    return parse(data, size, NULL, -1, err, err_size);
}

gguf_file *gguf_open(const char *path, char *err, size_t err_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    if (size < 4) {
        snprintf(err, err_size, "%s: file too small to be GGUF (%zu bytes)", path, size);
        close(fd);
        return NULL;
    }
    void *map = fl_map_file(fd, size);
    int map_errno = errno;
    close(fd);
    if (map == NULL) {
        snprintf(err, err_size, "%s: mmap: %s", path, strerror(map_errno));
        return NULL;
    }
    char inner[400];
    inner[0] = '\0';
    gguf_file *f = parse(map, size, map, fl_mapguard_add(map, size), inner, sizeof inner);
    if (f == NULL) {
        snprintf(err, err_size, "%s: %s", path, inner);
    } else if (gguf_damaged(f)) {
        snprintf(err, err_size, "%s: the file shrank while it was being read", path);
        gguf_close(f);
        f = NULL;
    }
    return f;
}

void gguf_close(gguf_file *f) {
    if (f == NULL) return;
    for (int64_t i = 0; i < f->n_kv; i++) free(f->kvs[i].str_offs);
    free(f->kvs);
    free(f->kv_index.slots);
    free(f->tensors);
    free(f->tensor_names);
    free(f->names);
    free(f->tensor_index.slots);
    fl_mapguard_remove(f->guard);
    if (f->map != NULL) munmap(f->map, f->size);
    free(f);
}

bool gguf_damaged(const gguf_file *f) {
    return f != NULL && fl_mapguard_damaged(f->guard);
}

uint32_t gguf_version(const gguf_file *f) {
    return f->version;
}
size_t gguf_file_size(const gguf_file *f) {
    return f->size;
}
uint32_t gguf_alignment(const gguf_file *f) {
    return f->alignment;
}
size_t gguf_data_offset(const gguf_file *f) {
    return f->data_off;
}
int64_t gguf_n_kv(const gguf_file *f) {
    return f->n_kv;
}

int64_t gguf_find_key(const gguf_file *f, const char *key) {
    if (f == NULL || key == NULL) return -1;
    return index_find(f, &f->kv_index, kv_name_at, key, strlen(key));
}

gguf_str gguf_kv_key(const gguf_file *f, int64_t index) {
    if (index < 0 || index >= f->n_kv) return (gguf_str){NULL, 0};
    return f->kvs[index].key;
}

gguf_type gguf_kv_type(const gguf_file *f, int64_t index) {
    if (index < 0 || index >= f->n_kv) return GGUF_TYPE_COUNT;
    return f->kvs[index].type;
}

static const gguf_kv *find_kv(const gguf_file *f, const char *key) {
    int64_t i = gguf_find_key(f, key);
    return i < 0 ? NULL : &f->kvs[i];
}

/* An integer of any GGUF integer type, as sign and magnitude. */
typedef struct wide_int {
    bool negative;
    uint64_t abs;
} wide_int;

static bool read_int(gguf_type type, const uint8_t *p, wide_int *out) {
    int64_t s;
    switch (type) {
    case GGUF_TYPE_UINT8:
        *out = (wide_int){false, p[0]};
        return true;
    case GGUF_TYPE_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        *out = (wide_int){false, v};
        return true;
    }
    case GGUF_TYPE_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        *out = (wide_int){false, v};
        return true;
    }
    case GGUF_TYPE_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        *out = (wide_int){false, v};
        return true;
    }
    case GGUF_TYPE_INT8:
        s = (int8_t)p[0];
        break;
    case GGUF_TYPE_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        s = v;
        break;
    }
    case GGUF_TYPE_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        s = v;
        break;
    }
    case GGUF_TYPE_INT64:
        memcpy(&s, p, 8);
        break;
    default:
        return false;
    }
    out->negative = s < 0;
    out->abs = s < 0 ? 0 - (uint64_t)s : (uint64_t)s;
    return true;
}

static bool read_number(gguf_type type, const uint8_t *p, double *out) {
    wide_int w;
    if (read_int(type, p, &w)) {
        *out = w.negative ? -(double)w.abs : (double)w.abs;
        return true;
    }
    if (type == GGUF_TYPE_FLOAT32) {
        float v;
        memcpy(&v, p, 4);
        *out = v;
        return true;
    }
    if (type == GGUF_TYPE_FLOAT64) {
        memcpy(out, p, 8);
        return true;
    }
    return false;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    const gguf_kv *kv = find_kv(f, key);
    wide_int w;
    if (kv == NULL || !read_int(kv->type, f->base + kv->value_off, &w)) return false;
    if (w.negative || w.abs > UINT32_MAX) return false;
    *out = (uint32_t)w.abs;
    return true;
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    const gguf_kv *kv = find_kv(f, key);
    wide_int w;
    if (kv == NULL || !read_int(kv->type, f->base + kv->value_off, &w)) return false;
    if (w.abs > (w.negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX)) return false;
    *out = w.negative ? -(int64_t)(w.abs - 1) - 1 : (int64_t)w.abs;
    return true;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = find_kv(f, key);
    double d;
    if (kv == NULL || !read_number(kv->type, f->base + kv->value_off, &d)) return false;
    *out = (float)d;
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = find_kv(f, key);
    if (kv == NULL || kv->type != GGUF_TYPE_BOOL) return false;
    *out = f->base[kv->value_off] != 0;
    return true;
}

/* The string whose u64 length field is at file offset `off` (validated at open). */
static gguf_str str_at(const gguf_file *f, size_t off) {
    uint64_t len;
    memcpy(&len, f->base + off, 8);
    return (gguf_str){(const char *)f->base + off + 8, len};
}

bool gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = find_kv(f, key);
    if (kv == NULL || kv->type != GGUF_TYPE_STRING) return false;
    *out = str_at(f, kv->value_off);
    return true;
}

bool gguf_get_arr(const gguf_file *f, const char *key, gguf_type *elem_type, uint64_t *count,
                  const void **data) {
    const gguf_kv *kv = find_kv(f, key);
    if (kv == NULL || kv->type != GGUF_TYPE_ARRAY) return false;
    if (elem_type != NULL) *elem_type = kv->elem_type;
    if (count != NULL) *count = kv->count;
    if (data != NULL) *data = f->base + kv->elems_off;
    return true;
}

bool gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t index, gguf_str *out) {
    const gguf_kv *kv = find_kv(f, key);
    if (kv == NULL || kv->type != GGUF_TYPE_ARRAY || kv->elem_type != GGUF_TYPE_STRING ||
        index >= kv->count) {
        return false;
    }
    *out = str_at(f, kv->str_offs[index]);
    return true;
}

bool gguf_get_arr_num(const gguf_file *f, const char *key, uint64_t index, double *out) {
    const gguf_kv *kv = find_kv(f, key);
    if (kv == NULL || kv->type != GGUF_TYPE_ARRAY || index >= kv->count ||
        kv->elem_type == GGUF_TYPE_BOOL) {
        return false;
    }
    size_t size = gguf_type_size(kv->elem_type);
    if (size == 0) return false;
    return read_number(kv->elem_type, f->base + kv->elems_off + index * size, out);
}

int64_t gguf_n_tensors(const gguf_file *f) {
    return f->n_tensors;
}

const fl_tensor *gguf_tensor(const gguf_file *f, int64_t index) {
    if (index < 0 || index >= f->n_tensors) return NULL;
    return &f->tensors[index];
}

const fl_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (name == NULL) return NULL;
    int64_t i = index_find(f, &f->tensor_index, tensor_name_at, name, strlen(name));
    return i < 0 ? NULL : &f->tensors[i];
}

/* ---- writer ---- */

/* A growable byte buffer. */
typedef struct bytes {
    uint8_t *p;
    size_t len, cap;
} bytes;

static bool bytes_put(bytes *b, const void *data, size_t n) {
    if (n > SIZE_MAX - b->len) return false;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) return false;
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (p == NULL) return false;
        b->p = p;
        b->cap = cap;
    }
    if (n > 0) memcpy(b->p + b->len, data, n);
    b->len += n;
    return true;
}

static const uint8_t ZEROS[256];

static bool bytes_put_zeros(bytes *b, uint64_t n) {
    for (; n > 0; n -= n < sizeof ZEROS ? n : sizeof ZEROS) {
        if (!bytes_put(b, ZEROS, n < sizeof ZEROS ? (size_t)n : sizeof ZEROS)) return false;
    }
    return true;
}

static bool bytes_put_u32(bytes *b, uint32_t v) {
    return bytes_put(b, &v, 4);
}
static bool bytes_put_u64(bytes *b, uint64_t v) {
    return bytes_put(b, &v, 8);
}

static bool bytes_put_str(bytes *b, const char *s, size_t n) {
    return bytes_put_u64(b, n) && bytes_put(b, s, n);
}

typedef struct writer_kv {
    char *key;
    gguf_type type;
    bytes value; /* serialized value, as it follows the type field in the file */
} writer_kv;

typedef struct writer_tensor {
    char *name;
    fl_type type;
    int n_dims;
    int64_t ne[FL_MAX_DIMS];
    size_t nbytes;
    void *data;              /* owned copy, or NULL when streamed */
    gguf_produce_fn produce; /* streamed tensors */
    void *ctx;
} writer_tensor;

struct gguf_writer {
    writer_kv *kvs;
    size_t n_kv, cap_kv;
    writer_tensor *tensors;
    size_t n_tensors, cap_tensors;
};

struct gguf_sink {
    FILE *fp;
    uint64_t left; /* bytes the current tensor still needs */
    bool failed;
    char message[256];
};

/* Grows an array of `size`-byte items so that one more fits. */
static bool grow(void **items, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return true;
    size_t new_cap = *cap ? *cap * 2 : 16;
    void *p = realloc(*items, new_cap * size);
    if (p == NULL) return false;
    *items = p;
    *cap = new_cap;
    return true;
}

gguf_writer *gguf_writer_create(void) {
    return calloc(1, sizeof(gguf_writer));
}

void gguf_writer_free(gguf_writer *w) {
    if (w == NULL) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].value.p);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->kvs);
    free(w->tensors);
    free(w);
}

/* Stores a serialized value under `key` (replacing an earlier one); takes ownership of `value`
 * in every case. */
static bool set_kv(gguf_writer *w, const char *key, gguf_type type, bytes value) {
    if (w == NULL || key == NULL) {
        free(value.p);
        return false;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            free(w->kvs[i].value.p);
            w->kvs[i].type = type;
            w->kvs[i].value = value;
            return true;
        }
    }
    char *copy = strdup(key);
    if (copy == NULL || !grow((void **)&w->kvs, &w->cap_kv, w->n_kv, sizeof *w->kvs)) {
        free(copy);
        free(value.p);
        return false;
    }
    w->kvs[w->n_kv++] = (writer_kv){copy, type, value};
    return true;
}

static bool set_raw(gguf_writer *w, const char *key, gguf_type type, const void *data, size_t n) {
    bytes b = {0};
    if (!bytes_put(&b, data, n)) {
        free(b.p);
        return false;
    }
    return set_kv(w, key, type, b);
}

bool gguf_writer_set_val(gguf_writer *w, const char *key, gguf_type type, const void *v) {
    size_t size = gguf_type_size(type);
    if (size == 0 || v == NULL) return false;
    return set_raw(w, key, type, v, size);
}

bool gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) {
    return gguf_writer_set_val(w, key, GGUF_TYPE_UINT32, &v);
}

bool gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    return gguf_writer_set_val(w, key, GGUF_TYPE_INT32, &v);
}

bool gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    return gguf_writer_set_val(w, key, GGUF_TYPE_FLOAT32, &v);
}

bool gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return gguf_writer_set_val(w, key, GGUF_TYPE_BOOL, &b);
}

bool gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (v == NULL) return false;
    bytes b = {0};
    if (!bytes_put_str(&b, v, strlen(v))) {
        free(b.p);
        return false;
    }
    return set_kv(w, key, GGUF_TYPE_STRING, b);
}

bool gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_type elem_type, const void *data,
                         uint64_t count) {
    size_t size = gguf_type_size(elem_type);
    if (size == 0 || (data == NULL && count > 0) || count > SIZE_MAX / size) return false;
    bytes b = {0};
    if (!bytes_put_u32(&b, elem_type) || !bytes_put_u64(&b, count) ||
        !bytes_put(&b, data, (size_t)count * size)) {
        free(b.p);
        return false;
    }
    return set_kv(w, key, GGUF_TYPE_ARRAY, b);
}

bool gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *v,
                             uint64_t count) {
    if (v == NULL && count > 0) return false;
    bytes b = {0};
    bool ok = bytes_put_u32(&b, GGUF_TYPE_STRING) && bytes_put_u64(&b, count);
    for (uint64_t i = 0; ok && i < count; i++)
        ok = v[i] != NULL && bytes_put_str(&b, v[i], strlen(v[i]));
    if (!ok) {
        free(b.p);
        return false;
    }
    return set_kv(w, key, GGUF_TYPE_ARRAY, b);
}

bool gguf_writer_copy_kv_index(gguf_writer *w, const gguf_file *src, int64_t index) {
    if (src == NULL || index < 0 || index >= src->n_kv) return false;
    const gguf_kv *kv = &src->kvs[index];
    if (memchr(kv->key.ptr, 0, kv->key.len) != NULL) return false;
    char *key = strndup(kv->key.ptr, kv->key.len);
    if (key == NULL) return false;
    bool ok = set_raw(w, key, kv->type, src->base + kv->value_off, kv->value_size);
    free(key);
    return ok;
}

bool gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, const char *key) {
    return gguf_writer_copy_kv_index(w, src, gguf_find_key(src, key));
}

static bool add_tensor(gguf_writer *w, const char *name, fl_type type, int n_dims,
                       const int64_t *ne, writer_tensor *t) {
    const char *why;
    if (w == NULL || name == NULL || name[0] == '\0' || ne == NULL) return false;
    if (!tensor_nbytes(type, n_dims, ne, &t->nbytes, &why)) return false;
    for (size_t i = 0; i < w->n_tensors; i++) {
        if (strcmp(w->tensors[i].name, name) == 0) return false;
    }
    t->name = strdup(name);
    if (t->name == NULL ||
        !grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors, sizeof *w->tensors)) {
        free(t->name);
        return false;
    }
    t->type = type;
    t->n_dims = n_dims;
    for (int d = 0; d < FL_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    w->tensors[w->n_tensors++] = *t;
    return true;
}

bool gguf_writer_add_tensor(gguf_writer *w, const char *name, fl_type type, int n_dims,
                            const int64_t *ne, const void *data, size_t nbytes) {
    size_t expected;
    const char *why;
    if (data == NULL || ne == NULL || !tensor_nbytes(type, n_dims, ne, &expected, &why) ||
        expected != nbytes) {
        return false;
    }
    writer_tensor t = {0};
    t.data = malloc(nbytes);
    if (t.data == NULL) return false;
    memcpy(t.data, data, nbytes);
    if (!add_tensor(w, name, type, n_dims, ne, &t)) {
        free(t.data);
        return false;
    }
    return true;
}

bool gguf_writer_add_tensor_stream(gguf_writer *w, const char *name, fl_type type, int n_dims,
                                   const int64_t *ne, gguf_produce_fn produce, void *ctx) {
    if (produce == NULL) return false;
    writer_tensor t = {0};
    t.produce = produce;
    t.ctx = ctx;
    return add_tensor(w, name, type, n_dims, ne, &t);
}

bool gguf_sink_write(gguf_sink *sink, const void *data, size_t nbytes) {
    if (sink->failed) return false;
    if (nbytes > sink->left) {
        gguf_sink_fail(sink, "tensor producer wrote more bytes than the tensor holds");
        return false;
    }
    if (nbytes > 0 && fwrite(data, 1, nbytes, sink->fp) != nbytes) {
        gguf_sink_fail(sink, strerror(errno));
        return false;
    }
    sink->left -= nbytes;
    return true;
}

void gguf_sink_fail(gguf_sink *sink, const char *message) {
    if (sink->failed) return;
    sink->failed = true;
    snprintf(sink->message, sizeof sink->message, "%s", message ? message : "failed");
}

static uint32_t writer_alignment(const gguf_writer *w) {
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, "general.alignment") != 0) continue;
        uint32_t a;
        if (w->kvs[i].type != GGUF_TYPE_UINT32) return 0;
        memcpy(&a, w->kvs[i].value.p, 4);
        return (a != 0 && (a & (a - 1)) == 0) ? a : 0;
    }
    return GGUF_DEFAULT_ALIGNMENT;
}

static uint64_t padding(uint64_t pos, uint32_t alignment) {
    return (alignment - pos % alignment) % alignment;
}

/* Serializes everything before the tensor data, padded to the alignment. */
static bool write_head(const gguf_writer *w, uint32_t alignment, bytes *b) {
    bool ok = bytes_put(b, GGUF_MAGIC, 4) && bytes_put_u32(b, 3) &&
              bytes_put_u64(b, w->n_tensors) && bytes_put_u64(b, w->n_kv);
    for (size_t i = 0; ok && i < w->n_kv; i++) {
        const writer_kv *kv = &w->kvs[i];
        ok = bytes_put_str(b, kv->key, strlen(kv->key)) && bytes_put_u32(b, kv->type) &&
             bytes_put(b, kv->value.p, kv->value.len);
    }
    uint64_t offset = 0;
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const writer_tensor *t = &w->tensors[i];
        ok = bytes_put_str(b, t->name, strlen(t->name)) && bytes_put_u32(b, (uint32_t)t->n_dims);
        for (int d = 0; ok && d < t->n_dims; d++) ok = bytes_put_u64(b, (uint64_t)t->ne[d]);
        ok = ok && bytes_put_u32(b, t->type) && bytes_put_u64(b, offset);
        offset += t->nbytes + padding(t->nbytes, alignment);
    }
    return ok && bytes_put_zeros(b, padding(b->len, alignment));
}

static bool write_zeros(FILE *fp, uint64_t n) {
    while (n > 0) {
        size_t k = n < sizeof ZEROS ? (size_t)n : sizeof ZEROS;
        if (fwrite(ZEROS, 1, k, fp) != k) return false;
        n -= k;
    }
    return true;
}

static bool write_tensor_data(const writer_tensor *t, uint32_t alignment, FILE *fp, char *err,
                              size_t err_size) {
    gguf_sink sink = {fp, t->nbytes, false, ""};
    bool ok =
        t->data != NULL ? gguf_sink_write(&sink, t->data, t->nbytes) : t->produce(t->ctx, &sink);
    if (ok && !sink.failed && sink.left != 0)
        gguf_sink_fail(&sink, "tensor producer wrote too few bytes");
    if (!ok && !sink.failed) gguf_sink_fail(&sink, "tensor producer failed");
    if (sink.failed) {
        snprintf(err, err_size, "tensor '%s': %s", t->name, sink.message);
        return false;
    }
    if (!write_zeros(fp, padding(t->nbytes, alignment))) {
        snprintf(err, err_size, "write: %s", strerror(errno));
        return false;
    }
    return true;
}

static bool write_file(const gguf_writer *w, uint32_t alignment, FILE *fp, char *err,
                       size_t err_size) {
    bytes head = {0};
    bool ok = write_head(w, alignment, &head);
    if (!ok) snprintf(err, err_size, "out of memory");
    if (ok && fwrite(head.p, 1, head.len, fp) != head.len) {
        snprintf(err, err_size, "write: %s", strerror(errno));
        ok = false;
    }
    free(head.p);
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        ok = write_tensor_data(&w->tensors[i], alignment, fp, err, err_size);
    }
    return ok;
}

bool gguf_writer_write(gguf_writer *w, const char *path, char *err, size_t err_size) {
    if (w == NULL || path == NULL) {
        snprintf(err, err_size, "no writer or path");
        return false;
    }
    uint32_t alignment = writer_alignment(w);
    if (alignment == 0) {
        snprintf(err, err_size, "general.alignment must be a u32 power of two");
        return false;
    }
    size_t n = strlen(path) + 5;
    char *tmp = malloc(n);
    if (tmp == NULL) {
        snprintf(err, err_size, "out of memory");
        return false;
    }
    snprintf(tmp, n, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    if (fp == NULL) {
        snprintf(err, err_size, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return false;
    }
    setvbuf(fp, NULL, _IOFBF, 1 << 20);
    char inner[300] = "";
    bool ok = write_file(w, alignment, fp, inner, sizeof inner);
    if (fclose(fp) != 0 && ok) {
        snprintf(inner, sizeof inner, "close: %s", strerror(errno));
        ok = false;
    }
    if (ok && rename(tmp, path) != 0) {
        snprintf(inner, sizeof inner, "rename to %s: %s", path, strerror(errno));
        ok = false;
    }
    if (!ok) {
        snprintf(err, err_size, "%s: %s", tmp, inner);
        unlink(tmp);
    }
    free(tmp);
    return ok;
}

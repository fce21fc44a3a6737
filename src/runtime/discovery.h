/* Finding models on disk: GGUF files under <model_path>/llm (sub-folders too) and ggml Whisper
 * files in <model_path>/whisper. Partial downloads, temporary and hidden files are skipped, and
 * so are symbolic links that lead outside model_path. */
#ifndef FLUID_RUNTIME_DISCOVERY_H
#define FLUID_RUNTIME_DISCOVERY_H

#include <stdint.h>

#include "runtime/names.h"

typedef struct rt_found {
    rt_model_type type;
    char id[RT_ID_MAX];
    char path[RT_PATH_MAX];
    uint64_t size;
    int64_t mtime;
} rt_found;

/* Scans model_path. *out is malloc'd (free()); a missing folder gives an empty list. */
rt_status rt_discover(const char *model_path, rt_found **out, size_t *n, rt_error *err);

/* Makes the folders for a download to path under root (root and above as mkdir -p does;
 * below root, folders are created only as real folders: a symbolic link there fails with
 * BAD_REQUEST) and checks that neither path nor path.part is a link. So a link planted in a
 * model folder cannot make a download write elsewhere. */
rt_status rt_prepare_write_path(const char *root, const char *path, rt_error *err);

#endif

/* Model names: validation, canonical ids, where a model lives under model_path and where the
 * Hub has it. The rules are documented in docs/models.md. */
#ifndef FLUID_RUNTIME_NAMES_H
#define FLUID_RUNTIME_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "runtime/runtime.h"

#define RT_WHISPER_PREFIX "whisper-"
#define RT_WHISPER_HUB_REPO "ggerganov/whisper.cpp"
#define RT_PATH_MAX 1024

typedef struct rt_name {
    rt_model_type type;
    char id[RT_ID_MAX];         /* canonical id: what /v1/models lists */
    char rel_path[RT_PATH_MAX]; /* where the file goes, relative to model_path */
    bool on_hub;                /* hub_repo/hub_file are set: the model can be downloaded */
    char hub_repo[RT_ID_MAX];   /* "owner/repo" */
    char hub_file[RT_ID_MAX];   /* path inside the repository */
} rt_name;

/* Parses a model name as a client or the configuration gives it. Fails with BAD_REQUEST for
 * names that are malformed or would escape the model folder. */
rt_status rt_name_parse(const char *name, rt_name *out, rt_error *err);

/* True when s is one safe path component: 1..255 bytes, not "." / "..", no leading '.', no
 * '/', '\\' or control characters. */
bool rt_name_component_ok(const char *s, size_t len);

/* The id of a file found by discovery: rel is its path under llm/ (LLM) or its file name in
 * whisper/ (Whisper). Returns false when the file is not a model (wrong extension, temporary
 * or partial file, unsafe name). */
bool rt_name_from_llm_file(const char *rel, char id[RT_ID_MAX]);
bool rt_name_from_whisper_file(const char *file, char id[RT_ID_MAX]);

/* True for names of files that are never models: partial downloads and temporary files. */
bool rt_name_is_temporary(const char *file);

#endif

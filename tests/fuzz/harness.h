/* What the fuzz targets share: reading fields out of the fuzzer's bytes, files in memory, the
 * vocabularies the tokenizer targets run on, and a model manager for the API handlers.
 *
 * A fuzz target is called millions of times in one process, so what is costly to build (a
 * vocabulary, a manager) is built on first use and kept for the life of the process: the only
 * process-wide state in the project, and it lives in the test harness. */
#ifndef FLUID_FUZZ_HARNESS_H
#define FLUID_FUZZ_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api/api.h"
#include "fluid/fluid.h"

/* The bytes not read yet. */
typedef struct fz_reader {
    const uint8_t *p;
    size_t left;
} fz_reader;

/* Fields of the seeds are separated by this byte (ASCII "record separator"). */
#define FZ_SEP 0x1e

/* A malloc'd copy of data[0..size) with a NUL after it (request bodies, fields). Aborts without
 * memory (a harness failure). */
char *fz_copy(const void *data, size_t size);

/* The next byte, or 0 when none is left. */
uint8_t fz_byte(fz_reader *r);
/* The bytes up to the next FZ_SEP (or the end) as a malloc'd NUL-terminated string; *len gets
 * the byte count (which may include NULs). Aborts without memory (a harness failure). */
char *fz_field(fz_reader *r, size_t *len);

/* A file holding bytes, named by a path the loaders can open (/proc/self/fd/N of a memfd): the
 * loaders that only take a path run on the fuzzer's bytes without touching the disk.
 * fz_file_path returns NULL on failure; fz_file_close removes it. */
typedef struct fz_file {
    int fd;
    char path[64];
} fz_file;
const char *fz_file_open(fz_file *f, const void *data, size_t size);
void fz_file_close(fz_file *f);

/* Vocabularies, by index in [0, fz_vocab_count()): first the byte-level BPE one fluid-synth
 * writes and a small SentencePiece one (always there), then those of $FLUID_TESTDATA when it
 * is set. Loaded on first use; NULL when one cannot be loaded (reported on stderr once). */
int fz_vocab_count(void);
const fluid_vocab *fz_vocab(int index);
/* Writes built-in vocabulary index (0 or 1) as a vocabulary-only GGUF file (for seeds). */
bool fz_vocab_write(int index, const char *path);

/* A model manager over an empty model folder (no downloads, no network), and a context for the
 * API handlers on it. */
const api_ctx *fz_api_ctx(void);

/* A POST of body[0..len) (NUL-terminated, as the HTTP layer keeps it) to path, as the router
 * hands it to a handler. */
api_request fz_post(const char *path, const char *content_type, const char *body, size_t len);

/* Checks an answer of a handler: an HTTP status, and with json_body a JSON body unless it is a
 * stream. */
void fz_check_response(const api_response *res, bool json_body);

/* Runs handler on req in fz_api_ctx(), checks the answer (fz_check_response) and frees it. */
void fz_api_call(api_handler handler, const api_request *req, bool json_body);

/* True when s[0..len) is valid UTF-8 (no overlong forms, surrogates or values past U+10FFFF). */
bool fz_utf8_valid(const char *s, size_t len);

/* Aborts (a finding) with a message when cond is false: properties the targets check. */
void fz_check(bool cond, const char *what);

#endif

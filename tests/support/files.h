/* Files for tests: reading one whole, and finding the shared test vectors. */
#ifndef FLUID_TESTS_FILES_H
#define FLUID_TESTS_FILES_H

#include <stddef.h>

/* The whole file with a NUL after it (not counted in *size; size may be NULL), or NULL when it
 * cannot be read. free() it. */
char *test_read_file(const char *path, size_t *size);

/* $FLUID_TESTDATA/name when that file is readable, else NULL (the caller skips). free() it. */
char *test_testdata_path(const char *name);

/* Writes root/rel (making the folders under root it needs): `head`, then 'x' up to size
 * bytes. Fails the test when it cannot. */
void test_make_file(const char *root, const char *rel, const char *head, size_t size);

#endif

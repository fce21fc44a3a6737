/* Whole-file mappings (util/filemap): a large file maps, reads back byte for byte and reports
 * how much of it the kernel backs with 2 MiB pages; a file shorter than the size asked for (it
 * shrank after its size was read) still maps without a fault; small files map plainly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "support/tiny_llm.h"
#include "util/filemap.h"

static uint8_t pattern(size_t i) {
    return (uint8_t)(i * 131 + (i >> 20));
}

/* A temporary file of `size` pattern bytes, opened read-only. */
static int pattern_file(size_t size, char **path) {
    *path = tiny_llm_temp_path();
    assert_non_null(*path);
    FILE *f = fopen(*path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < size; i++) assert_int_not_equal(fputc(pattern(i), f), EOF);
    assert_int_equal(fclose(f), 0);
    int fd = open(*path, O_RDONLY);
    assert_true(fd >= 0);
    return fd;
}

static void expect_pattern(const uint8_t *map, size_t size) {
    for (size_t i = 0; i < size; i += 4093) assert_int_equal(map[i], pattern(i));
    assert_int_equal(map[size - 1], pattern(size - 1));
}

/* Maps a fresh pattern file of `size` bytes with fl_map_file, checks it reads back, and returns
 * how many of its bytes are in 2 MiB pages. */
static long long map_pattern_file(size_t size) {
    char *path;
    int fd = pattern_file(size, &path);
    uint8_t *map = fl_map_file(fd, size);
    close(fd);
    assert_non_null(map);
    expect_pattern(map, size);
    long long huge = fl_map_huge_bytes(map);
    assert_int_equal(munmap(map, size), 0);
    unlink(path);
    free(path);
    return huge;
}

static void large_file_reads_back_with_its_huge_pages_counted(void **state) {
    (void)state;
    size_t size = FL_FILEMAP_HUGE_MIN + 3 * 4096 + 17;
    long long huge = map_pattern_file(size);
    assert_true(huge >= 0 && huge <= (long long)size);
    print_message("%lld of %zu bytes mapped with 2 MiB pages\n", huge, size);
}

static void small_file_maps_plainly(void **state) {
    (void)state;
    assert_int_equal(map_pattern_file(10000), 0);
}

static void shrunk_file_maps_without_a_fault(void **state) {
    (void)state;
    size_t size = FL_FILEMAP_HUGE_MIN + 4096, kept = 1 << 20;
    char *path;
    int fd = pattern_file(size, &path);
    assert_int_equal(truncate(path, (off_t)kept), 0); /* after the caller read the size */
    uint8_t *map = fl_map_file(fd, size);
    close(fd);
    assert_non_null(map);
    expect_pattern(map, kept);
    assert_int_equal(munmap(map, size), 0);
    unlink(path);
    free(path);
}

static void unknown_address_has_no_count(void **state) {
    (void)state;
    static char not_a_mapping_start[64];
    assert_int_equal(fl_map_huge_bytes(not_a_mapping_start + 1), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(large_file_reads_back_with_its_huge_pages_counted),
        cmocka_unit_test(small_file_maps_plainly),
        cmocka_unit_test(shrunk_file_maps_without_a_fault),
        cmocka_unit_test(unknown_address_has_no_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

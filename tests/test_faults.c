/* Files that change under a mapping (util/mapguard): a guarded mapping whose file is truncated
 * reads as zeros instead of killing the process with SIGBUS and is flagged damaged; an
 * unguarded one still faults as before; a language model whose file is truncated while loaded
 * keeps decoding without a crash, reports the damage, and the truncated file then fails to load
 * with a message; one truncated while it is being loaded fails to load with a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/model.h"
#include "fluid/fluid.h"
#include "support/tiny_llm.h"
#include "util/mapguard.h"

enum { PAGES = 4 };

static size_t page_size(void) {
    return (size_t)sysconf(_SC_PAGESIZE);
}

/* A temporary file of PAGES pages of 0xAB, mapped read-only. */
static uint8_t *map_temp_file(char **path) {
    *path = tiny_llm_temp_path();
    assert_non_null(*path);
    size_t size = PAGES * page_size();
    uint8_t *bytes = malloc(size);
    assert_non_null(bytes);
    memset(bytes, 0xAB, size);
    int fd = open(*path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, bytes, size), (ssize_t)size);
    close(fd);
    free(bytes);
    fd = open(*path, O_RDONLY);
    assert_true(fd >= 0);
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    assert_true(map != MAP_FAILED);
    return map;
}

static void truncated_guarded_mapping_reads_zeros(void **state) {
    (void)state;
    char *path;
    volatile uint8_t *map = map_temp_file(&path);
    size_t size = PAGES * page_size();
    int slot = fl_mapguard_add((const void *)map, size);
    assert_true(slot >= 0);
    assert_int_equal(map[size - 1], 0xAB);
    assert_false(fl_mapguard_damaged(slot));
    assert_int_equal(truncate(path, (off_t)page_size()), 0);
    assert_int_equal(map[size - 1], 0); /* past the new end: SIGBUS, repaired */
    assert_true(fl_mapguard_damaged(slot));
    assert_int_equal(map[0], 0); /* the whole mapping is zeros now */
    fl_mapguard_remove(slot);
    assert_false(fl_mapguard_damaged(slot));
    munmap((void *)map, size);
    unlink(path);
    free(path);
}

/* A fault outside every guarded mapping still ends the process (checked in a child). */
static void unguarded_mapping_still_faults(void **state) {
    (void)state;
    char *path;
    volatile uint8_t *map = map_temp_file(&path);
    size_t size = PAGES * page_size();
    static char other;
    int guarded = fl_mapguard_add(&other, 1); /* the handler is installed, for another range */
    assert_int_equal(truncate(path, (off_t)page_size()), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        /* Out of the test framework's handler: ours, chained to the default action. */
        signal(SIGBUS, SIG_DFL);
        fl_mapguard_add(&other, 1);
        volatile uint8_t x = map[size - 1];
        (void)x;
        _exit(0); /* survived: wrong */
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    /* Killed by SIGBUS, or (sanitizer build) reported and ended by the sanitizer. */
    bool died = WIFSIGNALED(status) ? WTERMSIG(status) == SIGBUS
                                    : WIFEXITED(status) && WEXITSTATUS(status) != 0;
    assert_true(died);
    fl_mapguard_remove(guarded);
    munmap((void *)map, size);
    unlink(path);
    free(path);
}

static void table_full_means_unguarded(void **state) {
    (void)state;
    static char regions[FL_MAPGUARD_SLOTS + 1];
    int slots[FL_MAPGUARD_SLOTS + 1];
    int n = 0;
    for (int i = 0; i <= FL_MAPGUARD_SLOTS; i++) {
        slots[i] = fl_mapguard_add(&regions[i], 1);
        if (slots[i] >= 0) n++;
    }
    assert_int_equal(n, FL_MAPGUARD_SLOTS);
    assert_int_equal(slots[FL_MAPGUARD_SLOTS], -1);
    for (int i = 0; i <= FL_MAPGUARD_SLOTS; i++) fl_mapguard_remove(slots[i]);
    int again = fl_mapguard_add(regions, 1); /* slots are reused */
    assert_true(again >= 0);
    fl_mapguard_remove(again);
}

static const tiny_llm_options LLAMA = {.arch = "llama"};

/* A temporary file holding the tiny Llama model (free() the path, unlink the file). */
static char *write_tiny_llama(void) {
    char *path = tiny_llm_temp_path();
    assert_non_null(path);
    assert_true(tiny_llm_write(path, &LLAMA));
    return path;
}

static void model_truncated_while_loaded(void **state) {
    (void)state;
    char *path = write_tiny_llama();
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true((size_t)st.st_size > 2 * page_size());

    fluid_error err = {0};
    fluid_model *model = fluid_model_load(path, &err);
    assert_non_null(model);
    fluid_pool *pool = fluid_pool_create(1);
    assert_non_null(pool);
    fluid_session *s = fluid_session_create(model, 0, &err);
    assert_non_null(s);
    int32_t tokens[3] = {1, 2, 3};
    assert_int_equal(fluid_session_decode(s, tokens, 2, pool, &err), FLUID_OK);
    assert_false(fluid_model_file_damaged(model));

    assert_int_equal(truncate(path, (off_t)page_size()), 0);
    /* The weights past the new end fault; the process lives and the model says so. */
    fluid_session_decode(s, tokens + 2, 1, pool, &err);
    assert_true(fluid_model_file_damaged(model));
    fluid_session_free(s);
    fluid_model_free(model);

    fluid_model *again = fluid_model_load(path, &err);
    assert_null(again);
    assert_true(strlen(err.message) > 0);
    fluid_pool_free(pool);
    unlink(path);
    free(path);
}

/* The file is truncated after gguf_open mapped it and before the model is built (at the first
 * page, where the metadata is; where the tensor data starts; half way through the data): the
 * load reads zeros where the file was, fails with a message that says what happened, and
 * neither crashes nor leaks (ASan in build-asan/). */
static void model_truncated_while_being_loaded(void **state) {
    (void)state;
    char *path = write_tiny_llama();
    char msg[256];
    gguf_file *probe = gguf_open(path, msg, sizeof msg);
    assert_non_null(probe);
    size_t data = gguf_data_offset(probe), size = gguf_file_size(probe);
    gguf_close(probe);
    const size_t cuts[] = {page_size(), data, data + (size - data) / 2};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        assert_true(tiny_llm_write(path, &LLAMA));
        gguf_file *file = gguf_open(path, msg, sizeof msg);
        assert_non_null(file);
        assert_int_equal(truncate(path, (off_t)cuts[i]), 0);
        fluid_error err = {0};
        fluid_model *model = fl_model_load_gguf(file, path, &err);
        if (model != NULL) fail_msg("cut at %zu of %zu bytes: the model loaded", cuts[i], size);
        assert_int_equal(err.code, FLUID_ERR_IO);
        assert_non_null(strstr(err.message, "the file changed on disk while it was being loaded"));
    }
    unlink(path);
    free(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(truncated_guarded_mapping_reads_zeros),
        cmocka_unit_test(unguarded_mapping_still_faults),
        cmocka_unit_test(table_full_means_unguarded),
        cmocka_unit_test(model_truncated_while_loaded),
        cmocka_unit_test(model_truncated_while_being_loaded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

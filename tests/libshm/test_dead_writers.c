/*
 * test_dead_writers.c — a process killed half-way through naming a counter or
 * writing a catalog entry must not wedge anyone: the next caller notices the
 * dead writer (its pid is in the lock word) and takes over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "internal.h"
#include "shmtest.h"

#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* A pid that certainly belongs to no running process: a reaped child's. */
static int32_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return (int32_t)pid;
}

static void test_counter_slot_left_writing(void **state)
{
    (void)state;
    char name[64];
    shm_segment *seg;
    shm_segment_options o = {.slot_count = 16, .slot_size = 64};
    assert_int_equal(shm_segment_open(shmtest_segment_name(name, sizeof name, "deadw"), &o,
                                      SHM_OPEN_CREATE, &seg), 0);
    /* What a process killed between WRITING and READY leaves behind. */
    struct shm__named *n = &seg->named[0];
    atomic_store(&n->state, SHM__NAMED_WRITING | ((uint32_t)dead_pid() << 8));
    shm_counter *c;
    assert_int_equal(shm_counter_open(seg, "shmbus_after_death_total", SHM_COUNTER, &c), 0);
    shm_counter_add(c, 3);
    assert_int_equal(shm_counter_get(c), 3);
    assert_int_equal(atomic_load(&n->state), SHM__NAMED_READY);
    shm_segment_close(&seg);
}

static void test_catalog_entry_left_locked(void **state)
{
    (void)state;
    char name[64];
    shm_segment *seg;
    shm_segment_options o = {.slot_count = 16, .slot_size = 64};
    assert_int_equal(shm_segment_open(shmtest_segment_name(name, sizeof name, "deadc"), &o,
                                      SHM_OPEN_CREATE, &seg), 0);
    struct shm__catalog_entry *e = &seg->catalog[5];
    atomic_store(&e->writer, dead_pid());
    atomic_store(&e->seq, 7u); /* odd: it died mid-write */
    uint8_t buf[64];
    assert_int_equal(shm_catalog_get(seg, 5, buf, sizeof buf), SHM_ETIMEDOUT); /* bounded */
    assert_int_equal(shm_catalog_put(seg, 5, "meta", 4), 0);
    assert_int_equal(shm_catalog_get(seg, 5, buf, sizeof buf), 4);
    assert_memory_equal(buf, "meta", 4);
    assert_int_equal(atomic_load(&e->writer), 0);
    shm_segment_close(&seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_slot_left_writing),
        cmocka_unit_test(test_catalog_entry_left_locked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * t_writer_cut.c — shmbus-writer's memory settings at work:
 *   - plan_from_config: the memory keys of the configuration file are what
 *     the writer logs as its plan; a value out of range is refused with the
 *     file, line and key named;
 *   - blocks_cut: with 64 KiB write buffers and a backlog, blocks larger than
 *     a buffer are cut into several writes (no block in the file is larger
 *     than the buffer, and some follow each other with interleaved sequence
 *     ranges: parts of one flush), and every record is stored exactly once.
 * (The resident-memory bound itself: t_writer_memory.c.)
 */
#include "shmtest.h"
#include "wtest_e2e.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void test_blocks_cut(void **state)
{
    (void)state;
    const uint32_t tags = 2000;
    char segname[64], data[256], log[512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 17, tags);
    shmtest_tmpdir(data, sizeof data);
    snprintf(log, sizeof log, "%s/w1.log", data);
    const char *extra[] = {"--buffer-bytes", "64KiB", "--chunk-bytes", "1GiB", NULL};
    pid_t w = wtest_writer_spawn(segname, data, "w1", log, extra);
    assert_true(wtest_writer_joined(seg, "w1", 10000));
    /* a backlog: blocks grow to block_points while the writer catches up */
    kill(w, SIGSTOP);
    wtest_producer p;
    wtest_producer_start(&p, segname, tags, 0, 100000);
    assert_true(shmtest_wait_pid(p.pid, 60000) != -1);
    uint64_t first, last;
    assert_int_equal(wtest_producer_stop(&p, &first, &last), 100000);
    kill(w, SIGCONT);
    assert_true(wtest_wait_drained(seg, 60000));
    /* killed, so that its blocks stay as written (a stop would seal) */
    shmtest_kill(w);
    char path[700];
    snprintf(path, sizeof path, "%s/chunks/w1.0000000001.open", data);
    wtest_block *b;
    size_t nb = wtest_block_map(path, &b);
    size_t interleaved = 0, biggest = 0;
    for (size_t i = 0; i < nb; i++) {
        biggest = b[i].len > biggest ? b[i].len : biggest;
        if (i > 0 && b[i].nseqs && b[i - 1].nseqs &&
            b[i].seqs[0] < b[i - 1].seqs[b[i - 1].nseqs - 1])
            interleaved++;
    }
    printf("%zu blocks, the largest %zu bytes, %zu parts of cut flushes\n", nb, biggest,
           interleaved);
    assert_true(biggest <= 64u << 10);
    assert_true(interleaved > 0);
    wtest_block_map_free(b, nb);
    assert_true(wtest_stored_once(data, tags, first, last));
    shm_segment_close(&seg);
}

static void test_plan_from_config(void **state)
{
    (void)state;
    char segname[64], data[256], log[512], cfg[600];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 12, 4);
    shmtest_tmpdir(data, sizeof data);
    snprintf(log, sizeof log, "%s/w1.log", data);
    snprintf(cfg, sizeof cfg, "%s/plant.yaml", data);
    FILE *f = fopen(cfg, "w");
    fprintf(f, "writer:\n  depth: 2\n  buffer_bytes: 256KiB\n  block_points: 4096\n"
               "  seal_memory: 2MiB\n");
    fclose(f);
    const char *extra[] = {"--config", cfg, NULL};
    pid_t w = wtest_writer_spawn(segname, data, "w1", log, extra);
    assert_true(wtest_writer_joined(seg, "w1", 10000));
    for (int i = 0; i < 1000 && !wtest_count_in_file(log, "memory plan:"); i++)
        sleep_ms(10);
    assert_int_equal(wtest_count_in_file(log, "write buffers 2 x 0.25 MiB = 0.5 MiB (pinned), "
                                              "block builder <= 4096 points"),
                     1);
    assert_int_equal(wtest_count_in_file(log, "sealer 2.0 MiB of points"), 1);
    assert_int_equal(wtest_writer_stop(w, 30000), 0);

    f = fopen(cfg, "w");
    fprintf(f, "writer:\n  buffer_bytes: 1KiB\n");
    fclose(f);
    snprintf(log, sizeof log, "%s/w2.log", data);
    w = wtest_writer_spawn(segname, data, "w2", log, extra);
    int st = shmtest_wait_pid(w, 10000);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    assert_int_equal(wtest_count_in_file(log, "plant.yaml:2: writer.buffer_bytes"), 1);
    shm_segment_close(&seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_from_config),
        cmocka_unit_test(test_blocks_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * t_writer_memory.c — shmbus-writer's memory, as behaviour:
 *
 *   - rss_bound: with its default memory plan, 4000 tags flowing as fast as
 *     a producer can put them and 8 MiB chunks (so that several seal while
 *     the test runs, at least one through an intermediate file), the
 *     writer's own resident memory — RssAnon + RssFile from
 *     /proc/<pid>/status, i.e. without the ring's shared pages — sampled
 *     every 10 ms never reaches 20 MB (the process group's limit besides
 *     the ring); every record is then stored exactly once. Skipped under
 *     AddressSanitizer: its shadow memory and quarantine (256 MB of freed
 *     blocks kept on purpose) make resident memory say nothing about the
 *     writer.
 *   - plan_from_config: the memory keys of the configuration file are
 *     what the writer logs as its plan; a value out of range is refused
 *     with the file, line and key named.
 *   - blocks_cut: with 64 KiB write buffers and a backlog, blocks larger
 *     than a buffer are cut into several writes (no block in the file is
 *     larger than the buffer, and some follow each other with interleaved
 *     sequence ranges: parts of one flush); every record is stored once.
 */
#include "shmtest.h"
#include "wtest_e2e.h"

#include <fcntl.h>
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

#define LIMIT_MB 20.0

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

/* The process's own resident memory in MB: RssAnon + RssFile (RssShmem,
 * the segment, is shared by the whole group). -1 when it is gone. */
static double own_mb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    double kb = 0;
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "RssAnon:", 8) == 0 || strncmp(line, "RssFile:", 8) == 0) {
            kb += atof(line + 8);
            found++;
        }
    fclose(f);
    return found == 2 ? kb / 1024.0 : -1;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Every record in [first, last] exactly once, across `tags` tags (read tag
 * by tag: a reader sorts what it returns). */
static void expect_exactly_once(const char *data, uint32_t tags, uint64_t first, uint64_t last)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/chunks", data);
    chunk_store *s = NULL;
    assert_int_equal(chunk_store_open(dir, 0, NULL, NULL, &s), 0);
    uint64_t n = last - first + 1, total = 0;
    uint8_t *seen = calloc(n, 1);
    chunk_series got = {0};
    for (uint32_t tag = 0; tag < tags; tag++) {
        chunk_read_stats st = {0};
        chunk_series_clear(&got);
        assert_int_equal(chunk_store_read(s, tag, INT64_MIN, INT64_MAX, CHUNK_F_ALL, &got, &st), 0);
        assert_int_equal(st.points_dropped, 0);
        for (size_t i = 0; i < got.n; i++) {
            assert_true(got.seq[i] >= first && got.seq[i] <= last);
            if (seen[got.seq[i] - first]++)
                fail_msg("sequence %llu read twice", (unsigned long long)got.seq[i]);
        }
        total += got.n;
    }
    for (size_t i = 0; i < s->nproblems; i++)
        printf("problem: %s\n", s->problems[i]);
    assert_int_equal(s->nproblems, 0);
    assert_int_equal(total, n);
    free(seen);
    chunk_series_free(&got);
    chunk_store_close(&s);
}

static void test_rss_bound(void **state)
{
    (void)state;
#ifdef UNDER_ASAN
    printf("resident memory is not the writer's under AddressSanitizer; skipped\n");
    skip();
#endif
    const uint32_t tags = 4000;
    char segname[64], data[256], log[512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 17, tags);
    shmtest_tmpdir(data, sizeof data);
    snprintf(log, sizeof log, "%s/w1.log", data);
    const char *extra[] = {"--chunk-bytes", "8MiB", NULL};
    pid_t w = wtest_writer_spawn(segname, data, "w1", log, extra);
    assert_true(wtest_writer_joined(seg, "w1", 10000));
    for (int i = 0; i < 1000 && !wtest_count_in_file(log, "memory plan:"); i++)
        sleep_ms(10);
    assert_int_equal(wtest_count_in_file(log, "memory plan:"), 1);
    wtest_producer p;
    wtest_producer_start(&p, segname, tags, 0, 0);

    double peak = 0;
    long samples = 0;
    int64_t deadline = shmtest_now_ms() + 150000;
    int sealed = 0, merged = 0;
    while (shmtest_now_ms() < deadline && (sealed < 4 || merged < 1)) {
        double mb = own_mb(w);
        assert_true(mb > 0);
        peak = mb > peak ? mb : peak;
        samples++;
        if (samples % 50 == 0) {
            sealed = wtest_count_in_file(log, "info: sealed");
            merged = wtest_count_in_file(log, "through a temporary file");
        }
        sleep_ms(10);
    }
    uint64_t first, last;
    uint64_t put = wtest_producer_stop(&p, &first, &last);
    printf("%llu records of %u tags, %d chunks sealed (%d through a temporary file), own "
           "memory at most %.1f MB over %ld samples\n",
           (unsigned long long)put, tags, sealed, merged, peak, samples);
    assert_true(sealed >= 4);
    assert_true(merged >= 1);
    /* draining, the shutdown and the last seal count too */
    deadline = shmtest_now_ms() + 120000;
    while (!wtest_wait_drained(seg, 10) && shmtest_now_ms() < deadline) {
        double mb = own_mb(w);
        peak = mb > peak ? mb : peak;
    }
    kill(w, SIGTERM);
    int status = -1;
    for (deadline = shmtest_now_ms() + 30000; status == -1 && shmtest_now_ms() < deadline;) {
        double mb = own_mb(w);
        peak = mb > peak ? mb : peak;
        status = shmtest_wait_pid(w, 10);
    }
    if (status == -1)
        shmtest_kill(w);
    assert_true(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    printf("own memory at most %.1f MB (limit %.0f MB besides the ring)\n", peak, LIMIT_MB);
    assert_true(peak < LIMIT_MB);
    assert_int_equal(wtest_count_in_file(log, "error"), 0);
    expect_exactly_once(data, tags, first, last);
    shm_segment_close(&seg);
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
    expect_exactly_once(data, tags, first, last);
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
        cmocka_unit_test(test_rss_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

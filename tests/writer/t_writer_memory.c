/*
 * t_writer_memory.c — shmbus-writer's memory bound, as behaviour: with its default memory plan, 4000 tags flowing as fast as
 *     a producer can put them and 8 MiB chunks (so that several seal while
 *     the test runs, at least one through an intermediate file), the
 *     writer's own resident memory — RssAnon + RssFile from
 *     /proc/<pid>/status, i.e. without the ring's shared pages — sampled
 * every 10 ms — also while it drains and stops — never reaches 20 MB (the
 * process group's limit besides the ring); every record is then stored
 * exactly once. Skipped (77) under AddressSanitizer: its shadow memory and
 * quarantine (256 MB of freed blocks kept on purpose) make resident memory
 * say nothing about the writer.
 * The other memory behaviour (blocks cut to the write buffer, the plan
 * taken from the configuration) is in t_writer_cut.c, which runs under the
 * sanitizers too.
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

static void test_rss_bound(void **state)
{
    (void)state;
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
    assert_true(wtest_stored_once(data, tags, first, last));
    shm_segment_close(&seg);
}

int main(void)
{
#ifdef UNDER_ASAN
    printf("resident memory is not the writer's under AddressSanitizer (shadow memory, a 256 MB "
           "quarantine of freed blocks); skipped\n");
    return 77;
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rss_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

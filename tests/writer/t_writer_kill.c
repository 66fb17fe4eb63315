/*
 * t_writer_kill.c — two writers share group `writer` while a producer puts
 * records; 60 times one of them is killed with SIGKILL at a random instant
 * and started again under the same name (it recovers its own chunk). After
 * some kills, and at the end, every sequence number the group had
 * acknowledged must be in the store — exactly once as readers see it, even
 * though re-delivered batches are stored twice.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define TAGS 32u
#define KILLS 60
/* Records per second while the writers are killed. Under AddressSanitizer
 * the writers (and the store reads of the checks) run many times slower and
 * a full rate only builds a backlog to drain: the kills, not the rate, are
 * what this test is about. */
#if defined(__SANITIZE_ADDRESS__)
#define RATE 5000
#else
#define RATE 30000
#endif

/* Missing sequence numbers in [first, upto) among what readers return;
 * fails on a duplicate or a number never put. */
static uint64_t missing_below(const char *dir, uint64_t first, uint64_t upto, uint64_t last,
                              uint64_t *dups_removed)
{
    chunk_store *s = NULL;
    assert_int_equal(chunk_store_open(dir, 0, NULL, NULL, &s), 0);
    chunk_series got = {0};
    uint64_t dups = 0;
    for (uint32_t tag = 0; tag < TAGS; tag++) {
        chunk_read_stats st = {0};
        assert_int_equal(chunk_store_read(s, tag, INT64_MIN, INT64_MAX, CHUNK_F_TS | CHUNK_F_SEQ,
                                          &got, &st),
                         0);
        dups += st.duplicates_removed;
    }
    uint64_t n = last - first + 1;
    uint8_t *seen = calloc(n, 1);
    for (size_t i = 0; i < got.n; i++) {
        if (got.seq[i] < first || got.seq[i] > last)
            fail_msg("sequence %llu was never put", (unsigned long long)got.seq[i]);
        if (seen[got.seq[i] - first]++)
            fail_msg("sequence %llu read twice", (unsigned long long)got.seq[i]);
    }
    uint64_t missing = 0;
    for (uint64_t q = first; q < upto; q++)
        missing += !seen[q - first];
    free(seen);
    chunk_series_free(&got);
    chunk_store_close(&s);
    if (dups_removed)
        *dups_removed = dups;
    return missing;
}

/* A reader can list a chunk just before the sealer renames it; look again
 * before calling anything missing. */
static uint64_t missing_stable(const char *dir, uint64_t first, uint64_t upto, uint64_t last,
                               uint64_t *dups_removed)
{
    uint64_t m = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        m = missing_below(dir, first, upto, last, dups_removed);
        if (m == 0)
            return 0;
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    return m;
}

static void test_kill_writers(void **state)
{
    (void)state;
    char segname[64], data[256], dir[600], logs[2][512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 16, TAGS);
    shmtest_tmpdir(data, sizeof data);
    snprintf(dir, sizeof dir, "%s/chunks", data);
    const char *names[2] = {"k1", "k2"};
    const char *extra[] = {"--batch-age-ms", "5", "--chunk-bytes", "256KiB", NULL};
    pid_t w[2];
    for (int i = 0; i < 2; i++) {
        snprintf(logs[i], sizeof logs[i], "%s/%s.log", data, names[i]);
        w[i] = wtest_writer_spawn(segname, data, names[i], logs[i], extra);
        assert_true(wtest_writer_joined(seg, names[i], 10000));
    }
    wtest_producer p;
    wtest_producer_start(&p, segname, TAGS, RATE, 0);
    while (wtest_producer_count(&p) == 0)
        usleep(1000);
    wtest_seed((uint64_t)getpid());
    uint64_t checked = 0;
    for (int k = 0; k < KILLS; k++) {
        usleep((useconds_t)(20000 + wtest_rand() % 250000));
        int i = (int)(wtest_rand() % 2);
        shmtest_kill(w[i]);
        /* everything below the group's tail was acknowledged: it must be
         * in the store now, with the writer dead */
        uint64_t tail = wtest_tail(seg);
        if (k % 10 == 9) {
            uint64_t first = wtest_producer_first(&p);
            /* readers may already see records put after this moment */
            uint64_t bound = wtest_producer_last(&p) + 10000000;
            assert_int_equal(missing_stable(dir, first, tail, bound, NULL), 0);
            checked++;
        }
        w[i] = wtest_writer_spawn(segname, data, names[i], logs[i], extra);
    }
    uint64_t put_first, put_last;
    uint64_t put = wtest_producer_stop(&p, &put_first, &put_last);
    assert_true(wtest_wait_drained(seg, 120000));
    uint64_t dups = 0;
    /* the writers still run (and may be sealing): the same second look */
    uint64_t missing = missing_stable(dir, put_first, put_last + 1, put_last, &dups);
    for (int i = 0; i < 2; i++)
        assert_int_equal(wtest_writer_stop(w[i], 60000), 0);
    assert_int_equal(missing, 0);
    /* after a clean stop every chunk is sealed and still complete */
    assert_int_equal(missing_stable(dir, put_first, put_last + 1, put_last, NULL), 0);
    printf("%d SIGKILLs, %llu records put, %llu stored twice (re-delivered) and removed by "
           "readers, %llu mid-run checks\n",
           KILLS, (unsigned long long)put, (unsigned long long)dups, (unsigned long long)checked);
    shm_segment_close(&seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_writers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

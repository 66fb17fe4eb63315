/*
 * t_writer_diskfull.c — the writer on a 2 MiB tmpfs that fills up while
 * records flow: it stops acknowledging, logs the condition once, retries
 * with backoff, and what it acknowledged is stored; when space returns it
 * resumes and everything ends up stored exactly once. Both append paths.
 * Needs root for the mount (skipped with 77 otherwise); the mount is
 * detached at exit, also when an assertion fails.
 */
#include "shmtest.h"
#include "wtest_e2e.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define TAGS 16u

static char mnt[2][600];
static int n_mounts;
static pid_t writer_pid;

static void unmount_all(void)
{
    if (writer_pid > 0)
        kill(writer_pid, SIGKILL); /* its open files would keep the mount busy */
    for (int i = 0; i < n_mounts; i++)
        umount2(mnt[i], MNT_DETACH);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Everything in [first, upto] stored, nothing twice, nothing unknown. */
static void expect_stored(const char *dir, uint64_t first, uint64_t upto, uint64_t last)
{
    chunk_series got = {0};
    uint64_t dropped;
    chunk_store *s = wtest_read_all(dir, TAGS, &got, &dropped);
    assert_non_null(s);
    uint64_t n = last - first + 1;
    uint8_t *seen = calloc(n, 1);
    for (size_t i = 0; i < got.n; i++) {
        assert_true(got.seq[i] >= first && got.seq[i] <= last);
        if (seen[got.seq[i] - first]++)
            fail_msg("sequence %llu read twice", (unsigned long long)got.seq[i]);
    }
    for (uint64_t q = first; q <= upto; q++)
        if (!seen[q - first])
            fail_msg("acknowledged sequence %llu is not stored", (unsigned long long)q);
    free(seen);
    chunk_series_free(&got);
    chunk_store_close(&s);
}

static void disk_full(bool force_pwrite)
{
    char base[256], data[600], dir[700], filler[700], log[600];
    shmtest_tmpdir(base, sizeof base);
    snprintf(data, sizeof data, "%s/mnt", base);
    mkdir(data, 0755);
    if (mount("tmpfs", data, "tmpfs", 0, "size=2m") != 0) {
        printf("mount -t tmpfs: %s; skipped\n", strerror(errno));
        exit(77);
    }
    snprintf(mnt[n_mounts++], sizeof mnt[0], "%s", data);
    snprintf(dir, sizeof dir, "%s/chunks", data);
    snprintf(log, sizeof log, "%s/writer.log", base);

    /* leave about 160 KiB free */
    struct statvfs vfs;
    assert_int_equal(statvfs(data, &vfs), 0);
    uint64_t avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
    snprintf(filler, sizeof filler, "%s/filler", data);
    int fd = open(filler, O_WRONLY | O_CREAT, 0600);
    static char block[65536];
    memset(block, 0xAB, sizeof block);
    for (uint64_t done = 0; done + 160 * 1024 < avail; done += sizeof block)
        if (write(fd, block, sizeof block) != (ssize_t)sizeof block)
            break;
    close(fd);

    char segname[64];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 16, TAGS);
    const char *extra[] = {"--batch-age-ms", "5", "--chunk-bytes", "512KiB",
                           force_pwrite ? "--force-pwrite" : NULL, NULL};
    writer_pid = wtest_writer_spawn(segname, data, "full", log, extra);
    assert_true(wtest_writer_joined(seg, "full", 10000));
    wtest_producer p;
    wtest_producer_start(&p, segname, TAGS, 25000, 150000); /* several times the free space */

    /* the disk fills: the condition is logged, acknowledgments stop */
    int64_t deadline = shmtest_now_ms() + 60000;
    while (wtest_count_in_file(log, "No space left on device") == 0 && shmtest_now_ms() < deadline)
        sleep_ms(20);
    assert_true(wtest_count_in_file(log, "No space left on device") >= 1);
    uint64_t tail = wtest_tail(seg);
    sleep_ms(700);
    uint64_t first = wtest_producer_first(&p);
    expect_stored(dir, first, tail - 1, wtest_producer_last(&p) + 10000000);
    int episodes = wtest_count_in_file(log, "retrying with backoff");
    printf("disk full after %llu records acknowledged; %d log line(s) for it\n",
           (unsigned long long)(tail - first), episodes);
    assert_true(episodes >= 1 && episodes <= 3); /* once per condition, not per retry */

    /* space returns: the writer resumes by itself */
    assert_int_equal(unlink(filler), 0);
    assert_int_equal(shmtest_wait_pid(p.pid, 120000) != -1, 1);
    uint64_t last;
    wtest_producer_stop(&p, &first, &last);
    assert_true(wtest_wait_drained(seg, 120000));
    assert_true(wtest_count_in_file(log, "space is back") >= 1);
    assert_int_equal(wtest_writer_stop(writer_pid, 30000), 0);
    writer_pid = 0;
    expect_stored(dir, first, last, last);
    shm_segment_close(&seg);
}

static void test_disk_full_uring(void **state)
{
    (void)state;
    disk_full(false);
}

static void test_disk_full_pwrite(void **state)
{
    (void)state;
    disk_full(true);
}

int main(void)
{
    if (geteuid() != 0) {
        printf("not root: cannot mount a tmpfs; skipped\n");
        return 77;
    }
    char probe[256];
    shmtest_tmpdir(probe, sizeof probe); /* registers shmtest's cleanup before ours */
    atexit(unmount_all);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_full_uring),
        cmocka_unit_test(test_disk_full_pwrite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

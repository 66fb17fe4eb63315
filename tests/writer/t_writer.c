/*
 * t_writer.c — shmbus-writer end to end, against a real segment and a real
 * producer: every record put comes back exactly once (io_uring and pwrite
 * paths), chunks are sealed at shutdown and verify clean, the catalog file
 * names the tags, the counters add up; a failed fdatasync makes the writer
 * exit non-zero without acknowledging (a restart writes everything); a
 * second writer of the same name, a newer chunk format, a foreign file and
 * an unwritable data directory get clear errors naming the path; retention
 * deletes the oldest sealed chunks by byte budget and by age.
 */
#include "shmtest.h"
#include "wtest_e2e.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#define TAGS 16u

/* Reads every tag; checks that nothing outside [first, last] and nothing
 * twice came back, and that all of [first, needed] did. */
static void expect_stored(const char *data, uint64_t first, uint64_t needed, uint64_t last)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/chunks", data);
    chunk_series got = {0};
    uint64_t dropped;
    chunk_store *s = wtest_read_all(dir, TAGS, &got, &dropped);
    assert_non_null(s);
    for (size_t i = 0; i < s->nproblems; i++)
        printf("problem: %s\n", s->problems[i]);
    assert_int_equal(dropped, 0);
    uint64_t n = last - first + 1;
    uint8_t *seen = calloc(n, 1);
    for (size_t i = 0; i < got.n; i++) {
        assert_true(got.seq[i] >= first && got.seq[i] <= last);
        if (seen[got.seq[i] - first]++)
            fail_msg("sequence %llu read twice", (unsigned long long)got.seq[i]);
        assert_int_equal(got.quality[i], SHM_Q_GOOD);
        assert_true(got.value[i] > 0 && got.value[i] < 100);
    }
    for (uint64_t i = 0; first + i <= needed; i++)
        if (!seen[i])
            fail_msg("sequence %llu is missing", (unsigned long long)(first + i));
    free(seen);
    chunk_series_free(&got);
    chunk_store_close(&s);
}

/* Every record in [first, last] exactly once. */
static void expect_exactly_once(const char *data, uint64_t first, uint64_t last)
{
    expect_stored(data, first, last, last);
}

struct find_counter {
    const char *name;
    uint64_t v;
};

static int visit_counter(void *ctx, const char *n, int kind, uint64_t v)
{
    (void)kind;
    struct find_counter *f = ctx;
    if (strcmp(n, f->name) == 0) {
        f->v = v;
        return 1;
    }
    return 0;
}

static uint64_t counter_value(shm_segment *seg, const char *name)
{
    struct find_counter f = {name, UINT64_MAX};
    shm_counter_foreach(seg, visit_counter, &f);
    return f.v;
}

static void basic(bool force_pwrite)
{
    char segname[64], data[256], log[512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 14, TAGS);
    shmtest_tmpdir(data, sizeof data);
    snprintf(log, sizeof log, "%s/w1.log", data);
    const char *extra[] = {"--batch-age-ms", "20", force_pwrite ? "--force-pwrite" : NULL, NULL};
    pid_t w = wtest_writer_spawn(segname, data, "w1", log, extra);
    assert_true(wtest_writer_joined(seg, "w1", 10000));
    wtest_producer p;
    wtest_producer_start(&p, segname, TAGS, 0, 30000);
    assert_int_equal(shmtest_wait_pid(p.pid, 60000) != -1, 1);
    uint64_t first, last;
    uint64_t put = wtest_producer_stop(&p, &first, &last);
    assert_int_equal(put, 30000);
    assert_true(wtest_wait_drained(seg, 60000));
    assert_int_equal(wtest_writer_stop(w, 30000), 0);
    assert_int_equal(wtest_count_in_file(log, force_pwrite ? "pwrite appends" : "io_uring appends"), 1);
    assert_int_equal(wtest_count_in_file(log, "error"), 0);
    expect_exactly_once(data, first, last);

    /* sealed at shutdown, and clean under a full check */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/chunks", data);
    chunk_store *s;
    assert_int_equal(chunk_store_open(dir, CHUNK_SCAN_FULL, NULL, NULL, &s), 0);
    assert_true(s->nfiles >= 1);
    for (size_t i = 0; i < s->nfiles; i++) {
        assert_int_equal(s->files[i].kind, CHUNK_NAME_SEALED);
        assert_true(s->files[i].scan.sealed);
        assert_int_equal(s->files[i].scan.n_damage, 0);
    }
    assert_int_equal(s->nproblems, 0);
    chunk_store_close(&s);

    /* the catalog names the tags */
    chunk_catalog cat = {0};
    assert_int_equal(chunk_catalog_load(dir, &cat, NULL), 0);
    uint32_t id;
    assert_int_equal(chunk_catalog_lookup(&cat, "tag.3", &id), 0);
    assert_int_equal(id, 3);
    chunk_catalog_free(&cat);

    assert_int_equal(counter_value(seg, "writer_points_total{writer=\"w1\"}"), put);
    assert_true(counter_value(seg, "writer_syncs_total{writer=\"w1\"}") >= 1);
    shm_segment_close(&seg);
}

static void test_basic_uring(void **state)
{
    (void)state;
    basic(false);
}

static void test_basic_pwrite(void **state)
{
    (void)state;
    basic(true);
}

/* The writer where io_uring is forbidden (seccomp returns EPERM for
 * io_uring_setup, as container runtimes do): one warning, pwrite appends,
 * the same contract. */
struct denied_arg {
    char bin[512], seg[64], data[256], log[512];
};

static int run_without_io_uring(void *p)
{
    struct denied_arg *a = p;
    int fd = open(a->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return 99;
    execl(a->bin, a->bin, "--segment", a->seg, "--data", a->data, "--name", "w1", "--batch-age-ms",
          "20", (char *)NULL);
    return 98;
}

static void test_io_uring_denied(void **state)
{
    (void)state;
    static struct denied_arg a;
    shm_segment *seg = wtest_segment(a.seg, sizeof a.seg, 1 << 14, TAGS);
    shmtest_tmpdir(a.data, sizeof a.data);
    snprintf(a.log, sizeof a.log, "%s/w1.log", a.data);
    shmtest_bin(a.bin, sizeof a.bin, "shmbus-writer");
    pid_t w = shmtest_fork(run_without_io_uring, &a);
    assert_true(wtest_writer_joined(seg, "w1", 10000));
    wtest_producer p;
    wtest_producer_start(&p, a.seg, TAGS, 0, 10000);
    assert_int_equal(shmtest_wait_pid(p.pid, 60000) != -1, 1);
    uint64_t first, last;
    wtest_producer_stop(&p, &first, &last);
    assert_true(wtest_wait_drained(seg, 60000));
    assert_int_equal(wtest_writer_stop(w, 30000), 0);
    assert_int_equal(
        wtest_count_in_file(a.log, "io_uring unavailable (Operation not permitted): falling back"), 1);
    assert_int_equal(wtest_count_in_file(a.log, "pwrite appends"), 1);
    expect_exactly_once(a.data, first, last);
    shm_segment_close(&seg);
}

/* A failed fdatasync: exit non-zero, nothing acknowledged after it; what
 * was acknowledged is stored; a restart stores the rest exactly once. */
static void fsync_failure(bool force_pwrite)
{
    char segname[64], data[256], log[512], log2[512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 14, TAGS);
    shmtest_tmpdir(data, sizeof data);
    snprintf(log, sizeof log, "%s/w1.log", data);
    snprintf(log2, sizeof log2, "%s/w1-again.log", data);
    const char *extra[] = {"--batch-age-ms", "5", force_pwrite ? "--force-pwrite" : NULL, NULL};
    setenv("SHMBUS_WRITER_FAULT", "fsync-eio-after:6", 1);
    pid_t w = wtest_writer_spawn(segname, data, "w1", log, extra);
    unsetenv("SHMBUS_WRITER_FAULT");
    assert_true(wtest_writer_joined(seg, "w1", 10000));
    /* records keep coming until the writer has failed: however the batches
     * fall, the sixth sync comes */
    wtest_producer p;
    wtest_producer_start(&p, segname, TAGS, 20000, 0);
    int st = shmtest_wait_pid(w, getenv("WTEST_QUICKFAIL") ? 6000 : 60000);
    if (st == -1) {
        printf("writer still running; producer put %llu records\n",
               (unsigned long long)wtest_producer_count(&p));
        wtest_producer_stop(&p, NULL, NULL);
    }
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
    assert_int_equal(wtest_count_in_file(log, "fdatasync of"), 1);
    assert_int_equal(wtest_count_in_file(log, "never retried"), 1);
    uint64_t tail = wtest_tail(seg);
    uint64_t first, last;
    wtest_producer_stop(&p, &first, &last);
    assert_true(tail < last); /* the failure stopped acknowledgments */
    if (tail > first) /* acknowledged = durable; written, unacknowledged may be there too */
        expect_stored(data, first, tail - 1, last);
    w = wtest_writer_spawn(segname, data, "w1", log2, extra);
    assert_true(wtest_wait_drained(seg, 60000));
    assert_int_equal(wtest_writer_stop(w, 30000), 0);
    expect_exactly_once(data, first, last);
    shm_segment_close(&seg);
}

static void test_fsync_failure_uring(void **state)
{
    (void)state;
    fsync_failure(false);
}

static void test_fsync_failure_pwrite(void **state)
{
    (void)state;
    fsync_failure(true);
}

/* Records that fail verification are counted and skipped; the rest stored. */
static void test_invalid_records(void **state)
{
    (void)state;
    char segname[64], data[256], log[512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 12, TAGS);
    shmtest_tmpdir(data, sizeof data);
    snprintf(log, sizeof log, "%s/w1.log", data);
    const char *extra[] = {"--batch-age-ms", "5", NULL};
    pid_t w = wtest_writer_spawn(segname, data, "w1", log, extra);
    assert_true(wtest_writer_joined(seg, "w1", 10000));
    shm_producer *p;
    assert_int_equal(shm_producer_open(seg, "bad-producer", &p), 0);
    uint64_t good_first = 0, good_last = 0;
    int bad = 0;
    for (int i = 0; i < 1100; i++) {
        uint8_t buf[SHM_TAG_VALUE_MAX];
        uint32_t len;
        if (i % 11 == 10) { /* garbage: not a TagValue */
            for (size_t k = 0; k < 60; k++)
                buf[k] = (uint8_t)wtest_rand();
            len = 60;
            bad++;
        } else {
            shm_tag_value v = {.timestamp_ns = 1767225600000000000ll + i, .tag_id = (uint32_t)i % TAGS,
                               .value = 21.5, .quality = SHM_Q_GOOD};
            len = (uint32_t)shm_tag_value_encode(&v, buf, sizeof buf);
        }
        uint64_t seq;
        assert_int_equal(shm_put(p, buf, len, &seq), 0);
        if (i % 11 != 10) {
            good_first = good_first ? good_first : seq;
            good_last = seq;
        }
    }
    shm_producer_close(&p);
    assert_true(wtest_wait_drained(seg, 30000));
    assert_int_equal(wtest_writer_stop(w, 30000), 0);
    assert_int_equal(counter_value(seg, "writer_invalid_records_total{writer=\"w1\"}"), bad);
    assert_int_equal(counter_value(seg, "writer_points_total{writer=\"w1\"}"), 1100 - bad);
    assert_true(wtest_count_in_file(log, "failed verification and was skipped") >= 1);
    /* every valid record stored once, none of the garbage */
    char dir[600];
    snprintf(dir, sizeof dir, "%s/chunks", data);
    chunk_series got = {0};
    uint64_t dropped;
    chunk_store *s = wtest_read_all(dir, TAGS, &got, &dropped);
    assert_int_equal(got.n, (size_t)(1100 - bad));
    for (size_t i = 0; i < got.n; i++) {
        assert_true(got.seq[i] >= good_first && got.seq[i] <= good_last);
        assert_true((got.seq[i] - good_first + 1) % 11 != 0); /* not a garbage slot */
    }
    chunk_series_free(&got);
    chunk_store_close(&s);
    shm_segment_close(&seg);
}

static void test_same_name_refused(void **state)
{
    (void)state;
    char segname[64], data[256], log[512], log2[512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 12, TAGS);
    shmtest_tmpdir(data, sizeof data);
    snprintf(log, sizeof log, "%s/a.log", data);
    snprintf(log2, sizeof log2, "%s/b.log", data);
    pid_t a = wtest_writer_spawn(segname, data, "same", log, NULL);
    assert_true(wtest_writer_joined(seg, "same", 10000));
    pid_t b = wtest_writer_spawn(segname, data, "same", log2, NULL);
    int st = shmtest_wait_pid(b, 10000);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
    assert_int_equal(wtest_count_in_file(log2, "is in use by another running writer"), 1);
    assert_int_equal(wtest_writer_stop(a, 10000), 0);
    shm_segment_close(&seg);
}

static void test_foreign_and_newer(void **state)
{
    (void)state;
    char segname[64], data[256], dir[600], path[700], log[512], log2[512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 12, TAGS);
    shmtest_tmpdir(data, sizeof data);
    snprintf(dir, sizeof dir, "%s/chunks", data);
    mkdir(dir, 0770);
    /* a foreign file: reported by path, left alone, the writer works */
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    FILE *f = fopen(path, "w");
    fputs("operator notes\n", f);
    fclose(f);
    snprintf(log, sizeof log, "%s/a.log", data);
    pid_t w = wtest_writer_spawn(segname, data, "w1", log, NULL);
    assert_true(wtest_writer_joined(seg, "w1", 10000));
    assert_int_equal(wtest_writer_stop(w, 10000), 0);
    assert_int_equal(wtest_count_in_file(log, "notes.txt: foreign file"), 1);
    assert_int_equal(access(path, F_OK), 0);
    chunk_store *s;
    assert_int_equal(chunk_store_open(dir, 0, NULL, NULL, &s), 0);
    bool named = false;
    for (size_t i = 0; i < s->nproblems; i++)
        named = named || strstr(s->problems[i], path) != NULL;
    assert_true(named);
    chunk_store_close(&s);

    /* its own unsealed chunk written by a newer format: refused by path */
    chunk_file_header h = {.version = CHUNK_FORMAT_VERSION + 1, .chunk_no = 9};
    snprintf(h.writer, sizeof h.writer, "w2");
    uint8_t hdr[CHUNK_FILE_HEADER_SIZE + 64];
    memset(hdr, 0, sizeof hdr);
    chunk_file_header_write(&h, hdr);
    snprintf(path, sizeof path, "%s/w2.0000000009.open", dir);
    int fd = open(path, O_WRONLY | O_CREAT, 0640);
    assert_int_equal(write(fd, hdr, sizeof hdr), (ssize_t)sizeof hdr);
    close(fd);
    snprintf(log2, sizeof log2, "%s/b.log", data);
    w = wtest_writer_spawn(segname, data, "w2", log2, NULL);
    int st = shmtest_wait_pid(w, 10000);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0);
    assert_int_equal(wtest_count_in_file(log2, "w2.0000000009.open"), 1);
    assert_int_equal(wtest_count_in_file(log2, "newer than this build reads"), 1);
    assert_int_equal(access(path, F_OK), 0); /* left alone */
    shm_segment_close(&seg);
}

/* The writer as an unprivileged user on a directory it may not write. */
static void test_permission_denied(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        printf("not root: cannot switch to an unprivileged user; skipped\n");
        skip();
    }
    char segname[64], data[256], log[512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 12, TAGS);
    shmtest_tmpdir(data, sizeof data);
    chmod(data, 0755);
    char locked[600];
    snprintf(locked, sizeof locked, "%s/locked", data);
    assert_int_equal(mkdir(locked, 0700), 0);
    snprintf(log, sizeof log, "%s/w.log", data);
    char bin[512];
    shmtest_bin(bin, sizeof bin, "shmbus-writer");
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0666);
        dup2(fd, 2);
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(99);
        execl(bin, bin, "--segment", segname, "--data", locked, "--name", "w1", (char *)NULL);
        _exit(98);
    }
    int st;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_not_equal(WEXITSTATUS(st), 0);
    assert_int_not_equal(WEXITSTATUS(st), 99);
    char expect[700];
    snprintf(expect, sizeof expect, "%s/chunks: Permission denied", locked);
    if (wtest_count_in_file(log, expect) != 1) {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "cat %s", log);
        if (system(cmd) != 0)
            fail();
        fail_msg("expected '%s' in the log", expect);
    }

    /* and readers (shmbus-query) name the path too */
    pid = fork();
    if (pid == 0) {
        if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
            _exit(99);
        chunk_store *s = NULL;
        int rc = chunk_store_open(locked, 0, NULL, NULL, &s);
        _exit(rc == CHUNK_EPERM && strstr(chunk_last_error(), locked) ? 0 : 1);
    }
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    shm_segment_close(&seg);
}

static int count_files(const char *dir, int kind)
{
    chunk_store *s;
    if (chunk_store_open(dir, 0, NULL, NULL, &s) != 0)
        return -1;
    int n = 0;
    for (size_t i = 0; i < s->nfiles; i++)
        n += s->files[i].kind == kind;
    chunk_store_close(&s);
    return n;
}

static uint64_t dir_bytes(const char *dir)
{
    chunk_store *s;
    if (chunk_store_open(dir, 0, NULL, NULL, &s) != 0)
        return 0;
    uint64_t b = 0;
    for (size_t i = 0; i < s->nfiles; i++)
        b += s->files[i].scan.file_size;
    chunk_store_close(&s);
    return b;
}

static void test_retention_bytes(void **state)
{
    (void)state;
    char segname[64], data[256], dir[600], log[512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 14, TAGS);
    shmtest_tmpdir(data, sizeof data);
    snprintf(dir, sizeof dir, "%s/chunks", data);
    snprintf(log, sizeof log, "%s/w.log", data);
    const char *extra[] = {"--batch-age-ms", "5", "--chunk-bytes", "16KiB", "--retention-bytes",
                           "64KiB", NULL};
    pid_t w = wtest_writer_spawn(segname, data, "w1", log, extra);
    assert_true(wtest_writer_joined(seg, "w1", 10000));
    wtest_producer p;
    wtest_producer_start(&p, segname, TAGS, 50000, 200000); /* sealed: well over the budget */
    assert_int_equal(shmtest_wait_pid(p.pid, 60000) != -1, 1);
    wtest_producer_stop(&p, NULL, NULL);
    assert_true(wtest_wait_drained(seg, 60000));
    assert_int_equal(wtest_writer_stop(w, 30000), 0);
    assert_true(wtest_count_in_file(log, "retention: removed") >= 1);
    assert_true(wtest_count_in_file(log, "over the byte budget") >= 1);
    uint64_t bytes = dir_bytes(dir);
    printf("after retention: %llu bytes in %d sealed chunks\n", (unsigned long long)bytes,
           count_files(dir, CHUNK_NAME_SEALED));
    assert_true(bytes <= 64 * 1024 + 64 * 1024); /* the budget, plus the chunk sealed last */
    /* oldest first: the chunk numbers left are the newest ones */
    chunk_store *s;
    assert_int_equal(chunk_store_open(dir, 0, NULL, NULL, &s), 0);
    assert_true(s->nfiles >= 1);
    assert_true(s->files[0].no > 1);
    for (size_t i = 1; i < s->nfiles; i++)
        assert_int_equal(s->files[i].no, s->files[i - 1].no + 1);
    chunk_store_close(&s);
    shm_segment_close(&seg);
}

static void test_retention_age(void **state)
{
    (void)state;
    char segname[64], data[256], dir[600], log[512];
    shm_segment *seg = wtest_segment(segname, sizeof segname, 1 << 12, TAGS);
    shmtest_tmpdir(data, sizeof data);
    snprintf(dir, sizeof dir, "%s/chunks", data);
    mkdir(dir, 0770);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    /* two sealed chunks of 2020 and one of now, from another writer */
    uint64_t seq = 1;
    int64_t t = 1577836800000000000ll; /* 2020-01-01 */
    shm_tag_value *all = NULL;
    size_t nall = 0;
    chunk_seal_report rep;
    for (uint32_t no = 1; no <= 3; no++) {
        if (no == 3)
            t = wtest_e2e_now_ns() - 60ll * 1000000000;
        assert_int_equal(wtest_write_open_chunk(dfd, "old", no, 2, 3, TAGS, &seq, &t, &all, &nall), 0);
        char name[64];
        chunk_name_format(name, sizeof name, "old", no, CHUNK_NAME_OPEN);
        assert_int_equal(chunk_seal(dfd, name, 0, &rep), 0);
    }
    free(all);
    close(dfd);
    snprintf(log, sizeof log, "%s/w.log", data);
    const char *extra[] = {"--retention-age-s", "86400", NULL};
    pid_t w = wtest_writer_spawn(segname, data, "w1", log, extra);
    assert_true(wtest_writer_joined(seg, "w1", 10000));
    int64_t deadline = shmtest_now_ms() + 20000;
    while (count_files(dir, CHUNK_NAME_SEALED) > 1 && shmtest_now_ms() < deadline) {
        struct timespec ts = {0, 50000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(wtest_writer_stop(w, 10000), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/old.0000000001.chunk", dir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/old.0000000002.chunk", dir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/old.0000000003.chunk", dir);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(wtest_count_in_file(log, "older than the age limit"), 2);
    shm_segment_close(&seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_uring),
        cmocka_unit_test(test_basic_pwrite),
        cmocka_unit_test(test_io_uring_denied),
        cmocka_unit_test(test_fsync_failure_uring),
        cmocka_unit_test(test_fsync_failure_pwrite),
        cmocka_unit_test(test_invalid_records),
        cmocka_unit_test(test_same_name_refused),
        cmocka_unit_test(test_foreign_and_newer),
        cmocka_unit_test(test_permission_denied),
        cmocka_unit_test(test_retention_bytes),
        cmocka_unit_test(test_retention_age),
    };
    if (getenv("WTEST_FILTER")) /* e.g. WTEST_FILTER='*fsync*' to repeat one test */
        cmocka_set_test_filter(getenv("WTEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}

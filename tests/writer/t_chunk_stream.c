/*
 * t_chunk_stream.c — sealing and scanning through bounded windows: a
 * rewrite that goes through an intermediate file (more points than the
 * seal's memory holds) stores exactly the points a one-pass rewrite stores,
 * about as compactly, and leaves no temporary file; a full disk during such
 * a seal fails cleanly and the seal succeeds once space returns; damage in a
 * block that straddles the read window is found, and intact blocks after it
 * are still found by readers and counted by recovery.
 */
#include "shmtest.h"
#include "wtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define TAGS 400u

static int cmp_seq(const void *a, const void *b)
{
    const shm_tag_value *x = a, *y = b;
    return x->sequence < y->sequence ? -1 : x->sequence > y->sequence;
}

/* Writes w.0000000001.open in dir: `blocks` blocks of `polls` polls of
 * TAGS tags (small blocks: a few points per tag each). */
static shm_tag_value *write_chunk(const char *dir, size_t blocks, size_t polls, size_t *n)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    uint64_t seq = 1000;
    int64_t t = 1767225600000000000ll;
    shm_tag_value *all = NULL;
    *n = 0;
    assert_int_equal(wtest_write_open_chunk(dfd, "w", 1, blocks, polls, TAGS, &seq, &t, &all, n), 0);
    close(dfd);
    qsort(all, *n, sizeof *all, cmp_seq);
    return all;
}

static int seal_with(const char *dir, size_t memory, chunk_seal_report *rep)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    chunk_seal_ctx *ctx = NULL;
    assert_int_equal(chunk_seal_ctx_new(&ctx, memory), 0);
    int rc = chunk_seal_with(ctx, dfd, "w.0000000001.open", 0, rep);
    chunk_seal_ctx_free(&ctx);
    close(dfd);
    return rc;
}

/* Every point of `all` read back from dir exactly once, fields equal. */
static void expect_points(const char *dir, const shm_tag_value *all, size_t n)
{
    chunk_series got = {0};
    uint64_t dropped;
    chunk_store *s = wtest_read_all(dir, TAGS, &got, &dropped);
    assert_non_null(s);
    assert_int_equal(s->nproblems, 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(got.n, n);
    uint8_t *seen = calloc(n, 1);
    for (size_t i = 0; i < got.n; i++) {
        long k = wtest_find_seq(all, n, got.seq[i]);
        assert_true(k >= 0);
        assert_int_equal(seen[k]++, 0);
        assert_int_equal(all[k].timestamp_ns, got.ts[i]);
        assert_memory_equal(&all[k].value, &got.value[i], sizeof got.value[i]);
        assert_int_equal(all[k].raw, got.raw[i]);
        assert_int_equal(all[k].quality, got.quality[i]);
        assert_int_equal(all[k].exception_code, got.exception[i]);
    }
    free(seen);
    chunk_series_free(&got);
    chunk_store_close(&s);
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strlen(e->d_name) > strlen(suffix) &&
            strcmp(e->d_name + strlen(e->d_name) - strlen(suffix), suffix) == 0)
            n++;
    if (d)
        closedir(d);
    return n;
}

static void expect_verified(const char *dir)
{
    chunk_store *s;
    assert_int_equal(chunk_store_open(dir, CHUNK_SCAN_FULL, NULL, NULL, &s), 0);
    assert_int_equal(s->nfiles, 1);
    assert_int_equal(s->files[0].kind, CHUNK_NAME_SEALED);
    assert_true(s->files[0].scan.sealed);
    assert_int_equal(s->files[0].scan.n_damage, 0);
    assert_int_equal(s->nproblems, 0);
    chunk_store_close(&s);
}

static void test_merge_equals_one_pass(void **state)
{
    (void)state;
    char one[256], merged[256];
    shmtest_tmpdir(one, sizeof one);
    shmtest_tmpdir(merged, sizeof merged);
    size_t n, n2;
    /* 400 tags, 120 blocks of 3 polls: 144,000 points, 3 per tag per block */
    wtest_seed(42);
    shm_tag_value *all = write_chunk(one, 120, 3, &n);
    wtest_seed(42);
    shm_tag_value *all2 = write_chunk(merged, 120, 3, &n2);
    assert_int_equal(n, n2);
    assert_memory_equal(all, all2, n * sizeof *all);

    chunk_seal_report r1, r2;
    assert_int_equal(seal_with(one, 64u << 20, &r1), 0);
    assert_int_equal(seal_with(merged, 1u << 20, &r2), 0); /* windows of ~12,000 points */
    assert_true(r1.compacted && r2.compacted);
    assert_int_equal(r1.merged, 0);
    assert_int_equal(r2.merged, 1);
    assert_int_equal(r1.points, n);
    assert_int_equal(r2.points, n);
    printf("one pass: %llu -> %llu bytes, %u blocks; through a temporary file: %llu bytes, %u "
           "blocks\n",
           (unsigned long long)r1.bytes_before, (unsigned long long)r1.bytes_after,
           r1.blocks_after, (unsigned long long)r2.bytes_after, r2.blocks_after);
    /* the same regrouping: one block per group of tags, as compact */
    assert_true((double)r2.bytes_after <= (double)r1.bytes_after * 1.02);
    assert_true(r2.blocks_after <= r1.blocks_after + r1.blocks_after / 50);
    expect_points(one, all, n);
    expect_points(merged, all, n);
    expect_verified(merged);
    assert_int_equal(count_files(merged, ".tmp"), 0);
    assert_int_equal(count_files(merged, ".open"), 0);
    free(all);
    free(all2);
}

/* Tags whose points pass the 8192-point window, and a budget smaller than
 * one tag's window set: sets of one tag, blocks cut at the window. */
static void test_merge_large_tags(void **state)
{
    (void)state;
    char dir[256];
    shmtest_tmpdir(dir, sizeof dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    uint64_t seq = 1;
    int64_t t = 1767225600000000000ll;
    shm_tag_value *all = NULL;
    size_t n = 0;
    /* 8 tags, 400 blocks of 60 polls: 24,000 points per tag */
    assert_int_equal(wtest_write_open_chunk(dfd, "w", 1, 400, 60, 8, &seq, &t, &all, &n), 0);
    close(dfd);
    qsort(all, n, sizeof *all, cmp_seq);
    chunk_seal_report rep;
    assert_int_equal(seal_with(dir, 1u << 20, &rep), 0);
    assert_int_equal(rep.merged, 1);
    assert_int_equal(rep.points, n);
    printf("8 tags x 24,000 points: %u blocks, %.2f bytes/point\n", rep.blocks_after,
           (double)rep.bytes_after / (double)n);
    /* at most 8192 points of a tag in a block: 3 blocks a tag at least */
    char path[400];
    snprintf(path, sizeof path, "%s/w.0000000001.chunk", dir);
    int fd = open(path, O_RDONLY);
    chunk_scan sc;
    assert_int_equal(chunk_scan_fd(fd, path, 0, &sc), 0);
    close(fd);
    assert_int_equal(sc.index.n % 8, 0);
    assert_true(sc.index.n >= 8 * 3);
    for (size_t i = 0; i < sc.index.n; i++)
        assert_true(sc.index.e[i].points <= 8192);
    chunk_scan_free(&sc);
    chunk_series got = {0};
    uint64_t dropped;
    chunk_store *s = wtest_read_all(dir, 8, &got, &dropped);
    assert_int_equal(got.n, n);
    assert_int_equal(dropped, 0);
    chunk_series_free(&got);
    chunk_store_close(&s);
    expect_verified(dir);
    free(all);
}

static char mnt[600];

static void unmount(void)
{
    if (mnt[0])
        umount2(mnt, MNT_DETACH);
}

/* No room for the intermediate or the output: the seal fails with
 * CHUNK_ENOSPC, leaves the chunk as it was and no temporary file; with room
 * again it succeeds. */
static void test_merge_disk_full(void **state)
{
    (void)state;
    char base[256];
    shmtest_tmpdir(base, sizeof base);
    snprintf(mnt, sizeof mnt, "%s/mnt", base);
    mkdir(mnt, 0755);
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m") != 0) {
        printf("mount -t tmpfs: %s; skipped\n", strerror(errno));
        mnt[0] = '\0';
        skip();
    }
    atexit(unmount);
    size_t n;
    shm_tag_value *all = write_chunk(mnt, 120, 3, &n);
    struct stat before;
    char path[700], filler[700];
    snprintf(path, sizeof path, "%s/w.0000000001.open", mnt);
    assert_int_equal(stat(path, &before), 0);
    /* fill the file system, then leave about 40 KiB free */
    snprintf(filler, sizeof filler, "%s/filler", mnt);
    int fd = open(filler, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    char block[4096];
    memset(block, 1, sizeof block);
    off_t size = 0;
    while (write(fd, block, sizeof block) == (ssize_t)sizeof block)
        size += (off_t)sizeof block;
    assert_int_equal(ftruncate(fd, size > 40960 ? size - 40960 : 0), 0);
    close(fd);

    chunk_seal_report rep;
    assert_int_equal(seal_with(mnt, 1u << 20, &rep), CHUNK_ENOSPC);
    printf("full: %s\n", chunk_last_error());
    struct stat after;
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    assert_int_equal(count_files(mnt, ".tmp"), 0);
    assert_int_equal(count_files(mnt, ".chunk"), 0);

    unlink(filler);
    assert_int_equal(seal_with(mnt, 1u << 20, &rep), 0);
    assert_int_equal(rep.merged, 1);
    expect_points(mnt, all, n);
    assert_int_equal(count_files(mnt, ".tmp"), 0);
    free(all);
}

/* A chunk several read windows long with one byte flipped in a block that
 * straddles the first window's end. */
static void test_damage_across_window(void **state)
{
    (void)state;
    char dir[256], path[400];
    shmtest_tmpdir(dir, sizeof dir);
    size_t n;
    shm_tag_value *all = write_chunk(dir, 200, 3, &n);
    snprintf(path, sizeof path, "%s/w.0000000001.open", dir);
    wtest_block *blocks;
    size_t nb = wtest_block_map(path, &blocks);
    assert_true(nb == 200);
    assert_true(blocks[nb - 1].offset > 3 * (256u << 10)); /* several windows */
    size_t hit = 0;
    while (hit < nb && blocks[hit].offset + blocks[hit].len <= (256u << 10))
        hit++;
    assert_true(hit < nb && blocks[hit].offset < (256u << 10)); /* straddles */
    int fd = open(path, O_RDWR);
    uint8_t byte;
    off_t at = (off_t)(256u << 10) + 10;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0x5a;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);

    /* readers: the damaged block reported at its offset, every other found */
    chunk_scan s;
    assert_int_equal(chunk_scan_fd(fd, path, CHUNK_SCAN_RESYNC | CHUNK_SCAN_FULL, &s), 0);
    assert_int_equal(s.n_damage, 1);
    assert_int_equal(s.damage[0].offset, blocks[hit].offset);
    assert_int_equal(s.n_blocks, nb - 1);
    assert_int_equal(s.good_end, blocks[hit].offset);
    chunk_scan_free(&s);
    /* recovery: the prefix kept, the blocks after it counted and copied aside */
    close(fd);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    chunk_recover_report rep;
    assert_int_equal(chunk_recover(dfd, "w.0000000001.open", &rep), 0);
    assert_int_equal(rep.truncated_at, blocks[hit].offset);
    assert_int_equal(rep.blocks_kept, hit);
    assert_int_equal(rep.blocks_dropped, nb - hit - 1);
    assert_string_equal(rep.damaged_copy, "w.0000000001.damaged");
    close(dfd);
    wtest_block_map_free(blocks, nb);
    free(all);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_equals_one_pass),
        cmocka_unit_test(test_merge_large_tags),
        cmocka_unit_test(test_merge_disk_full),
        cmocka_unit_test(test_damage_across_window),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

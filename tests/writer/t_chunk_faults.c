/*
 * t_chunk_faults.c — fault injection on chunk files: at >= 1,200 random
 * offsets a byte is flipped or the file is cut, in three kinds of chunk
 * (unsealed, sealed by rewriting, sealed in place). After each:
 *   - readers (chunk_store, what shmbus-query uses) never crash (run under
 *     ASan), return only points that are exactly what was written, never
 *     twice, and return every point of every block the damage did not touch;
 *   - whatever is missing is reported (a problem naming file and offset);
 *   - a full check (shmbus-query --verify) detects every flipped byte;
 *   - recovery of an unsealed chunk keeps every block before the damage,
 *     reports what it dropped, leaves a file that scans clean, and (through
 *     the copy it keeps) readers still find every intact block.
 */
#include "shmtest.h"
#include "wtest.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define TAGS 12u

enum variant { V_OPEN = 0, V_SEALED_REWRITE = 1, V_SEALED_IN_PLACE = 2 };

struct pristine {
    char dir[256];
    char path[512];
    char name[64];
    shm_tag_value *pts; /* sorted by sequence */
    size_t npts;
    wtest_block *blocks;
    size_t nblocks;
    uint64_t size;
};

static int cmp_seq(const void *a, const void *b)
{
    const shm_tag_value *x = a, *y = b;
    return x->sequence < y->sequence ? -1 : x->sequence > y->sequence;
}

static void make_pristine(struct pristine *p, int variant)
{
    memset(p, 0, sizeof *p);
    shmtest_tmpdir(p->dir, sizeof p->dir);
    int dfd = open(p->dir, O_RDONLY | O_DIRECTORY);
    uint64_t seq = 1000;
    int64_t t = 1767225600000000000ll;
    assert_int_equal(wtest_write_open_chunk(dfd, "w1", 7, 24, 3, TAGS, &seq, &t, &p->pts, &p->npts), 0);
    snprintf(p->name, sizeof p->name, "w1.0000000007.open");
    if (variant != V_OPEN) {
        chunk_seal_report rep;
        assert_int_equal(chunk_seal(dfd, p->name,
                                    variant == V_SEALED_REWRITE ? CHUNK_SEAL_COMPACT
                                                                : CHUNK_SEAL_NO_COMPACT,
                                    &rep),
                         0);
        assert_int_equal(rep.compacted, variant == V_SEALED_REWRITE);
        snprintf(p->name, sizeof p->name, "w1.0000000007.chunk");
    }
    close(dfd);
    snprintf(p->path, sizeof p->path, "%s/%s", p->dir, p->name);
    qsort(p->pts, p->npts, sizeof *p->pts, cmp_seq);
    p->nblocks = wtest_block_map(p->path, &p->blocks);
    struct stat st;
    stat(p->path, &st);
    p->size = (uint64_t)st.st_size;
    assert_true(p->nblocks >= 1);
}

static void free_pristine(struct pristine *p)
{
    free(p->pts);
    wtest_block_map_free(p->blocks, p->nblocks);
}

static void clear_dir(const char *dir)
{
    static const char *const exts[] = {"open", "chunk", "damaged", "tmp"};
    for (size_t i = 0; i < 4; i++) {
        char path[600];
        snprintf(path, sizeof path, "%s/w1.0000000007.%s", dir, exts[i]);
        unlink(path);
    }
}

/* Checks what readers return against what was written; returns how many
 * written points are missing. */
static size_t check_read(const struct pristine *p, const char *dir, const bool *intact,
                         size_t *problems)
{
    chunk_series got = {0};
    uint64_t dropped;
    chunk_store *s = wtest_read_all(dir, TAGS, &got, &dropped);
    assert_non_null(s);
    *problems = s->nproblems;
    uint8_t *seen = calloc(p->npts, 1);
    for (size_t i = 0; i < got.n; i++) {
        long k = wtest_find_seq(p->pts, p->npts, got.seq[i]);
        if (k < 0)
            fail_msg("read a sequence number never written: %llu", (unsigned long long)got.seq[i]);
        const shm_tag_value *v = &p->pts[k];
        assert_int_equal(got.ts[i], v->timestamp_ns);
        assert_memory_equal(&got.value[i], &v->value, sizeof v->value);
        assert_int_equal(got.quality[i], v->quality);
        assert_int_equal(got.exception[i], v->exception_code);
        assert_int_equal(got.raw[i], v->raw);
        if (seen[k])
            fail_msg("sequence %llu returned twice", (unsigned long long)got.seq[i]);
        seen[k] = 1;
    }
    for (size_t b = 0; b < p->nblocks; b++) {
        if (!intact[b])
            continue;
        for (size_t j = 0; j < p->blocks[b].nseqs; j++) {
            long k = wtest_find_seq(p->pts, p->npts, p->blocks[b].seqs[j]);
            if (k < 0 || !seen[k])
                fail_msg("intact block at offset %llu lost sequence %llu",
                         (unsigned long long)p->blocks[b].offset,
                         (unsigned long long)p->blocks[b].seqs[j]);
        }
    }
    size_t missing = 0;
    for (size_t k = 0; k < p->npts; k++)
        missing += !seen[k];
    free(seen);
    chunk_series_free(&got);
    chunk_store_close(&s);
    return missing;
}

struct totals {
    size_t trials, flips, cuts, detected, recovered, moved_aside, points_missing;
};

/* forced_at: UINT64_MAX for a random place and kind, else a flip there. */
static void one_trial(const struct pristine *p, const char *work, int variant, struct totals *tot,
                      uint64_t forced_at)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", work, p->name);
    clear_dir(work);
    wtest_copy(p->path, path);
    bool flip = forced_at != UINT64_MAX || wtest_rand() % 3 != 0;
    uint64_t at = forced_at != UINT64_MAX ? forced_at : wtest_rand() % p->size;
    bool *intact = calloc(p->nblocks, sizeof *intact);
    if (flip) {
        int fd = open(path, O_RDWR);
        uint8_t byte;
        assert_int_equal(pread(fd, &byte, 1, (off_t)at), 1);
        byte ^= (uint8_t)(1 + wtest_rand() % 255);
        assert_int_equal(pwrite(fd, &byte, 1, (off_t)at), 1);
        close(fd);
        for (size_t b = 0; b < p->nblocks; b++)
            intact[b] = at < p->blocks[b].offset || at >= p->blocks[b].offset + p->blocks[b].len;
        tot->flips++;
    } else {
        assert_int_equal(truncate(path, (off_t)at), 0);
        for (size_t b = 0; b < p->nblocks; b++)
            intact[b] = p->blocks[b].offset + p->blocks[b].len <= at;
        tot->cuts++;
    }
    tot->trials++;

    /* readers */
    size_t problems;
    size_t missing = check_read(p, work, intact, &problems);
    tot->points_missing += missing;
    if (missing)
        assert_true(problems > 0); /* nothing disappears silently */

    /* a full check sees every flipped byte */
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    chunk_scan s;
    int rc = chunk_scan_fd(fd, path, CHUNK_SCAN_FULL | CHUNK_SCAN_RESYNC, &s);
    bool boundary_cut = !flip && (at == CHUNK_FILE_HEADER_SIZE || at == p->size);
    for (size_t b = 0; b < p->nblocks; b++)
        boundary_cut = boundary_cut || (!flip && at == p->blocks[b].offset + p->blocks[b].len);
    bool detected = rc < 0 || s.n_damage > 0 || (variant != V_OPEN && !s.sealed);
    if (flip || !(variant == V_OPEN && boundary_cut)) {
        if (!detected)
            fail_msg("damage at offset %llu (%s) of a %s chunk went unnoticed",
                     (unsigned long long)at, flip ? "flip" : "cut",
                     variant == V_OPEN ? "unsealed" : "sealed");
        tot->detected++;
    }
    if (rc == 0)
        chunk_scan_free(&s);
    close(fd);

    /* recovery of an unsealed chunk */
    if (variant == V_OPEN) {
        int dfd = open(work, O_RDONLY | O_DIRECTORY);
        chunk_recover_report rep;
        rc = chunk_recover(dfd, p->name, &rep);
        if (at < CHUNK_FILE_HEADER_SIZE && !flip) {
            assert_int_equal(rc, 0);
            assert_true(rep.removed_empty);
        } else if (rc == 0 && !rep.moved_aside && !rep.removed_empty) {
            /* the prefix up to the first damaged block is kept, the rest reported */
            size_t first_bad = p->nblocks;
            for (size_t b = 0; b < p->nblocks && first_bad == p->nblocks; b++)
                if (!intact[b])
                    first_bad = b;
            assert_true(rep.blocks_kept >= first_bad);
            if (rep.truncated_at != UINT64_MAX)
                assert_true(rep.bytes_dropped > 0);
            fd = open(path, O_RDONLY);
            assert_int_equal(chunk_scan_fd(fd, path, 0, &s), 0);
            assert_int_equal(s.n_damage, 0);
            assert_int_equal(s.good_end, s.file_size);
            assert_true(s.n_blocks >= first_bad);
            chunk_scan_free(&s);
            close(fd);
            tot->recovered++;
        } else {
            assert_int_equal(rc, 0);
            tot->moved_aside += rep.moved_aside;
        }
        close(dfd);
        /* and readers still find every intact block (the truncated chunk
         * plus the copy recovery kept) */
        size_t problems2;
        check_read(p, work, intact, &problems2);
    }
    free(intact);
}

static void run_variant(int variant, size_t trials)
{
    struct pristine p;
    make_pristine(&p, variant);
    char work[256];
    shmtest_tmpdir(work, sizeof work);
    struct totals tot = {0};
    wtest_seed(0xC0FFEE + (uint64_t)variant);
    for (size_t i = 0; i < trials; i++)
        one_trial(&p, work, variant, &tot, UINT64_MAX);
    /* every byte of the file header, and of the first block's header */
    for (uint64_t at = 0; at < CHUNK_FILE_HEADER_SIZE + CHUNK_BLOCK_HEADER_SIZE; at++)
        one_trial(&p, work, variant, &tot, at);
    printf("%s: %zu blocks, %zu bytes; %zu trials (%zu flips, %zu cuts), %zu detected by "
           "--verify, %zu recovered by truncation, %zu headers moved aside, %zu points "
           "reported lost in all\n",
           variant == V_OPEN ? "unsealed" : variant == V_SEALED_REWRITE ? "sealed (rewritten)"
                                                                         : "sealed (in place)",
           p.nblocks, (size_t)p.size, tot.trials, tot.flips, tot.cuts, tot.detected,
           tot.recovered, tot.moved_aside, tot.points_missing);
    free_pristine(&p);
}

static void test_unsealed(void **state)
{
    (void)state;
    run_variant(V_OPEN, 400);
}

static void test_sealed_rewritten(void **state)
{
    (void)state;
    run_variant(V_SEALED_REWRITE, 400);
}

static void test_sealed_in_place(void **state)
{
    (void)state;
    run_variant(V_SEALED_IN_PLACE, 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unsealed),
        cmocka_unit_test(test_sealed_rewritten),
        cmocka_unit_test(test_sealed_in_place),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * t_stats_snapshot.c — the snapshot file: a round trip restores the same
 * statistics and history; every truncation, every flipped byte, foreign
 * files and crafted bodies with a valid checksum are rejected with a reason
 * and change nothing; a failed write leaves the previous snapshot intact.
 */
#include "crc32c.h"
#include "snapshot.h"
#include "statref.h"
#include "tagstore.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h> /* after the three headers it needs */

#include <errno.h>
#include <math.h>
#include <shmbus/shm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shmtest.h"

#define SEC 1000000000LL

static store_params params(uint32_t window)
{
    return (store_params){.window = window,
                          .history_ns = 1000000 * SEC,
                          .history_capacity = 128,
                          .shard_n = 1,
                          .max_tags = 64};
}

static snapshot_identity ident(void)
{
    snapshot_identity id = {.shard_k = 0,
                            .shard_n = 1,
                            .segment_created_ns = 123456789,
                            .segment_initial_seq = 1u << 20,
                            .next_seq = (1u << 20) + 5000};
    snprintf(id.segment, sizeof id.segment, "plant");
    return id;
}

static void fill(tagstore *s)
{
    test_rng r;
    rng_seed(&r, 17);
    tag_state *t;
    for (uint32_t id = 0; id < 5; id++) {
        assert_int_equal(tagstore_ensure(s, id * 7, &t), 0);
        char name[32];
        snprintf(name, sizeof name, "tag%u", id);
        if (id != 3) /* one tag never named */
            tagstore_set_meta(s, t, name, id == 1 ? SHM_DT_BOOL : SHM_DT_FLOAT64);
    }
    for (int i = 0; i < 1000; i++) {
        for (uint32_t id = 0; id < 5; id++) {
            double v = id == 1 ? (double)(i / 13 % 2) : 1e9 + rng_normal(&r);
            int q = i % 97 == 0 ? SHM_Q_STALE : SHM_Q_GOOD;
            tagstore_apply(s, id * 7, (int64_t)i * SEC + id, i % 101 == 0 ? NAN : v, q);
        }
    }
}

static void assert_same_tag(tag_state *a, tag_state *b)
{
    assert_int_equal(a->id, b->id);
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->has_meta, b->has_meta);
    assert_int_equal(a->mode, b->mode);
    rolling_stats sa, sb;
    rolling_get_stats(&a->roll, &sa);
    rolling_get_stats(&b->roll, &sb);
    assert_int_equal(sa.count, sb.count);
    assert_int_equal(sa.added, sb.added);
    assert_int_equal(sa.changes, sb.changes);
    assert_int_equal(sa.excluded_nonfinite, sb.excluded_nonfinite);
    assert_int_equal(sa.excluded_quality, sb.excluded_quality);
    assert_true(sa.min == sb.min && sa.max == sb.max && sa.first == sb.first && sa.last == sb.last);
    assert_true(rel_err(sa.mean, sb.mean) < 1e-15);
    assert_true(rel_err(sa.stddev, sb.stddev) < 1e-9);
    assert_int_equal(a->hist.count, b->hist.count);
    for (uint32_t i = 0; i < a->hist.count; i++) {
        assert_int_equal(timebuf_at(&a->hist, i).t_ns, timebuf_at(&b->hist, i).t_ns);
        assert_true(timebuf_at(&a->hist, i).v == timebuf_at(&b->hist, i).v);
    }
    assert_int_equal(a->hist.compacted_until_ns, b->hist.compacted_until_ns);
    assert_int_equal(a->hist.compactions, b->hist.compactions);
    assert_int_equal(a->hist.downsampled_away, b->hist.downsampled_away);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(*len + 1);
    assert_int_equal(fread(buf, 1, *len, f), *len);
    fclose(f);
    return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Reads path into a fresh store; returns the code, checks a rejected file
 * left the store empty. */
static int try_read(const char *path, const snapshot_identity *expect, char *err, size_t len)
{
    store_params p = params(100);
    tagstore s;
    assert_int_equal(tagstore_init(&s, &p), 0);
    snapshot_identity found;
    err[0] = '\0';
    int rc = snapshot_read(path, &s, expect, &found, err, len);
    if (rc != 0)
        assert_true(err[0] != '\0');
    tagstore_free(&s);
    return rc;
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(stats_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(stats_crc32c(stats_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
    assert_int_equal(stats_crc32c(0, "", 0), 0);
}

static void test_round_trip(void **state)
{
    (void)state;
    char dir[256], path[512], err[512];
    shmtest_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/plant.stats.snap", dir);
    store_params p = params(100);
    tagstore a, b;
    assert_int_equal(tagstore_init(&a, &p), 0);
    fill(&a);
    snapshot_identity id = ident();
    uint64_t bytes = 0;
    assert_int_equal(snapshot_write(path, &a, &id, &bytes, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, bytes);
    assert_int_not_equal(access(path, F_OK), -1);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1); /* renamed away */

    assert_int_equal(tagstore_init(&b, &p), 0);
    snapshot_identity found;
    assert_int_equal(snapshot_read(path, &b, &id, &found, err, sizeof err), 0);
    assert_int_equal(found.next_seq, id.next_seq);
    assert_int_equal(found.segment_created_ns, id.segment_created_ns);
    assert_int_equal(found.segment_initial_seq, id.segment_initial_seq);
    assert_int_equal(found.tags, 5);
    assert_int_equal(b.n_tags, a.n_tags);
    for (uint32_t i = 0; i < a.n_tags; i++)
        assert_same_tag(tagstore_at(&a, i), tagstore_at(&b, i));
    assert_true(a.by_id[7]->hist.compactions > 0); /* the history was downsampled */
    tagstore_free(&b);

    /* A smaller window on restore keeps the newest values. */
    store_params small = params(10);
    assert_int_equal(tagstore_init(&b, &small), 0);
    assert_int_equal(snapshot_read(path, &b, &id, &found, err, sizeof err), 0);
    rolling_stats sa, sb;
    rolling_get_stats(&a.by_id[0]->roll, &sa);
    rolling_get_stats(&b.by_id[0]->roll, &sb);
    assert_int_equal(sb.count, 10);
    assert_true(sa.last == sb.last);
    assert_int_equal(sa.added, sb.added);
    tagstore_free(&b);

    /* An empty store round-trips too. */
    tagstore e;
    assert_int_equal(tagstore_init(&e, &p), 0);
    assert_int_equal(snapshot_write(path, &e, &id, &bytes, err, sizeof err), 0);
    assert_int_equal(bytes, SNAPSHOT_HEADER_LEN);
    assert_int_equal(try_read(path, &id, err, sizeof err), 0);
    tagstore_free(&e);
    tagstore_free(&a);
}

static void test_rejects_damage(void **state)
{
    (void)state;
    char dir[256], path[512], bad[512], err[512];
    shmtest_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/plant.stats.snap", dir);
    snprintf(bad, sizeof bad, "%s/damaged.snap", dir);
    store_params p = params(20);
    tagstore a;
    assert_int_equal(tagstore_init(&a, &p), 0);
    fill(&a);
    snapshot_identity id = ident();
    assert_int_equal(snapshot_write(path, &a, &id, NULL, err, sizeof err), 0);
    tagstore_free(&a);
    size_t len;
    char *good = read_file(path, &len);

    assert_int_equal(try_read(bad, &id, err, sizeof err), -ENOENT);
    /* Every truncation. */
    for (size_t cut = 0; cut < len; cut += cut < 256 ? 1 : 97) {
        write_file(bad, good, cut);
        int rc = try_read(bad, &id, err, sizeof err);
        if (rc != -EBADMSG)
            fail_msg("truncated to %zu of %zu: rc %d (%s)", cut, len, rc, err);
    }
    /* Every flipped byte of the header and a spread of body bytes. */
    for (size_t at = 0; at < len; at += at < SNAPSHOT_HEADER_LEN ? 1 : 13) {
        char *copy = malloc(len);
        memcpy(copy, good, len);
        copy[at] ^= 0x20;
        write_file(bad, copy, len);
        free(copy);
        int rc = try_read(bad, &id, err, sizeof err);
        if (rc != -EBADMSG && rc != -EILSEQ)
            fail_msg("byte %zu flipped: rc %d (%s)", at, rc, err);
    }
    /* Appended garbage. */
    char *longer = malloc(len + 3);
    memcpy(longer, good, len);
    memcpy(longer + len, "xyz", 3);
    write_file(bad, longer, len + 3);
    free(longer);
    assert_int_equal(try_read(bad, &id, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "truncated or extended"));

    /* Foreign: not a snapshot, another segment, another shard. */
    write_file(bad, "hello, world\n", 13);
    assert_int_equal(try_read(bad, &id, err, sizeof err), -EILSEQ);
    assert_non_null(strstr(err, "bad magic"));
    snapshot_identity other = id;
    snprintf(other.segment, sizeof other.segment, "other");
    assert_int_equal(try_read(path, &other, err, sizeof err), -EILSEQ);
    assert_non_null(strstr(err, "segment 'plant'"));
    other = id;
    other.shard_k = 1;
    other.shard_n = 2;
    assert_int_equal(try_read(path, &other, err, sizeof err), -EILSEQ);
    /* Another version (header CRC fixed up so only the version differs). */
    char *v2 = malloc(len);
    memcpy(v2, good, len);
    v2[8] = 2;
    uint32_t crc = stats_crc32c(0, v2, 108);
    memcpy(v2 + 108, &crc, 4);
    write_file(bad, v2, len);
    free(v2);
    assert_int_equal(try_read(bad, &id, err, sizeof err), -EILSEQ);
    assert_non_null(strstr(err, "version 2"));

    /* Moving aside. */
    char moved[600];
    assert_int_equal(snapshot_move_aside(bad, moved, sizeof moved), 0);
    assert_int_equal(access(bad, F_OK), -1);
    assert_int_equal(access(moved, F_OK), 0);
    assert_non_null(strstr(moved, ".bad-"));
    free(good);
}

/* Re-seals a body with valid checksums: header fields for body length, CRC. */
static void write_sealed(const char *path, const uint8_t *body, size_t body_len, uint32_t tags)
{
    store_params p = params(20);
    tagstore empty;
    assert_int_equal(tagstore_init(&empty, &p), 0);
    snapshot_identity id = ident();
    char err[256];
    assert_int_equal(snapshot_write(path, &empty, &id, NULL, err, sizeof err), 0);
    tagstore_free(&empty);
    size_t len;
    char *hdr = read_file(path, &len);
    uint64_t bl = body_len;
    uint32_t crc = stats_crc32c(0, body, body_len);
    memcpy(hdr + 16, &bl, 8);
    memcpy(hdr + 24, &crc, 4);
    memcpy(hdr + 28, &tags, 4);
    uint32_t hcrc = stats_crc32c(0, hdr, 108);
    memcpy(hdr + 108, &hcrc, 4);
    uint8_t *all = malloc(SNAPSHOT_HEADER_LEN + body_len);
    memcpy(all, hdr, SNAPSHOT_HEADER_LEN);
    memcpy(all + SNAPSHOT_HEADER_LEN, body, body_len);
    write_file(path, all, SNAPSHOT_HEADER_LEN + body_len);
    free(all);
    free(hdr);
}

static size_t put(uint8_t *b, size_t at, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        b[at + (size_t)i] = (uint8_t)(v >> (8 * i));
    return at + (size_t)bytes;
}

/* A tag record: id, name, flags, counters, n window values, history m. */
static size_t tag_record(uint8_t *b, size_t at, uint32_t id, uint16_t name_len, uint32_t n,
                         double v, uint32_t m)
{
    at = put(b, at, id, 4);
    at = put(b, at, name_len, 2);
    for (uint16_t i = 0; i < name_len && i < 8; i++)
        b[at++] = 'a';
    at = put(b, at, 0, 4); /* meta, type, mode, reserved */
    at = put(b, at, 3, 8); /* added */
    at = put(b, at, 0, 8); /* excluded_nonfinite */
    at = put(b, at, 0, 8); /* excluded_quality */
    at = put(b, at, n, 4);
    for (uint32_t i = 0; i < n && i < 4; i++) {
        uint64_t bits;
        memcpy(&bits, &v, 8);
        at = put(b, at, i, 8);
        at = put(b, at, bits, 8);
    }
    at = put(b, at, (uint64_t)INT64_MIN, 8); /* compacted_until */
    for (int i = 0; i < 7; i++)
        at = put(b, at, 0, 8);
    at = put(b, at, m, 4);
    return at;
}

static void test_rejects_crafted_bodies(void **state)
{
    (void)state;
    char dir[256], path[512], err[512];
    shmtest_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/plant.stats.snap", dir);
    snapshot_identity id = ident();
    uint8_t body[1024];
    size_t n;

    n = tag_record(body, 0, 1, 4, 2, 1.5, 0);
    write_sealed(path, body, n, 1);
    assert_int_equal(try_read(path, &id, err, sizeof err), 0); /* the template is valid */

    n = tag_record(body, 0, 1, 300, 0, 1.0, 0); /* name too long */
    write_sealed(path, body, n, 1);
    assert_int_equal(try_read(path, &id, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "name length"));

    n = tag_record(body, 0, 1, 4, 2, NAN, 0); /* NaN stored */
    write_sealed(path, body, n, 1);
    assert_int_equal(try_read(path, &id, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "not finite"));

    n = tag_record(body, 0, 1, 4, 100000, 1.0, 0); /* count beyond the data */
    write_sealed(path, body, n, 1);
    assert_int_equal(try_read(path, &id, err, sizeof err), -EBADMSG);

    n = tag_record(body, 0, 1, 4, 0, 1.0, 1u << 30); /* history count absurd */
    write_sealed(path, body, n, 1);
    assert_int_equal(try_read(path, &id, err, sizeof err), -EBADMSG);

    n = tag_record(body, 0, 1000, 4, 0, 1.0, 0); /* id beyond max_tags (64) */
    write_sealed(path, body, n, 1);
    assert_int_equal(try_read(path, &id, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "catalog capacity"));

    n = tag_record(body, 0, 1, 4, 0, 1.0, 0);
    n = tag_record(body, n, 1, 4, 0, 1.0, 0); /* same id twice */
    write_sealed(path, body, n, 2);
    assert_int_equal(try_read(path, &id, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "twice"));

    n = tag_record(body, 0, 1, 4, 0, 1.0, 0);
    write_sealed(path, body, n, 2); /* header promises two tags */
    assert_int_equal(try_read(path, &id, err, sizeof err), -EBADMSG);

    n = tag_record(body, 0, 1, 4, 0, 1.0, 0);
    write_sealed(path, body, n, 0); /* bytes left after the tags */
    assert_int_equal(try_read(path, &id, err, sizeof err), -EBADMSG);
    assert_non_null(strstr(err, "after the last tag"));
}

static void test_failed_write_keeps_previous(void **state)
{
    (void)state;
    char dir[256], path[512], tmp[600], err[512];
    shmtest_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/plant.stats.snap", dir);
    store_params p = params(20);
    tagstore a;
    assert_int_equal(tagstore_init(&a, &p), 0);
    fill(&a);
    snapshot_identity id = ident();
    assert_int_equal(snapshot_write(path, &a, &id, NULL, err, sizeof err), 0);
    size_t len1;
    char *before = read_file(path, &len1);
    /* A directory where the temporary file should go: the write fails. */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    assert_int_equal(mkdir(tmp, 0700), 0);
    tagstore_apply(&a, 0, 5000 * SEC, 42.0, SHM_Q_GOOD);
    assert_true(snapshot_write(path, &a, &id, NULL, err, sizeof err) < 0);
    assert_non_null(strstr(err, ".tmp"));
    size_t len2;
    char *after = read_file(path, &len2);
    assert_int_equal(len1, len2);
    assert_memory_equal(before, after, len1);
    rmdir(tmp);
    /* A missing directory: a clear error. */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.snap", dir);
    assert_int_equal(snapshot_write(missing, &a, &id, NULL, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "no/such/dir"));
    free(before);
    free(after);
    tagstore_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_rejects_damage),
        cmocka_unit_test(test_rejects_crafted_bodies),
        cmocka_unit_test(test_failed_write_keeps_previous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * t_chunk_builder.c — the block builder's bounded memory: blocks cut to a
 * write buffer (chunk_builder_encode_next) and group blocks cut at
 * CHUNK_GROUP_BLOCK_MAX hold every point exactly once, a column of
 * chunk_builder_column_fit() points of the least compressible data fits
 * its buffer, nothing can be added while a block is being cut, and trim
 * and exact reservations give and take the memory they say.
 */
#include "wtest.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Points that defeat every codec: random doubles, sequence gaps, and
 * quality, exception and flags changing at every point. */
static shm_tag_value *noisy_points(size_t n, uint32_t tags, uint64_t seq0)
{
    shm_tag_value *p = calloc(n, sizeof *p);
    uint64_t seq = seq0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bits = wtest_rand();
        double v;
        memcpy(&v, &bits, sizeof v);
        if (isnan(v))
            v = (double)bits;
        p[i] = (shm_tag_value){.sequence = seq, .timestamp_ns = (int64_t)(wtest_rand() >> 2),
                               .tag_id = (uint32_t)(i % tags), .device_id = 7, .value = v,
                               .raw = (int64_t)wtest_rand(), .quality = (uint8_t)wtest_rand(),
                               .exception_code = (uint8_t)wtest_rand(),
                               .flags = (uint16_t)wtest_rand()};
        seq += 1 + wtest_rand() % 1000000;
    }
    return p;
}

/* Every point of a block, checked against the input and counted in seen. */
struct collect {
    const shm_tag_value *pts;
    size_t n;
    uint8_t *seen;
    size_t blocks, max_len, max_streams;
};

static int collect_block(void *ctx, const uint8_t *block, size_t len, const chunk_block_info *info)
{
    struct collect *c = ctx;
    assert_int_equal(chunk_block_check(block, len, NULL), 0);
    chunk_data_view v;
    assert_int_equal(chunk_data_view_open(block, len, &v), 0);
    size_t points = 0;
    chunk_series s = {0};
    for (uint32_t col = 0; col < v.ncols; col++) {
        chunk_column_ref ref;
        assert_int_equal(chunk_data_view_column(&v, col, &ref), 0);
        chunk_series_clear(&s);
        assert_int_equal(chunk_data_decode_column(&v, col, CHUNK_F_ALL, &s), (int)ref.count);
        for (size_t i = 0; i < s.n; i++) {
            long k = wtest_find_seq(c->pts, c->n, s.seq[i]);
            assert_true(k >= 0);
            const shm_tag_value *p = &c->pts[k];
            assert_int_equal(p->tag_id, ref.tag_id);
            assert_int_equal(p->device_id, ref.device_id);
            assert_int_equal(p->timestamp_ns, s.ts[i]);
            assert_memory_equal(&p->value, &s.value[i], sizeof p->value);
            assert_int_equal(p->raw, s.raw[i]);
            assert_int_equal(p->quality, s.quality[i]);
            assert_int_equal(p->exception_code, s.exception[i]);
            assert_int_equal(p->flags, s.flags[i]);
            if (c->seen[k]++)
                fail_msg("sequence %llu in two blocks", (unsigned long long)s.seq[i]);
        }
        points += s.n;
    }
    chunk_series_free(&s);
    assert_int_equal(points, info->points);
    c->blocks++;
    c->max_len = len > c->max_len ? len : c->max_len;
    c->max_streams = v.nstreams > c->max_streams ? v.nstreams : c->max_streams;
    return 0;
}

static void expect_all_seen(const struct collect *c)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->seen[i] != 1)
            fail_msg("point %zu (sequence %llu) seen %u times", i,
                     (unsigned long long)c->pts[i].sequence, c->seen[i]);
}

/* Encodes everything with chunk_builder_encode_next into cap-byte buffers. */
static void cut_and_check(chunk_builder *b, const shm_tag_value *pts, size_t n, size_t cap,
                          struct collect *c)
{
    *c = (struct collect){.pts = pts, .n = n, .seen = calloc(n, 1)};
    uint8_t *buf = malloc(cap);
    int rc;
    do {
        size_t len;
        chunk_block_info info;
        rc = chunk_builder_encode_next(b, buf, cap, &len, &info);
        assert_true(rc == 0 || rc == 1);
        assert_true(len <= cap);
        if (rc == 1) {
            assert_true(chunk_builder_encoding(b));
            assert_int_equal(chunk_builder_add(b, &pts[0]), CHUNK_EINVAL); /* no adding now */
        }
        collect_block(c, buf, len, &info);
    } while (rc == 1);
    assert_false(chunk_builder_encoding(b));
    assert_int_equal(chunk_builder_points(b), 0);
    expect_all_seen(c);
    free(c->seen);
    free(buf);
}

static void test_encode_next_cuts(void **state)
{
    (void)state;
    uint64_t seq = 1000;
    int64_t t = 1767225600000000000ll;
    size_t n;
    shm_tag_value *pts = wtest_points(40, 400, &seq, &t, &n); /* 100 groups of 4 tags */
    chunk_builder *b;
    assert_int_equal(chunk_builder_new(&b), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(chunk_builder_add(b, &pts[i]), 0);
    struct collect c;
    cut_and_check(b, pts, n, 16 << 10, &c);
    printf("%zu points of 400 tags in %zu blocks of at most 16 KiB\n", n, c.blocks);
    assert_true(c.blocks > 2);

    /* the same builder again, everything in one buffer: one block */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(chunk_builder_add(b, &pts[i]), 0);
    cut_and_check(b, pts, n, chunk_builder_bound(b), &c);
    assert_int_equal(c.blocks, 1);
    chunk_builder_free(&b);
    free(pts);
}

/* The promise the writer relies on to make progress: one column of
 * column_fit(cap) points of the worst data fits cap bytes alone. */
static void test_column_fit_worst_case(void **state)
{
    (void)state;
    const size_t caps[] = {64u << 10, 256u << 10, 1u << 20};
    for (size_t k = 0; k < sizeof caps / sizeof caps[0]; k++) {
        size_t fit = chunk_builder_column_fit(caps[k]);
        assert_true(fit > 100);
        shm_tag_value *pts = noisy_points(fit, 1, 5);
        chunk_builder *b;
        assert_int_equal(chunk_builder_new(&b), 0);
        for (size_t i = 0; i < fit; i++)
            assert_int_equal(chunk_builder_add(b, &pts[i]), 0);
        struct collect c;
        cut_and_check(b, pts, fit, caps[k], &c);
        assert_int_equal(c.blocks, 1);
        printf("%zu noisy points of one column: %zu of %zu bytes\n", fit, c.max_len, caps[k]);

        /* four times as many do not fit (this data takes about half the
         * bound), and say so */
        shm_tag_value *more = noisy_points(4 * fit, 1, 5);
        for (size_t i = 0; i < 4 * fit; i++)
            assert_int_equal(chunk_builder_add(b, &more[i]), 0);
        free(more);
        uint8_t *buf = malloc(caps[k]);
        size_t len;
        assert_int_equal(chunk_builder_encode_next(b, buf, caps[k], &len, NULL), CHUNK_ETOOBIG);
        assert_non_null(strstr(chunk_last_error(), "does not fit"));
        chunk_builder_reset(b);
        assert_false(chunk_builder_encoding(b));
        free(buf);
        chunk_builder_free(&b);
        free(pts);
    }
}

/* One group (every tag shares the timestamps) larger than a group block:
 * cut into blocks of at most CHUNK_GROUP_BLOCK_MAX, one stream each. */
static void test_encode_groups_cut(void **state)
{
    (void)state;
    const uint32_t tags = 64;
    const size_t polls = 2000;
    size_t n = (size_t)tags * polls;
    shm_tag_value *pts = noisy_points(n, tags, 1);
    for (size_t i = 0; i < n; i++)
        pts[i].timestamp_ns = 1767225600000000000ll + (int64_t)(i / tags) * 1000000;
    chunk_builder *b;
    assert_int_equal(chunk_builder_new(&b), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(chunk_builder_add(b, &pts[i]), 0);
    struct collect c = {.pts = pts, .n = n, .seen = calloc(n, 1)};
    assert_int_equal(chunk_builder_encode_groups(b, collect_block, &c), 0);
    expect_all_seen(&c);
    printf("one group of %zu noisy points: %zu blocks, largest %zu bytes\n", n, c.blocks,
           c.max_len);
    assert_true(c.blocks >= 2);
    assert_true(c.max_len <= CHUNK_GROUP_BLOCK_MAX);
    assert_int_equal(c.max_streams, 1);
    free(c.seen);

    /* a single column larger than a group block still gets one of its own */
    for (size_t i = 0; i < n; i++) {
        shm_tag_value v = pts[i];
        v.tag_id = 0;
        assert_int_equal(chunk_builder_add(b, &v), 0);
    }
    struct collect one = {.pts = pts, .n = n, .seen = calloc(n, 1)};
    for (size_t i = 0; i < n; i++)
        pts[i].tag_id = 0;
    assert_int_equal(chunk_builder_encode_groups(b, collect_block, &one), 0);
    expect_all_seen(&one);
    assert_int_equal(one.blocks, 1);
    assert_true(one.max_len > CHUNK_GROUP_BLOCK_MAX);
    free(one.seen);
    /* and that oversized buffer is given back by a trim */
    size_t before = chunk_builder_memory(b);
    chunk_builder_trim(b, 0);
    assert_true(chunk_builder_memory(b) + CHUNK_GROUP_BLOCK_MAX < before);
    chunk_builder_free(&b);
    free(pts);
}

static void test_trim_and_reserve(void **state)
{
    (void)state;
    uint64_t seq = 1;
    int64_t t = 1767225600000000000ll;
    size_t n;
    shm_tag_value *pts = wtest_points(50, 2000, &seq, &t, &n);
    chunk_builder *b;
    assert_int_equal(chunk_builder_new(&b), 0);
    size_t empty = chunk_builder_memory(b);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(chunk_builder_add(b, &pts[i]), 0);
    size_t full = chunk_builder_memory(b);
    /* 36 bytes a point, at most twice over while columns grow */
    assert_true(full - empty >= n * 36);
    assert_true(full - empty <= n * 36 * 2 + 2000 * 512);
    chunk_builder_trim(b, 0); /* not while points are held */
    assert_int_equal(chunk_builder_memory(b), full);
    uint8_t *buf = malloc(chunk_builder_bound(b));
    size_t len;
    assert_int_equal(chunk_builder_encode(b, buf, chunk_builder_bound(b), &len, NULL), 0);
    assert_true(chunk_builder_memory(b) >= full); /* kept for the next block */
    chunk_builder_trim(b, full * 2);
    assert_true(chunk_builder_memory(b) >= full);
    chunk_builder_trim(b, 0);
    size_t trimmed = chunk_builder_memory(b);
    assert_true(trimmed + n * 36 <= full);

    /* exact reservations: what is reserved is what is added */
    assert_int_equal(chunk_builder_reserve(b, 9, 9, 1000), 0);
    size_t reserved = chunk_builder_memory(b);
    assert_true(reserved - trimmed >= 1000 * 36 && reserved - trimmed < 1000 * 36 + 64);
    for (uint64_t i = 0; i < 1000; i++) {
        shm_tag_value v = {.sequence = i, .timestamp_ns = (int64_t)i, .tag_id = 9, .device_id = 9,
                           .value = 1.5};
        assert_int_equal(chunk_builder_add(b, &v), 0);
    }
    assert_int_equal(chunk_builder_memory(b), reserved);
    assert_int_equal(chunk_builder_column_points(b, 9, 9), 1000);
    assert_int_equal(chunk_builder_column_points(b, 9, 8), 0);
    assert_int_equal(chunk_builder_encode(b, buf, chunk_builder_bound(b), &len, NULL), 0);
    free(buf);
    chunk_builder_free(&b);
    free(pts);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_next_cuts),
        cmocka_unit_test(test_column_fit_worst_case),
        cmocka_unit_test(test_encode_groups_cut),
        cmocka_unit_test(test_trim_and_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

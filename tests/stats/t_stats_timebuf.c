/*
 * t_stats_timebuf.c — the time-window buffer and min/max downsampling.
 *
 * Downsampling keeps first, last, min and max of every bucket, in time
 * order, at most 4 per bucket, in place. The buffer stays time-ordered and
 * within capacity through long random insertions, keeps the newest point
 * and the extrema, ages points out at the horizon, and follows its
 * documented rules for out-of-order, repeated and too-old timestamps.
 */
#include "downsample.h"
#include "statref.h"
#include "timebuf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h> /* after the three headers it needs */

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000LL

static int contains(const stat_point *pts, size_t n, stat_point p)
{
    for (size_t i = 0; i < n; i++)
        if (pts[i].t_ns == p.t_ns && pts[i].v == p.v)
            return 1;
    return 0;
}

/* Checks that out[0..m) (downsampled from in[0..n) with `bucket`) holds the
 * first, last, min and max of every bucket, nothing else, in time order. */
static void check_buckets(const stat_point *in, size_t n, size_t bucket, const stat_point *out,
                          size_t m)
{
    size_t buckets = (n + bucket - 1) / bucket;
    assert_true(m <= 4 * buckets);
    for (size_t i = 1; i < m; i++)
        assert_true(out[i - 1].t_ns < out[i].t_ns);
    for (size_t b = 0; b < buckets; b++) {
        size_t start = b * bucket, end = start + bucket < n ? start + bucket : n;
        double mn = in[start].v, mx = in[start].v;
        for (size_t i = start; i < end; i++) {
            mn = in[i].v < mn ? in[i].v : mn;
            mx = in[i].v > mx ? in[i].v : mx;
        }
        assert_true(contains(out, m, in[start]));
        assert_true(contains(out, m, in[end - 1]));
        int has_min = 0, has_max = 0;
        for (size_t i = 0; i < m; i++) {
            if (out[i].t_ns >= in[start].t_ns && out[i].t_ns <= in[end - 1].t_ns) {
                has_min |= out[i].v == mn;
                has_max |= out[i].v == mx;
            }
        }
        assert_true(has_min && has_max);
    }
    for (size_t i = 0; i < m; i++)
        assert_true(contains(in, n, out[i]));
}

static void test_downsample_keeps_bucket_extrema(void **state)
{
    (void)state;
    test_rng r;
    rng_seed(&r, 42);
    static const size_t sizes[] = {1, 4, 5, 16, 17, 100, 1000, 4097};
    static const size_t buckets[] = {5, 7, 16, 64};
    for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
        for (size_t bi = 0; bi < sizeof buckets / sizeof buckets[0]; bi++) {
            size_t n = sizes[si];
            stat_point *in = malloc(n * sizeof *in), *work = malloc(n * sizeof *work);
            for (size_t i = 0; i < n; i++) {
                in[i].t_ns = (int64_t)i * 10 + (int64_t)(rng_next(&r) % 5);
                in[i].v = rng_uniform(&r) < 0.3 ? (double)(rng_next(&r) % 3) : rng_normal(&r);
            }
            memcpy(work, in, n * sizeof *in);
            size_t m = downsample_minmax(work, n, buckets[bi]);
            check_buckets(in, n, buckets[bi], work, m);
            free(in);
            free(work);
        }
    }
    /* Small buckets keep everything. */
    stat_point p[3] = {{1, 1.0}, {2, 2.0}, {3, 3.0}};
    assert_int_equal(downsample_minmax(p, 3, 4), 3);
}

static void test_bucket_for_fits(void **state)
{
    (void)state;
    for (size_t n = 1; n < 5000; n += 37) {
        for (size_t max = 8; max < 600; max += 53) {
            size_t b = downsample_bucket_for(n, max);
            if (n <= max) {
                assert_int_equal(b, 1); /* nothing to do */
                continue;
            }
            assert_true(b >= 5);
            assert_true(4 * ((n + b - 1) / b) <= max); /* 4 per bucket at most */
        }
    }
}

static void test_append_range_and_horizon(void **state)
{
    (void)state;
    timebuf tb;
    assert_int_equal(timebuf_init(&tb, 256, 10 * SEC, 0), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(timebuf_insert(&tb, i * SEC, i), TIMEBUF_APPENDED);
    /* Newest is 19 s; horizon 10 s: points at 9..19 remain. */
    assert_int_equal(tb.count, 11);
    assert_int_equal(timebuf_at(&tb, 0).t_ns, 9 * SEC);
    assert_int_equal(tb.purged, 9);
    stat_point out[32];
    assert_int_equal(timebuf_range(&tb, 12 * SEC, 14 * SEC, out, 32), 3);
    assert_true(out[0].v == 12 && out[2].v == 14);
    assert_int_equal(timebuf_range(&tb, 12 * SEC + 1, 14 * SEC - 1, out, 32), 1);
    assert_int_equal(timebuf_range(&tb, 14 * SEC, 12 * SEC, out, 32), 0); /* inverted */
    assert_int_equal(timebuf_range(&tb, 100 * SEC, 200 * SEC, out, 32), 0);
    assert_int_equal(timebuf_range(&tb, 0, 100 * SEC, out, 2), 11); /* copies 2 */
    assert_true(out[0].v == 9 && out[1].v == 10);
    /* Purge against an external clock. */
    assert_int_equal(timebuf_purge(&tb, 15 * SEC), 6);
    assert_int_equal(tb.count, 5);
    assert_int_equal(timebuf_purge(&tb, 100 * SEC), 5);
    assert_int_equal(tb.count, 0);
    timebuf_free(&tb);
}

static void test_out_of_order_and_repeated(void **state)
{
    (void)state;
    timebuf tb;
    assert_int_equal(timebuf_init(&tb, 64, 100 * SEC, 0), 0);
    assert_int_equal(timebuf_insert(&tb, 10 * SEC, 1.0), TIMEBUF_APPENDED);
    assert_int_equal(timebuf_insert(&tb, 20 * SEC, 2.0), TIMEBUF_APPENDED);
    assert_int_equal(timebuf_insert(&tb, 30 * SEC, 3.0), TIMEBUF_APPENDED);
    /* Repeated newest timestamp: last write wins. */
    assert_int_equal(timebuf_insert(&tb, 30 * SEC, 3.5), TIMEBUF_REPLACED);
    /* Out of order: placed in time order. */
    assert_int_equal(timebuf_insert(&tb, 15 * SEC, 1.5), TIMEBUF_INSERTED);
    assert_int_equal(timebuf_insert(&tb, 5 * SEC, 0.5), TIMEBUF_INSERTED);
    /* Repeated older timestamp. */
    assert_int_equal(timebuf_insert(&tb, 20 * SEC, 2.5), TIMEBUF_REPLACED);
    /* Older than newest - horizon: dropped. */
    assert_int_equal(timebuf_insert(&tb, 30 * SEC - 101 * SEC, 9.0), TIMEBUF_TOO_OLD);
    const int64_t ts[] = {5, 10, 15, 20, 30};
    const double vs[] = {0.5, 1.0, 1.5, 2.5, 3.5};
    assert_int_equal(tb.count, 5);
    for (uint32_t i = 0; i < tb.count; i++) {
        assert_int_equal(timebuf_at(&tb, i).t_ns, ts[i] * SEC);
        assert_true(timebuf_at(&tb, i).v == vs[i]);
    }
    assert_int_equal(tb.replaced, 2);
    assert_int_equal(tb.inserted, 2);
    assert_int_equal(tb.too_old, 1);
    timebuf_free(&tb);
}

static void test_capacity_and_downsampling(void **state)
{
    (void)state;
    const uint32_t cap = 256;
    timebuf tb;
    assert_int_equal(timebuf_init(&tb, cap, 1000000 * SEC, 16), 0);
    test_rng r;
    rng_seed(&r, 3);
    double gmin = INFINITY, gmax = -INFINITY;
    int64_t t = 1000 * SEC, first_t = 0;
    for (int i = 0; i < 20000; i++) {
        double v = rng_normal(&r) + (i % 1000 == 0 ? 50.0 : 0.0);
        gmin = v < gmin ? v : gmin;
        gmax = v > gmax ? v : gmax;
        t += (int64_t)(rng_next(&r) % SEC) + 1;
        if (i == 0)
            first_t = t;
        int res = timebuf_insert(&tb, t, v);
        assert_int_equal(res, TIMEBUF_APPENDED);
        assert_true(tb.count <= cap);
        assert_int_equal(timebuf_at(&tb, tb.count - 1).t_ns, t);
    }
    for (uint32_t i = 1; i < tb.count; i++)
        assert_true(timebuf_at(&tb, i - 1).t_ns < timebuf_at(&tb, i).t_ns);
    /* The very first point, the global extremes and the newest survive. */
    assert_int_equal(timebuf_at(&tb, 0).t_ns, first_t);
    double mn = INFINITY, mx = -INFINITY;
    for (uint32_t i = 0; i < tb.count; i++) {
        mn = fmin(mn, timebuf_at(&tb, i).v);
        mx = fmax(mx, timebuf_at(&tb, i).v);
    }
    assert_true(mn == gmin && mx == gmax);
    assert_true(tb.compactions > 0);
    assert_true(tb.compacted_until_ns > first_t);
    assert_int_equal(tb.appended, 20000);
    assert_int_equal(tb.appended - tb.downsampled_away, tb.count);
    timebuf_free(&tb);
}

static void test_compaction_keeps_each_bucket(void **state)
{
    (void)state;
    const uint32_t cap = 128;
    timebuf tb;
    assert_int_equal(timebuf_init(&tb, cap, 1000000 * SEC, 8), 0);
    test_rng r;
    rng_seed(&r, 11);
    /* Fill so the ring wraps (purge a few first), then reach capacity. */
    for (int i = 0; i < 40; i++)
        timebuf_insert(&tb, (int64_t)i * SEC, rng_normal(&r));
    timebuf_purge(&tb, 30 * SEC);
    for (int i = 40; tb.count < cap; i++)
        timebuf_insert(&tb, (int64_t)i * SEC, rng_normal(&r));
    stat_point before[128];
    uint32_t n = tb.count;
    for (uint32_t i = 0; i < n; i++)
        before[i] = timebuf_at(&tb, i);
    /* One more point triggers the compaction of the older half. */
    int64_t t_new = timebuf_at(&tb, n - 1).t_ns + SEC;
    timebuf_insert(&tb, t_new, 0.25);
    stat_point after[128];
    for (uint32_t i = 0; i < tb.count; i++)
        after[i] = timebuf_at(&tb, i);
    uint32_t older = n / 2;
    uint32_t kept = tb.count - (n - older) - 1;
    check_buckets(before, older, 8, after, kept);
    /* The newer half is untouched. */
    for (uint32_t i = older; i < n; i++)
        assert_true(after[kept + i - older].t_ns == before[i].t_ns &&
                    after[kept + i - older].v == before[i].v);
    assert_int_equal(tb.compacted_until_ns, after[kept - 1].t_ns);
    timebuf_free(&tb);
}

/* Shrinking downsamples until the points fit (first, newest and the
 * extremes survive, order kept); growing keeps every point; bad sizes
 * change nothing. */
static void test_resize(void **state)
{
    (void)state;
    timebuf tb;
    assert_int_equal(timebuf_init(&tb, 1024, 1000000 * SEC, 16), 0);
    test_rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < 50; i++) /* wrap the ring: the oldest is not at index 0 */
        timebuf_insert(&tb, (int64_t)i * SEC, 0.0);
    timebuf_purge(&tb, 50 * SEC);
    double gmin = INFINITY, gmax = -INFINITY;
    int64_t t = 100 * SEC;
    for (int i = 0; i < 1000; i++, t += SEC) {
        double v = rng_normal(&r);
        gmin = fmin(gmin, v);
        gmax = fmax(gmax, v);
        timebuf_insert(&tb, t, v);
    }
    assert_int_equal(tb.count, 1000);
    stat_point newest = timebuf_at(&tb, 999);
    assert_int_equal(timebuf_resize(&tb, 100), 0);
    assert_int_equal(tb.capacity, 100);
    assert_true(tb.count <= 100 && tb.count >= 50);
    assert_int_equal(timebuf_at(&tb, 0).t_ns, 100 * SEC);
    assert_true(timebuf_at(&tb, tb.count - 1).t_ns == newest.t_ns &&
                timebuf_at(&tb, tb.count - 1).v == newest.v);
    double mn = INFINITY, mx = -INFINITY;
    for (uint32_t i = 0; i < tb.count; i++) {
        mn = fmin(mn, timebuf_at(&tb, i).v);
        mx = fmax(mx, timebuf_at(&tb, i).v);
        if (i)
            assert_true(timebuf_at(&tb, i - 1).t_ns < timebuf_at(&tb, i).t_ns);
    }
    assert_true(mn == gmin && mx == gmax);
    assert_int_equal(tb.appended - tb.downsampled_away - tb.purged, tb.count);
    /* Growing keeps the points; inserting goes on. */
    uint32_t n = tb.count;
    stat_point first = timebuf_at(&tb, 0);
    assert_int_equal(timebuf_resize(&tb, 5000), 0);
    assert_int_equal(tb.count, n);
    assert_true(timebuf_at(&tb, 0).t_ns == first.t_ns);
    for (int i = 0; i < 3000; i++, t += SEC)
        assert_int_equal(timebuf_insert(&tb, t, 1.0), TIMEBUF_APPENDED);
    assert_int_equal(tb.count, n + 3000);
    /* Bad sizes: below the minimum, below 4 buckets. */
    assert_int_equal(timebuf_resize(&tb, TIMEBUF_MIN_CAPACITY - 1), -EINVAL);
    assert_int_equal(tb.capacity, 5000);
    timebuf_free(&tb);
    assert_int_equal(timebuf_init(&tb, 256, SEC, 32), 0);
    assert_int_equal(timebuf_resize(&tb, 127), -EINVAL);
    assert_int_equal(timebuf_resize(&tb, 128), 0);
    timebuf_free(&tb);
}

static void test_out_of_order_at_capacity(void **state)
{
    (void)state;
    timebuf tb;
    assert_int_equal(timebuf_init(&tb, 64, 1000 * SEC, 0), 0);
    for (int i = 0; i < 64; i++)
        timebuf_insert(&tb, (int64_t)(2 * i) * SEC, i);
    assert_int_equal(tb.count, 64);
    assert_int_equal(timebuf_insert(&tb, 125 * SEC, -1.0), TIMEBUF_INSERTED);
    assert_true(tb.count <= 64);
    uint32_t at = timebuf_lower_bound(&tb, 125 * SEC);
    assert_true(timebuf_at(&tb, at).v == -1.0);
    for (uint32_t i = 1; i < tb.count; i++)
        assert_true(timebuf_at(&tb, i - 1).t_ns < timebuf_at(&tb, i).t_ns);
    timebuf_free(&tb);
}

static void test_extreme_timestamps(void **state)
{
    (void)state;
    timebuf tb;
    assert_int_equal(timebuf_init(&tb, 64, 10 * SEC, 0), 0);
    assert_int_equal(timebuf_insert(&tb, INT64_MAX - 5, 1.0), TIMEBUF_APPENDED);
    assert_int_equal(timebuf_insert(&tb, INT64_MIN, 2.0), TIMEBUF_TOO_OLD);
    assert_int_equal(tb.count, 1);
    timebuf tb2;
    assert_int_equal(timebuf_init(&tb2, 64, 10 * SEC, 0), 0);
    assert_int_equal(timebuf_insert(&tb2, INT64_MIN + 1, 1.0), TIMEBUF_APPENDED);
    assert_int_equal(tb2.count, 1);
    timebuf_free(&tb2);
    timebuf_free(&tb);
}

static void test_bad_init(void **state)
{
    (void)state;
    timebuf tb;
    assert_int_equal(timebuf_init(&tb, 10, SEC, 0), -EINVAL);  /* too small */
    assert_int_equal(timebuf_init(&tb, 64, 0, 0), -EINVAL);    /* no horizon */
    assert_int_equal(timebuf_init(&tb, 64, SEC, 17), -EINVAL); /* cap < 4 buckets */
    assert_int_equal(timebuf_init(&tb, 64, SEC, 3), -EINVAL);  /* bucket too small */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_downsample_keeps_bucket_extrema),
        cmocka_unit_test(test_bucket_for_fits),
        cmocka_unit_test(test_append_range_and_horizon),
        cmocka_unit_test(test_out_of_order_and_repeated),
        cmocka_unit_test(test_capacity_and_downsampling),
        cmocka_unit_test(test_compaction_keeps_each_bucket),
        cmocka_unit_test(test_out_of_order_at_capacity),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_extreme_timestamps),
        cmocka_unit_test(test_bad_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

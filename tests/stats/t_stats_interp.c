/*
 * t_stats_interp.c — value at a time (at, between, before and after stored
 * points, linear and step), trend, change rate, suggested interval and
 * correlation over aligned windows.
 */
#include "correlate.h"
#include "interp.h"
#include "statref.h"
#include "timebuf.h"
#include "trend.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h> /* after the three headers it needs */

#include <errno.h>
#include <math.h>
#include <stdlib.h>

#define SEC 1000000000LL

static void fill(timebuf *tb, const int64_t *t, const double *v, size_t n)
{
    assert_int_equal(timebuf_init(tb, 1024, 100000 * SEC, 0), 0);
    for (size_t i = 0; i < n; i++)
        timebuf_insert(tb, t[i], v[i]);
}

static void test_value_at(void **state)
{
    (void)state;
    timebuf tb;
    const int64_t t[] = {10 * SEC, 20 * SEC, 40 * SEC};
    const double v[] = {1.0, 3.0, -1.0};
    fill(&tb, t, v, 3);
    interp_result r;

    /* At a stored point: its value, both neighbours are that point. */
    assert_int_equal(interp_at(&tb, 20 * SEC, INTERP_LINEAR, &r), INTERP_EXACT);
    assert_true(r.value == 3.0 && r.prev.t_ns == 20 * SEC && r.next.t_ns == 20 * SEC);
    assert_int_equal(interp_at(&tb, 10 * SEC, INTERP_LINEAR, &r), INTERP_EXACT);
    assert_true(r.value == 1.0);
    assert_int_equal(interp_at(&tb, 40 * SEC, INTERP_STEP, &r), INTERP_EXACT);
    assert_true(r.value == -1.0);

    /* Between: linear and step, with both neighbours. */
    assert_int_equal(interp_at(&tb, 15 * SEC, INTERP_LINEAR, &r), INTERP_BETWEEN);
    assert_true(fabs(r.value - 2.0) < 1e-15);
    assert_true(r.has_prev && r.has_next && r.prev.t_ns == 10 * SEC && r.next.t_ns == 20 * SEC);
    assert_int_equal(interp_at(&tb, 30 * SEC, INTERP_LINEAR, &r), INTERP_BETWEEN);
    assert_true(fabs(r.value - 1.0) < 1e-15);
    assert_int_equal(interp_at(&tb, 35 * SEC, INTERP_STEP, &r), INTERP_BETWEEN);
    assert_true(r.value == 3.0);
    assert_int_equal(interp_at(&tb, 20 * SEC + 1, INTERP_LINEAR, &r), INTERP_BETWEEN);
    assert_true(fabs(r.value - (3.0 - 4.0 / 20e9)) < 1e-12);

    /* Before and after: no extrapolation, the nearest point is named. */
    assert_int_equal(interp_at(&tb, 9 * SEC, INTERP_LINEAR, &r), INTERP_BEFORE);
    assert_true(isnan(r.value) && !r.has_prev && r.has_next && r.next.t_ns == 10 * SEC);
    assert_int_equal(interp_at(&tb, 41 * SEC, INTERP_LINEAR, &r), INTERP_AFTER);
    assert_true(isnan(r.value) && r.has_prev && !r.has_next && r.prev.v == -1.0);
    assert_string_equal(interp_position_name(INTERP_AFTER), "after");
    timebuf_free(&tb);

    timebuf empty;
    assert_int_equal(timebuf_init(&empty, 64, SEC, 0), 0);
    assert_int_equal(interp_at(&empty, 0, INTERP_LINEAR, &r), INTERP_EMPTY);
    assert_true(isnan(r.value));
    timebuf_free(&empty);
}

static void test_value_at_repeated_and_out_of_order(void **state)
{
    (void)state;
    timebuf tb;
    /* Out of order and a repeated timestamp (last write wins). */
    const int64_t t[] = {30 * SEC, 10 * SEC, 20 * SEC, 20 * SEC};
    const double v[] = {30.0, 10.0, 99.0, 20.0};
    fill(&tb, t, v, 4);
    interp_result r;
    assert_int_equal(interp_at(&tb, 20 * SEC, INTERP_LINEAR, &r), INTERP_EXACT);
    assert_true(r.value == 20.0);
    assert_int_equal(interp_at(&tb, 25 * SEC, INTERP_LINEAR, &r), INTERP_BETWEEN);
    assert_true(fabs(r.value - 25.0) < 1e-12);
    timebuf_free(&tb);
}

static void test_trend(void **state)
{
    (void)state;
    stat_point p[100];
    for (int i = 0; i < 100; i++)
        p[i] = (stat_point){.t_ns = 1700000000 * SEC + i * (SEC / 2), .v = 5.0 + 0.25 * i};
    double slope;
    assert_int_equal(trend_least_squares(p, 100, &slope), 0);
    assert_true(fabs(slope - 0.5) < 1e-9); /* 0.25 per half second */
    /* Noise around a line: close to the line's slope. */
    test_rng r;
    rng_seed(&r, 5);
    for (int i = 0; i < 100; i++)
        p[i].v = -2.0 * i + 0.01 * rng_normal(&r);
    assert_int_equal(trend_least_squares(p, 100, &slope), 0);
    assert_true(fabs(slope - (-4.0)) < 0.01);
    /* Order of points does not matter. */
    stat_point q[3] = {{3 * SEC, 3.0}, {1 * SEC, 1.0}, {2 * SEC, 2.0}};
    assert_int_equal(trend_least_squares(q, 3, &slope), 0);
    assert_true(fabs(slope - 1.0) < 1e-12);
    /* Undefined: one point, or all at one time. */
    assert_int_equal(trend_least_squares(p, 1, &slope), -EDOM);
    assert_true(isnan(slope));
    stat_point same[2] = {{SEC, 1.0}, {SEC, 2.0}};
    assert_int_equal(trend_least_squares(same, 2, &slope), -EDOM);
}

static void test_change_rate_and_interval(void **state)
{
    (void)state;
    assert_true(fabs(trend_change_rate(10, 5 * SEC) - 2.0) < 1e-12);
    assert_true(isnan(trend_change_rate(10, 0)));
    suggest_limits lim = {.min_ms = 100, .max_ms = 60000};
    /* A change every 10 s over 100 s: poll every 5 s. */
    assert_true(fabs(trend_suggest_interval_ms(&lim, 101, 10, 100 * SEC) - 5000.0) < 1e-9);
    /* Never changed: slowest allowed. */
    assert_true(trend_suggest_interval_ms(&lim, 50, 0, 100 * SEC) == 60000.0);
    /* Changes at every 50 ms sample: clamped to the fastest allowed. */
    assert_true(trend_suggest_interval_ms(&lim, 2001, 2000, 100 * SEC) == 100.0);
    /* Rare changes beyond the maximum: clamped. */
    assert_true(trend_suggest_interval_ms(&lim, 10000, 1, 1000 * SEC) == 60000.0);
    /* Not enough data. */
    assert_true(isnan(trend_suggest_interval_ms(&lim, 1, 0, 0)));
    assert_true(isnan(trend_suggest_interval_ms(&lim, 5, 2, 0)));
    /* Defaults when no limits are given. */
    assert_true(trend_suggest_interval_ms(NULL, 5, 0, SEC) == 60000.0);
}

static void test_pearson(void **state)
{
    (void)state;
    double x[50], y[50], z[50], c[50];
    test_rng r;
    rng_seed(&r, 9);
    for (int i = 0; i < 50; i++) {
        x[i] = rng_normal(&r);
        y[i] = 3.0 * x[i] + 7.0;
        z[i] = -x[i];
        c[i] = 4.0;
    }
    assert_true(fabs(correlate_pearson(x, y, 50) - 1.0) < 1e-12);
    assert_true(fabs(correlate_pearson(x, z, 50) + 1.0) < 1e-12);
    assert_true(isnan(correlate_pearson(x, c, 50)));
    assert_true(isnan(correlate_pearson(x, y, 1)));
    /* Against a direct long-double computation on random pairs. */
    for (int i = 0; i < 50; i++)
        y[i] = 0.3 * x[i] + rng_normal(&r);
    long double mx = 0, my = 0;
    for (int i = 0; i < 50; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= 50;
    my /= 50;
    long double sxx = 0, syy = 0, sxy = 0;
    for (int i = 0; i < 50; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    double ref = (double)(sxy / sqrtl(sxx * syy));
    assert_true(rel_err(correlate_pearson(x, y, 50), ref) < 1e-12);
}

static void test_correlate_aligned(void **state)
{
    (void)state;
    /* a sampled every 1 s, b every 0.7 s, c every 1.3 s: b = 2a + 1 and
     * c = -a of the same underlying ramp, so aligned they correlate +1 and
     * -1; d is a step signal (state tag). */
    timebuf a, b, c, d;
    assert_int_equal(timebuf_init(&a, 1024, 100000 * SEC, 0), 0);
    assert_int_equal(timebuf_init(&b, 1024, 100000 * SEC, 0), 0);
    assert_int_equal(timebuf_init(&c, 1024, 100000 * SEC, 0), 0);
    assert_int_equal(timebuf_init(&d, 1024, 100000 * SEC, 0), 0);
    for (int64_t t = 0; t <= 100 * SEC; t += SEC)
        timebuf_insert(&a, t, (double)t / SEC);
    for (int64_t t = 0; t <= 101 * SEC; t += 7 * SEC / 10)
        timebuf_insert(&b, t, 2.0 * ((double)t / SEC) + 1.0);
    for (int64_t t = 2 * SEC; t <= 90 * SEC; t += 13 * SEC / 10)
        timebuf_insert(&c, t, -((double)t / SEC));
    for (int64_t t = 0; t <= 100 * SEC; t += 10 * SEC)
        timebuf_insert(&d, t, (double)((t / SEC / 10) % 2));

    const timebuf *bufs[4] = {&a, &b, &c, &d};
    int64_t from, to;
    assert_int_equal(correlate_overlap(bufs, 3, &from, &to), 0);
    assert_int_equal(from, 2 * SEC);
    assert_true(to <= 90 * SEC && to > 89 * SEC);
    int modes[4] = {INTERP_LINEAR, INTERP_LINEAR, INTERP_LINEAR, INTERP_STEP};
    correlate_request req = {
        .bufs = bufs, .modes = modes, .k = 3, .from_ns = from, .to_ns = to, .points = 200};
    double m[16];
    uint32_t aligned;
    assert_int_equal(correlate_aligned(&req, m, &aligned), 0);
    assert_int_equal(aligned, 200);
    assert_true(fabs(m[0 * 3 + 1] - 1.0) < 1e-9);
    assert_true(fabs(m[0 * 3 + 2] + 1.0) < 1e-9);
    assert_true(fabs(m[1 * 3 + 2] + 1.0) < 1e-9);
    assert_true(m[1 * 3 + 0] == m[0 * 3 + 1]);
    assert_true(fabs(m[0] - 1.0) < 1e-12);

    /* A wider range than c covers: grid points outside c are skipped. */
    req.from_ns = 0;
    req.to_ns = 100 * SEC;
    req.points = 101;
    assert_int_equal(correlate_aligned(&req, m, &aligned), 0);
    assert_true(aligned > 80 && aligned < 92);
    assert_true(fabs(m[0 * 3 + 2] + 1.0) < 1e-9);

    /* With the step tag: a square wave does not correlate with a ramp as +-1. */
    req.k = 4;
    req.from_ns = from;
    req.to_ns = to;
    req.points = 500;
    assert_int_equal(correlate_aligned(&req, m, &aligned), 0);
    assert_true(fabs(m[0 * 4 + 3]) < 0.5);

    /* Bad requests. */
    req.k = 1;
    assert_int_equal(correlate_aligned(&req, m, &aligned), -EINVAL);
    req.k = 2;
    req.from_ns = to;
    req.to_ns = from;
    assert_int_equal(correlate_aligned(&req, m, &aligned), -EINVAL);
    req.from_ns = from;
    req.to_ns = to;
    req.points = 1;
    assert_int_equal(correlate_aligned(&req, m, &aligned), -EINVAL);

    /* No overlap. */
    timebuf e;
    assert_int_equal(timebuf_init(&e, 64, 100000 * SEC, 0), 0);
    const timebuf *with_empty[2] = {&a, &e};
    assert_int_equal(correlate_overlap(with_empty, 2, &from, &to), -ERANGE);
    timebuf_insert(&e, 500 * SEC, 1.0);
    timebuf_insert(&e, 600 * SEC, 2.0);
    assert_int_equal(correlate_overlap(with_empty, 2, &from, &to), -ERANGE);
    timebuf_free(&e);
    timebuf_free(&a);
    timebuf_free(&b);
    timebuf_free(&c);
    timebuf_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_at), cmocka_unit_test(test_value_at_repeated_and_out_of_order),
        cmocka_unit_test(test_trend),    cmocka_unit_test(test_change_rate_and_interval),
        cmocka_unit_test(test_pearson),  cmocka_unit_test(test_correlate_aligned),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

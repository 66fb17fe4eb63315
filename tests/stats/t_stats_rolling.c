/*
 * t_stats_rolling.c — the rolling window against a two-pass reference.
 *
 * Long random sequences of additions (and so evictions) for several windows
 * and data shapes, compared with ref_compute() over the same last-N values:
 * count, min, max, first, last exactly; mean and standard deviation within
 * 1e-9 relative error (the mean relative to |mean| + stddev, since a mean
 * near 0 has no useful relative error). Includes catastrophic-cancellation
 * data (1e9 offset, 1e-3 variance), drift, scale changes and spikes, and
 * edge cases: NaN/inf, empty window, one value, constants, deadband.
 */
#include "rolling.h"
#include "statref.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h> /* after the three headers it needs */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-9

enum shape { UNIFORM, CANCEL, DRIFT, REGIMES, SPIKES, STATES, N_SHAPES };
static const char *shape_names[] = {"uniform", "cancel", "drift", "regimes", "spikes", "states"};

static double gen(enum shape s, test_rng *r, size_t i, uint32_t window)
{
    switch (s) {
    case UNIFORM:
        return rng_uniform(r) * 2000.0 - 1000.0;
    case CANCEL: /* variance 1e-3 around 1e9 */
        return 1e9 + sqrt(1e-3) * rng_normal(r);
    case DRIFT:
        return 1e9 + 1e-3 * (double)i + 0.01 * rng_normal(r);
    case REGIMES: { /* blocks of wide spread, then long stretches of tiny spread */
        size_t block = (i / (window + 1)) % 4;
        return block == 0 ? 1e6 * rng_normal(r) : 1e9 + 1e-3 * rng_normal(r);
    }
    case SPIKES:
        return rng_uniform(r) < 0.01 ? 1e15 : 1e9 + 1e-2 * rng_normal(r);
    case STATES:
        return (double)(rng_next(r) % 4);
    default:
        return 0;
    }
}

typedef struct worst {
    double mean, stddev;
} worst;

static void check_against_reference(rolling_window *w, const double *all, size_t added,
                                    uint32_t window, worst *wr, const char *what)
{
    size_t n = added < window ? added : window;
    const double *tail = all + (added - n);
    ref_stats ref;
    ref_compute(tail, n, &ref);
    rolling_stats st;
    rolling_get_stats(w, &st);
    assert_int_equal(st.count, n);
    if (n == 0)
        return;
    assert_true(st.min == ref.min);
    assert_true(st.max == ref.max);
    assert_true(st.first == ref.first);
    assert_true(st.last == ref.last);
    double em = fabs(st.mean - ref.mean) / (fabs(ref.mean) + ref.stddev);
    double es = ref.stddev == 0 ? st.stddev : rel_err(st.stddev, ref.stddev);
    if (em > wr->mean)
        wr->mean = em;
    if (es > wr->stddev)
        wr->stddev = es;
    if (em > TOL || es > TOL) {
        fprintf(
            stderr,
            "%s: n=%zu added=%zu mean %.17g ref %.17g (err %.3g) std %.17g ref %.17g (err %.3g)\n",
            what, n, added, st.mean, ref.mean, em, st.stddev, ref.stddev, es);
        fail();
    }
}

static void run_sequence(enum shape s, uint32_t window, size_t additions, size_t check_every)
{
    rolling_window w;
    assert_int_equal(rolling_init(&w, window, 0.0), 0);
    double *all = malloc(additions * sizeof *all);
    assert_non_null(all);
    test_rng r;
    rng_seed(&r, 1000u * s + window);
    worst wr = {0, 0};
    char what[64];
    snprintf(what, sizeof what, "%s/window=%u/every=%zu", shape_names[s], window, check_every);
    for (size_t i = 0; i < additions; i++) {
        all[i] = gen(s, &r, i, window);
        assert_int_equal(rolling_add(&w, (int64_t)i * 1000000, all[i]), 1);
        if ((i + 1) % check_every == 0 || i + 1 == additions)
            check_against_reference(&w, all, i + 1, window, &wr, what);
    }
    printf("# %-36s worst mean err %.3g, stddev err %.3g, recenters %llu\n", what, wr.mean,
           wr.stddev, (unsigned long long)w.recenters);
    free(all);
    rolling_free(&w);
}

static void test_random_sequences(void **state)
{
    (void)state;
    /* Around the suffix stride (8) too: the strided suffix is finished
     * from the ring for every head length. */
    static const uint32_t windows[] = {1, 2, 3, 7, 8, 9, 17, 64, 65, 100, 1000};
    for (int s = 0; s < N_SHAPES; s++) {
        for (size_t k = 0; k < sizeof windows / sizeof windows[0]; k++) {
            uint32_t win = windows[k];
            size_t adds = win >= 1000 ? 30000 : 8000;
            /* Query after every value (recenters as soon as needed) ... */
            run_sequence((enum shape)s, win, adds, win >= 1000 ? 37 : 1);
            /* ... and rarely, letting the running sums go a long way alone. */
            run_sequence((enum shape)s, win, adds, 997);
        }
    }
}

/* The window's statistics are those of exactly the newest `n` values. */
static void check_tail(rolling_window *w, const double *all, size_t total, uint32_t n)
{
    ref_stats ref;
    ref_compute(all + total - n, n, &ref);
    rolling_stats st;
    rolling_get_stats(w, &st);
    assert_int_equal(st.count, n);
    assert_true(st.min == ref.min && st.max == ref.max);
    assert_true(st.first == ref.first && st.last == ref.last);
    assert_true(rel_err(st.mean, ref.mean) < TOL);
    assert_true(rel_err(st.stddev, ref.stddev) < TOL);
    assert_int_equal(st.added, total);
}

/* Shrinking keeps the newest values, growing keeps them all and fills up;
 * statistics, first/last and the counters stay right throughout. */
static void test_resize(void **state)
{
    (void)state;
    enum { TOTAL = 6000 };
    static double all[TOTAL];
    test_rng r;
    rng_seed(&r, 99);
    rolling_window w;
    assert_int_equal(rolling_init(&w, 1000, 0.0), 0);
    size_t total = 0;
    uint32_t count = 0;
    static const uint32_t sizes[] = {1000, 73, 73, 5000, 1, 9, 64, 777};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        if (k > 0) {
            assert_int_equal(rolling_resize(&w, sizes[k]), 0);
            assert_int_equal(w.window, sizes[k]);
            count = count < sizes[k] ? count : sizes[k];
            if (count)
                check_tail(&w, all, total, count);
        }
        for (int i = 0; i < 700; i++, total++) {
            all[total] = 1e6 + gen(UNIFORM, &r, total, sizes[k]);
            rolling_add(&w, (int64_t)total, all[total]);
            count = count < sizes[k] ? count + 1 : count;
            if (i % 13 == 0)
                check_tail(&w, all, total + 1, count);
        }
        check_tail(&w, all, total, count);
    }
    rolling_exclude_quality(&w);
    assert_int_equal(rolling_resize(&w, 0), -EINVAL);
    assert_int_equal(rolling_resize(&w, (1u << 26) + 1), -EINVAL);
    assert_int_equal(w.window, 777); /* unchanged */
    assert_int_equal(rolling_resize(&w, 50), 0);
    rolling_stats st;
    rolling_get_stats(&w, &st);
    assert_int_equal(st.excluded_quality, 1);
    rolling_free(&w);
}

static void test_catastrophic_cancellation_long(void **state)
{
    (void)state;
    /* Hundreds of thousands of evictions through the same sums. */
    run_sequence(CANCEL, 1000, 300000, 4999);
    run_sequence(DRIFT, 100, 300000, 4999);
}

static void test_empty_and_one_value(void **state)
{
    (void)state;
    rolling_window w;
    assert_int_equal(rolling_init(&w, 10, 0.0), 0);
    rolling_stats st;
    rolling_get_stats(&w, &st);
    assert_int_equal(st.count, 0);
    assert_true(isnan(st.mean) && isnan(st.stddev) && isnan(st.min) && isnan(st.max));
    assert_true(isnan(st.first) && isnan(st.last));

    assert_int_equal(rolling_add(&w, 5, 1e9 + 0.5), 1);
    rolling_get_stats(&w, &st);
    assert_int_equal(st.count, 1);
    assert_true(st.mean == 1e9 + 0.5 && st.min == st.mean && st.max == st.mean);
    assert_true(st.stddev == 0.0 && st.variance == 0.0);
    assert_true(st.first == st.last);
    assert_int_equal(st.first_t_ns, 5);
    assert_int_equal(st.last_t_ns, 5);
    assert_int_equal(st.changes, 0);
    rolling_free(&w);
}

static void test_nonfinite_excluded(void **state)
{
    (void)state;
    rolling_window w;
    assert_int_equal(rolling_init(&w, 4, 0.0), 0);
    assert_int_equal(rolling_add(&w, 1, 1.0), 1);
    assert_int_equal(rolling_add(&w, 2, NAN), 0);
    assert_int_equal(rolling_add(&w, 3, INFINITY), 0);
    assert_int_equal(rolling_add(&w, 4, -INFINITY), 0);
    assert_int_equal(rolling_add(&w, 5, 3.0), 1);
    rolling_exclude_quality(&w);
    rolling_stats st;
    rolling_get_stats(&w, &st);
    assert_int_equal(st.count, 2);
    assert_true(st.mean == 2.0);
    assert_true(fabs(st.stddev - sqrt(2.0)) < 1e-15);
    assert_int_equal(st.excluded_nonfinite, 3);
    assert_int_equal(st.excluded_quality, 1);
    assert_int_equal(st.added, 2);
    assert_int_equal(st.last_t_ns, 5);
    /* Only non-finite input: nothing in the window. */
    rolling_window e;
    assert_int_equal(rolling_init(&e, 4, 0.0), 0);
    assert_int_equal(rolling_add(&e, 1, NAN), 0);
    rolling_get_stats(&e, &st);
    assert_int_equal(st.count, 0);
    assert_true(isnan(st.mean));
    rolling_free(&e);
    rolling_free(&w);
}

static void test_constant_values(void **state)
{
    (void)state;
    rolling_window w;
    assert_int_equal(rolling_init(&w, 50, 0.0), 0);
    test_rng r;
    rng_seed(&r, 7);
    /* Wide values first, then a constant at an offset that defeats naive sums. */
    for (int i = 0; i < 50; i++)
        rolling_add(&w, i, 1e12 * rng_normal(&r));
    for (int i = 0; i < 10000; i++) {
        rolling_add(&w, 50 + i, 1e9 + 0.1);
        if (i >= 49) {
            rolling_stats st;
            rolling_get_stats(&w, &st);
            assert_true(st.stddev == 0.0);
            assert_true(st.mean == 1e9 + 0.1);
            assert_true(st.min == st.max);
        }
    }
    rolling_stats st;
    rolling_get_stats(&w, &st);
    assert_int_equal(st.changes, 0);
    rolling_free(&w);
}

static void test_changes_and_deadband(void **state)
{
    (void)state;
    rolling_window w;
    assert_int_equal(rolling_init(&w, 5, 0.5), 0);
    const double v[] = {1.0, 1.2, 2.0, 2.0, 5.0, 5.4, 5.4, 6.0};
    /* changes (|diff| > 0.5): 1.2 no, 2.0 yes, 2.0 no, 5.0 yes, 5.4 no, 5.4 no, 6.0 yes */
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        rolling_add(&w, (int64_t)i, v[i]);
    rolling_stats st;
    rolling_get_stats(&w, &st);
    /* window: 2.0 5.0 5.4 5.4 6.0 -> changes inside: 5.0, 6.0 */
    assert_int_equal(st.count, 5);
    assert_int_equal(st.changes, 2);
    assert_true(st.first == 2.0 && st.last == 6.0);
    rolling_free(&w);
}

static void test_overflowing_values(void **state)
{
    (void)state;
    rolling_window w;
    assert_int_equal(rolling_init(&w, 4, 0.0), 0);
    rolling_add(&w, 1, 1e300);
    rolling_add(&w, 2, -1e300);
    rolling_stats st;
    rolling_get_stats(&w, &st);
    assert_int_equal(st.count, 2);
    assert_true(st.max == 1e300 && st.min == -1e300);
    /* The squares overflow: the variance is reported as not finite, never
     * as a wrong finite number, and the window recovers afterwards. */
    assert_false(isfinite(st.variance) && st.variance < 1e300);
    for (int i = 0; i < 4; i++)
        rolling_add(&w, 3 + i, (double)i);
    rolling_get_stats(&w, &st);
    assert_true(fabs(st.mean - 1.5) < 1e-15);
    assert_true(fabs(st.variance - 5.0 / 3.0) < 1e-14);
    rolling_free(&w);
}

static void test_bad_init(void **state)
{
    (void)state;
    rolling_window w;
    assert_int_equal(rolling_init(&w, 0, 0.0), -EINVAL);
    assert_int_equal(rolling_init(&w, 10, -1.0), -EINVAL);
    assert_int_equal(rolling_init(&w, 10, NAN), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_one_value),
        cmocka_unit_test(test_nonfinite_excluded),
        cmocka_unit_test(test_constant_values),
        cmocka_unit_test(test_changes_and_deadband),
        cmocka_unit_test(test_overflowing_values),
        cmocka_unit_test(test_bad_init),
        cmocka_unit_test(test_random_sequences),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_catastrophic_cancellation_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

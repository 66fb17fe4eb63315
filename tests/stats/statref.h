/*
 * statref.h — reference computations and random data for the stats tests:
 * a straightforward two-pass mean/variance in long double (so the reference
 * itself is not the limit at a 1e9 offset), and a seeded generator.
 */
#ifndef SHMBUS_TEST_STATREF_H
#define SHMBUS_TEST_STATREF_H

#include <stddef.h>
#include <stdint.h>

typedef struct ref_stats {
    size_t count;
    double min, max, mean, variance, stddev, first, last;
} ref_stats;

/* Two-pass statistics of v[0..n); sample variance (n - 1), 0 for n == 1. */
void ref_compute(const double *v, size_t n, ref_stats *out);

/* Relative error |a - b| / |b| (absolute when b == 0). */
double rel_err(double a, double b);

typedef struct test_rng {
    uint64_t s;
} test_rng;
void rng_seed(test_rng *r, uint64_t seed);
uint64_t rng_next(test_rng *r);
double rng_uniform(test_rng *r); /* [0, 1) */
double rng_normal(test_rng *r);  /* mean 0, stddev 1 */

#endif

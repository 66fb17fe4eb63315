/*
 * statref.c — reference statistics and random numbers (see statref.h).
 */
#include "statref.h"

#include <math.h>

void ref_compute(const double *v, size_t n, ref_stats *out)
{
    out->count = n;
    if (n == 0) {
        out->min = out->max = out->mean = out->variance = out->stddev = NAN;
        out->first = out->last = NAN;
        return;
    }
    long double sum = 0;
    double mn = v[0], mx = v[0];
    for (size_t i = 0; i < n; i++) {
        sum += v[i];
        if (v[i] < mn)
            mn = v[i];
        if (v[i] > mx)
            mx = v[i];
    }
    long double mean = sum / (long double)n;
    long double ss = 0;
    for (size_t i = 0; i < n; i++) {
        long double d = (long double)v[i] - mean;
        ss += d * d;
    }
    out->min = mn;
    out->max = mx;
    out->mean = (double)mean;
    out->variance = n > 1 ? (double)(ss / (long double)(n - 1)) : 0.0;
    out->stddev = sqrt(out->variance);
    out->first = v[0];
    out->last = v[n - 1];
}

double rel_err(double a, double b)
{
    if (b == 0)
        return fabs(a);
    return fabs(a - b) / fabs(b);
}

void rng_seed(test_rng *r, uint64_t seed)
{
    r->s = seed ? seed : 0x9E3779B97F4A7C15ull;
}

uint64_t rng_next(test_rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double rng_uniform(test_rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double rng_normal(test_rng *r)
{
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

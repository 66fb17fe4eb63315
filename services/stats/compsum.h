/*
 * compsum.h — compensated (error-free transformation) running sums.
 *
 * A compsum keeps a sum and the rounding error of every addition (Knuth's
 * TwoSum, branch-free, six flops), so adding a value and later subtracting
 * the very same value leaves the sum where it was up to O(u^2) terms. The
 * rolling window relies on this: evictions subtract exactly what additions
 * added, and the error of the running sums no longer grows with the number
 * of updates. Needs strict IEEE evaluation: never build with -ffast-math.
 */
#ifndef SHMBUS_STATS_COMPSUM_H
#define SHMBUS_STATS_COMPSUM_H

typedef struct compsum {
    double sum; /* rounded running sum */
    double err; /* accumulated rounding errors; the value is sum + err */
} compsum;

static inline void compsum_reset(compsum *s)
{
    s->sum = 0.0;
    s->err = 0.0;
}

static inline void compsum_add(compsum *s, double x)
{
    double t = s->sum + x;
    double xp = t - s->sum;
    s->err += (s->sum - (t - xp)) + (x - xp);
    s->sum = t;
}

static inline double compsum_value(const compsum *s)
{
    return s->sum + s->err;
}

#endif

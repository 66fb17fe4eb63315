/*
 * trend.h — how a tag moves: least-squares slope, change rate, and the poll
 * interval its changes suggest.
 *
 * Suggested interval: a tag whose value changes on average every Tc seconds
 * (Tc = time span / changes seen) is polled often enough at Tc / 2 (two
 * samples per change, the Nyquist argument); the suggestion is clamped to
 * [min_ms, max_ms]. A tag that changes at every sample gets half its
 * current interval (it may be under-sampled); one that never changed over
 * the window gets max_ms. Too little data (fewer than 2 samples or no time
 * span) gives no suggestion (NaN).
 */
#ifndef SHMBUS_STATS_TREND_H
#define SHMBUS_STATS_TREND_H

#include "statpoint.h"

#include <stddef.h>
#include <stdint.h>

/* Least-squares slope of value over time, in value units per second, over
 * pts[0..n) (any time order). Two-pass around the means. Returns 0, or
 * -EDOM when n < 2 or all times are equal (*slope = NaN then). */
int trend_least_squares(const stat_point *pts, size_t n, double *slope_per_s);

/* Changes per second over span_ns; NaN when span_ns <= 0. */
double trend_change_rate(uint32_t changes, int64_t span_ns);

typedef struct suggest_limits {
    double min_ms; /* never suggest faster; default 100 */
    double max_ms; /* never suggest slower; default 60000 */
} suggest_limits;

/* Suggested poll interval in ms (see above); NaN without enough data. */
double trend_suggest_interval_ms(const suggest_limits *lim, uint32_t samples, uint32_t changes,
                                 int64_t span_ns);

#endif

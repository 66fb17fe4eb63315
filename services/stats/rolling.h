/*
 * rolling.h — statistics over the last N values of one tag, O(1) amortized
 * per value.
 *
 * Keeps the values (and their timestamps) in a ring, min and max in two
 * monotonic deques of ring indices, and mean and variance as compensated
 * sums of deviations from a shift K:
 *     S1 = sum(x - K),  S2 = sum((x - K)^2)
 * An eviction subtracts exactly the terms its addition added (same K, same
 * rounding), so errors do not accumulate with the number of updates. Every N
 * additions K is moved to the window's mean and the sums are recomputed from
 * the ring (O(N) per N additions); a query that finds K far from the mean
 * relative to the spread (where S2 - S1^2/n would cancel) recenters first.
 * That keeps the variance within about 1e-12 relative of a two-pass
 * computation even for a 1e9 offset with 1e-3 variance.
 *
 * Values that are NaN or infinite are excluded and counted; the caller
 * counts bad-quality values through rolling_exclude_quality(). The window is
 * by arrival order: timestamps only feed first/last times and the trend.
 * Not thread-safe: one owner.
 */
#ifndef SHMBUS_STATS_ROLLING_H
#define SHMBUS_STATS_ROLLING_H

#include "compsum.h"
#include "statpoint.h"

#include <stdint.h>

typedef struct rolling_window {
    uint32_t window; /* N: values kept */
    uint32_t count;  /* values now in the window (<= window) */
    uint64_t mask;   /* ring capacity - 1 (capacity: power of two >= window) */
    uint64_t next;   /* absolute index of the next value (values ever added) */
    double *values;
    int64_t *times;
    uint8_t *changed; /* 1 when the value differed from its predecessor by > deadband */
    uint64_t *min_q;  /* absolute indices, values increasing front to back */
    uint64_t *max_q;  /* absolute indices, values decreasing front to back */
    uint64_t min_front, min_back, max_front, max_back;
    double shift; /* K */
    compsum s1, s2;
    uint32_t since_recenter;
    uint32_t changed_in_ring; /* sum of changed[] over the window */
    double deadband;          /* a change is |x - previous| > deadband */
    double previous;          /* last value added, even if evicted since */
    int has_previous;
    uint64_t added_base; /* values accepted before a restore (see rolling_restore_counts) */
    uint64_t excluded_nonfinite;
    uint64_t excluded_quality;
    uint64_t recenters;
} rolling_window;

typedef struct rolling_stats {
    uint32_t count;
    double min, max, mean;
    double variance, stddev; /* sample (n - 1); 0 for one value; NaN when empty */
    double first, last;      /* oldest and newest value of the window */
    int64_t first_t_ns, last_t_ns;
    uint32_t changes; /* changes between consecutive values of the window */
    uint64_t added;   /* values ever accepted */
    uint64_t excluded_nonfinite, excluded_quality;
} rolling_stats;

/* Prepares a window of `window` values (1..2^26). deadband >= 0 defines a
 * change for the change count. Returns 0, -EINVAL or -ENOMEM. */
int rolling_init(rolling_window *w, uint32_t window, double deadband);
void rolling_free(rolling_window *w);

/* Adds a value observed at t_ns. Returns 1 when it entered the window, 0
 * when it was excluded as NaN/inf (and counted). */
int rolling_add(rolling_window *w, int64_t t_ns, double v);

/* Counts a value that was not added because of its quality code. */
void rolling_exclude_quality(rolling_window *w);

/* Fills *out. May recenter the sums first (O(N), rare), hence not const. */
void rolling_get_stats(rolling_window *w, rolling_stats *out);

/* Copies the window, oldest first, into out (room for w->count points);
 * returns the number copied. */
uint32_t rolling_copy(const rolling_window *w, stat_point *out);

/* After re-adding a saved window's values: makes the counters continue the
 * saved totals (added includes the re-added values). */
void rolling_restore_counts(rolling_window *w, uint64_t added, uint64_t excluded_nonfinite,
                            uint64_t excluded_quality);

/* Value i of the window, 0 = oldest (i < count). */
stat_point rolling_at(const rolling_window *w, uint32_t i);

#endif

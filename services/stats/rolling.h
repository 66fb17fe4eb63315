/*
 * rolling.h — statistics over the last N values of one tag, O(1) amortized
 * per value.
 *
 * Keeps the values (and their timestamps) in a ring; min and max by the van
 * Herk / Gil-Werman block method (the window is the tail of the previous
 * block of N values plus the head of the current one: suffix extremes of
 * the previous block, computed in one pass when it closes, and running
 * extremes of the current block; branch-free, 2 compares per value plus one
 * pass per N values); mean and variance as compensated sums of deviations
 * from a shift K:
 *     S1 = sum(x - K),  S2 = sum((x - K)^2)
 * An eviction subtracts exactly the terms its addition added (same K, same
 * rounding), so errors do not accumulate with the number of updates. Every 4N
 * additions K is moved to the window's mean and the sums are recomputed from
 * the ring (O(N) per 4N additions); a query that finds K far from the mean
 * relative to the spread (where S2 - S1^2/n would cancel), or finds that a
 * term far larger than today's mean square passed through the sums since
 * (its rounding noise would dominate once it is gone), recenters first.
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
    /* Min and max: values arrive in blocks of N (by absolute index); the
     * window is the tail of the previous block plus the head of the current
     * one. suf_min[i]/suf_max[i]: extremes of the previous block from its
     * position i on (+-inf before the first block closes); pre_min/pre_max:
     * extremes of the current block's head_len values. */
    double *suf_min, *suf_max;
    double pre_min, pre_max;
    uint32_t head_len;
    double shift; /* K */
    compsum s1, s2;
    double max_sq;            /* largest (x - K)^2 added since the last recentering */
    uint64_t since_recenter;  /* additions since K last moved */
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

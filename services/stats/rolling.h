/*
 * rolling.h — statistics over the last N values of one tag, O(1) amortized
 * per value.
 *
 * Keeps the values (and their timestamps) in a ring of exactly N slots; min
 * and max by the van Herk / Gil-Werman block method (the window is the
 * tail of the previous block of N values plus the head of the current one:
 * suffix extremes of the previous block, computed in one pass when it
 * closes and kept at every 8th position, and running extremes of the
 * current block; branch-free, 2 compares per value plus one pass per N
 * values, and at most 7 values scanned per query); mean and variance as compensated sums of deviations
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

#include <stddef.h>
#include <stdint.h>

/* Suffix extremes of the closed block are kept at every STRIDE-th position
 * only; a query finishes them with at most STRIDE - 1 values of the ring.
 * That costs 2 x 8 / STRIDE bytes per value instead of 16. */
#define ROLLING_SUFFIX_STRIDE 8

typedef struct rolling_window {
    uint32_t window; /* N: values kept */
    uint32_t count;  /* values now in the window (<= window) */
    uint32_t pos;    /* slot of the next value: next mod N (the ring holds exactly N) */
    uint32_t head_len;
    uint64_t next; /* absolute index of the next value (values ever added) */
    /* One allocation (rolling_state_bytes): values and times of the ring,
     * the strided suffix extremes, one change bit per slot. */
    double *values;
    int64_t *times;
    /* Min and max: values arrive in blocks of N (by absolute index); the
     * window is the tail of the previous block plus the head of the current
     * one (head_len values). suf_min[j]/suf_max[j]: extremes of the
     * previous block from its position j * STRIDE on; pre_min/pre_max:
     * extremes of the current block's head. As the ring holds exactly N
     * values, position p of either block lives in the same slot, so the
     * previous block's positions from head_len on are still in the ring. */
    double *suf_min, *suf_max;
    uint64_t *changed; /* bit set when the value differed from its predecessor by > deadband */
    double pre_min, pre_max;
    double shift; /* K */
    compsum s1, s2;
    double max_sq;            /* largest (x - K)^2 added since the last recentering */
    uint64_t since_recenter;  /* additions since K last moved */
    uint32_t changed_in_ring; /* set bits of changed[] over the window */
    uint32_t has_previous;
    double deadband; /* a change is |x - previous| > deadband */
    double previous; /* last value added, even if evicted since */
    uint64_t added_base; /* values accepted before a restore or resize */
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

/* Bytes of the one allocation behind a window of `window` values:
 * 16 per value (value, time), 2 x 8 per ROLLING_SUFFIX_STRIDE values, one
 * bit per value. */
size_t rolling_state_bytes(uint32_t window);

/* Gives the window room for `window` values (1..2^26), keeping the newest
 * of those it holds; the statistics are then those of the kept values and
 * the counters go on. Returns 0, -EINVAL or -ENOMEM (w unchanged). */
int rolling_resize(rolling_window *w, uint32_t window);

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

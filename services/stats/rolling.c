/*
 * rolling.c — rolling-window statistics (see rolling.h for the method).
 */
#include "rolling.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A query recenters when (mean - K)^2 exceeds this many variances: the
 * cancellation in S2 - S1^2/n then costs at most about u * 1e4 ~ 1e-12 of
 * relative error. */
#define RECENTER_RATIO 1e4

#define WINDOW_MAX (1u << 26)

static uint64_t ring_capacity(uint32_t window)
{
    uint64_t cap = 1;
    while (cap < window)
        cap <<= 1;
    return cap;
}

int rolling_init(rolling_window *w, uint32_t window, double deadband)
{
    memset(w, 0, sizeof *w);
    if (window == 0 || window > WINDOW_MAX || !(deadband >= 0) || !isfinite(deadband))
        return -EINVAL;
    uint64_t cap = ring_capacity(window);
    w->window = window;
    w->mask = cap - 1;
    w->deadband = deadband;
    w->values = malloc(cap * sizeof *w->values);
    w->times = malloc(cap * sizeof *w->times);
    w->changed = malloc(cap * sizeof *w->changed);
    w->min_q = malloc(cap * sizeof *w->min_q);
    w->max_q = malloc(cap * sizeof *w->max_q);
    if (!w->values || !w->times || !w->changed || !w->min_q || !w->max_q) {
        rolling_free(w);
        return -ENOMEM;
    }
    return 0;
}

void rolling_free(rolling_window *w)
{
    free(w->values);
    free(w->times);
    free(w->changed);
    free(w->min_q);
    free(w->max_q);
    memset(w, 0, sizeof *w);
}

/* Moves K to the window's mean and recomputes S1 and S2 exactly from the
 * ring: two passes, the first with a compensated sum. */
static void recenter(rolling_window *w)
{
    uint64_t first = w->next - w->count;
    compsum total;
    compsum_reset(&total);
    for (uint64_t i = first; i < w->next; i++)
        compsum_add(&total, w->values[i & w->mask]);
    double k = w->count ? compsum_value(&total) / w->count : 0.0;
    if (!isfinite(k))
        k = 0.0;
    compsum_reset(&w->s1);
    compsum_reset(&w->s2);
    for (uint64_t i = first; i < w->next; i++) {
        double d = w->values[i & w->mask] - k;
        compsum_add(&w->s1, d);
        compsum_add(&w->s2, d * d);
    }
    w->shift = k;
    w->since_recenter = 0;
    w->recenters++;
}

static void evict_oldest(rolling_window *w)
{
    uint64_t idx = w->next - w->count;
    uint64_t slot = idx & w->mask;
    double d = w->values[slot] - w->shift; /* bit-identical to the term added */
    compsum_add(&w->s1, -d);
    compsum_add(&w->s2, -(d * d));
    w->changed_in_ring -= w->changed[slot];
    if (w->min_front != w->min_back && w->min_q[w->min_front & w->mask] == idx)
        w->min_front++;
    if (w->max_front != w->max_back && w->max_q[w->max_front & w->mask] == idx)
        w->max_front++;
    w->count--;
}

int rolling_add(rolling_window *w, int64_t t_ns, double v)
{
    if (!isfinite(v)) {
        w->excluded_nonfinite++;
        return 0;
    }
    if (w->count == w->window)
        evict_oldest(w);

    uint64_t idx = w->next++;
    uint64_t slot = idx & w->mask;
    uint8_t changed = w->has_previous && fabs(v - w->previous) > w->deadband;
    w->values[slot] = v;
    w->times[slot] = t_ns;
    w->changed[slot] = changed;
    w->changed_in_ring += changed;
    w->previous = v;
    w->has_previous = 1;
    w->count++;

    /* Monotonic deques: drop entries that can never be the extreme again
     * because a newer value is at least as extreme. */
    while (w->min_back != w->min_front &&
           w->values[w->min_q[(w->min_back - 1) & w->mask] & w->mask] >= v)
        w->min_back--;
    w->min_q[w->min_back++ & w->mask] = idx;
    while (w->max_back != w->max_front &&
           w->values[w->max_q[(w->max_back - 1) & w->mask] & w->mask] <= v)
        w->max_back--;
    w->max_q[w->max_back++ & w->mask] = idx;

    double d = v - w->shift;
    compsum_add(&w->s1, d);
    compsum_add(&w->s2, d * d);
    if (++w->since_recenter >= w->window)
        recenter(w);
    return 1;
}

void rolling_exclude_quality(rolling_window *w)
{
    w->excluded_quality++;
}

void rolling_restore_counts(rolling_window *w, uint64_t added, uint64_t excluded_nonfinite,
                            uint64_t excluded_quality)
{
    w->added_base = added > w->next ? added - w->next : 0;
    w->excluded_nonfinite = excluded_nonfinite;
    w->excluded_quality = excluded_quality;
}

stat_point rolling_at(const rolling_window *w, uint32_t i)
{
    uint64_t slot = (w->next - w->count + i) & w->mask;
    return (stat_point){.t_ns = w->times[slot], .v = w->values[slot]};
}

uint32_t rolling_copy(const rolling_window *w, stat_point *out)
{
    for (uint32_t i = 0; i < w->count; i++)
        out[i] = rolling_at(w, i);
    return w->count;
}

/* Sample variance from the running sums; *mean_dev receives S1 / n. */
static double variance_from_sums(const rolling_window *w, double *mean_dev)
{
    double n = (double)w->count;
    double s1 = compsum_value(&w->s1);
    double s2 = compsum_value(&w->s2);
    double md = s1 / n;
    *mean_dev = md;
    return (s2 - s1 * md) / (n - 1.0);
}

void rolling_get_stats(rolling_window *w, rolling_stats *out)
{
    memset(out, 0, sizeof *out);
    out->count = w->count;
    out->added = w->next + w->added_base;
    out->excluded_nonfinite = w->excluded_nonfinite;
    out->excluded_quality = w->excluded_quality;
    if (w->count == 0) {
        out->min = out->max = out->mean = out->variance = out->stddev = NAN;
        out->first = out->last = NAN;
        return;
    }
    uint64_t first = w->next - w->count;
    uint64_t last = w->next - 1;
    out->first = w->values[first & w->mask];
    out->first_t_ns = w->times[first & w->mask];
    out->last = w->values[last & w->mask];
    out->last_t_ns = w->times[last & w->mask];
    out->min = w->values[w->min_q[w->min_front & w->mask] & w->mask];
    out->max = w->values[w->max_q[w->max_front & w->mask] & w->mask];
    /* The oldest value's flag compares it with a value already gone. */
    out->changes = w->changed_in_ring - w->changed[first & w->mask];

    if (out->min == out->max) { /* constant: exact, whatever the sums say */
        out->mean = out->min;
        out->variance = out->stddev = 0.0;
        return;
    }
    double md;
    double var = variance_from_sums(w, &md);
    if (!isfinite(var) || !(var > 0) || md * md > RECENTER_RATIO * var) {
        recenter(w);
        var = variance_from_sums(w, &md);
    }
    double mean = w->shift + md;
    if (mean < out->min)
        mean = out->min;
    if (mean > out->max)
        mean = out->max;
    if (var < 0)
        var = 0;
    out->mean = mean;
    out->variance = var;
    out->stddev = sqrt(var);
}

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

/* A query also recenters when a term added since the last recentering was
 * this many times the current mean square: the sums' compensation terms
 * still carry rounding noise of order u^2 * that term, which would matter
 * once the large values are gone (u^2 * 1e8 * sqrt(additions) stays below
 * 1e-15 relative). */
#define RANGE_RATIO 1e8

#define WINDOW_MAX (1u << 26)
#define RECENTER_EVERY 4 /* windows' worth of additions between recenterings */

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
    w->suf_min = malloc((size_t)window * sizeof *w->suf_min);
    w->suf_max = malloc((size_t)window * sizeof *w->suf_max);
    if (!w->values || !w->times || !w->changed || !w->suf_min || !w->suf_max) {
        rolling_free(w);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < window; i++) { /* no previous block yet */
        w->suf_min[i] = INFINITY;
        w->suf_max[i] = -INFINITY;
    }
    w->pre_min = INFINITY;
    w->pre_max = -INFINITY;
    return 0;
}

void rolling_free(rolling_window *w)
{
    free(w->values);
    free(w->times);
    free(w->changed);
    free(w->suf_min);
    free(w->suf_max);
    memset(w, 0, sizeof *w);
}

/* Moves K to the window's mean and recomputes S1 and S2 exactly from the
 * ring in one compensated pass. The new K is the mean the current sums give
 * (K only has to be near the mean, not equal to it); when the sums are not
 * finite (a past overflow), a compensated pass over the values finds it. */
static void recenter(rolling_window *w)
{
    uint64_t first = w->next - w->count;
    double k = w->count ? w->shift + compsum_value(&w->s1) / w->count : 0.0;
    if (!isfinite(k)) {
        compsum total;
        compsum_reset(&total);
        for (uint64_t i = first; i < w->next; i++)
            compsum_add(&total, w->values[i & w->mask]);
        k = w->count ? compsum_value(&total) / w->count : 0.0;
        if (!isfinite(k))
            k = 0.0;
    }
    compsum_reset(&w->s1);
    compsum_reset(&w->s2);
    double max_sq = 0.0;
    for (uint64_t i = first; i < w->next; i++) {
        double d = w->values[i & w->mask] - k;
        double dd = d * d;
        compsum_add(&w->s1, d);
        compsum_add(&w->s2, dd);
        max_sq = dd > max_sq ? dd : max_sq;
    }
    w->max_sq = max_sq;
    w->shift = k;
    w->since_recenter = 0;
    w->recenters++;
}

/* Closes a block of N values (the window now holds exactly that block):
 * suffix extremes of it, one backward pass, for the next N queries. */
static void close_block(rolling_window *w)
{
    uint64_t first = w->next - w->window;
    double mn = INFINITY, mx = -INFINITY;
    for (uint32_t i = w->window; i-- > 0;) {
        double x = w->values[(first + i) & w->mask];
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        w->suf_min[i] = mn;
        w->suf_max[i] = mx;
    }
}

/* The hot path. Fields are copied to locals and written back once: the
 * value arrays are double, like the sums, so the compiler could otherwise
 * not keep the sums in registers across the array stores. */
int rolling_add(rolling_window *w, int64_t t_ns, double v)
{
    if (!isfinite(v)) {
        w->excluded_nonfinite++;
        return 0;
    }
    const uint64_t mask = w->mask;
    const double shift = w->shift;
    compsum s1 = w->s1, s2 = w->s2;
    uint32_t count = w->count;

    if (count == w->window) { /* evict the oldest */
        uint64_t old_slot = (w->next - count) & mask;
        double d = w->values[old_slot] - shift; /* bit-identical to the term added */
        compsum_add(&s1, -d);
        compsum_add(&s2, -(d * d));
        w->changed_in_ring -= w->changed[old_slot];
        count--;
    }

    uint64_t slot = w->next & mask;
    uint8_t changed = w->has_previous && fabs(v - w->previous) > w->deadband;
    w->values[slot] = v;
    w->times[slot] = t_ns;
    w->changed[slot] = changed;
    w->changed_in_ring += changed;
    w->previous = v;
    w->has_previous = 1;
    w->next++;
    w->count = count + 1;

    /* Extremes of the current block so far; a full block is closed. */
    double pmin = w->pre_min, pmax = w->pre_max;
    pmin = v < pmin ? v : pmin;
    pmax = v > pmax ? v : pmax;
    uint32_t head = w->head_len + 1;
    if (head == w->window) {
        close_block(w);
        head = 0;
        pmin = INFINITY;
        pmax = -INFINITY;
    }
    w->head_len = head;
    w->pre_min = pmin;
    w->pre_max = pmax;

    double d = v - shift;
    double dd = d * d;
    compsum_add(&s1, d);
    compsum_add(&s2, dd);
    w->s1 = s1;
    w->s2 = s2;
    if (dd > w->max_sq)
        w->max_sq = dd;
    /* Keep K near a drifting mean; queries recenter on their own when
     * needed, so this only has to be occasional: O(N) per 4N additions. */
    if (++w->since_recenter >= RECENTER_EVERY * (uint64_t)w->window)
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

/* Sample variance from the running sums; *mean_dev receives S1 / n and
 * *mean_sq S2 / n. */
static double variance_from_sums(const rolling_window *w, double *mean_dev, double *mean_sq)
{
    double n = (double)w->count;
    double s1 = compsum_value(&w->s1);
    double s2 = compsum_value(&w->s2);
    double md = s1 / n;
    *mean_dev = md;
    *mean_sq = s2 / n;
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
    /* The window: the last N - head_len values of the previous block, then
     * the head_len values of the current one. */
    double smin = w->suf_min[w->head_len], smax = w->suf_max[w->head_len];
    out->min = smin < w->pre_min ? smin : w->pre_min;
    out->max = smax > w->pre_max ? smax : w->pre_max;
    /* The oldest value's flag compares it with a value already gone. */
    out->changes = w->changed_in_ring - w->changed[first & w->mask];

    if (out->min == out->max) { /* constant: exact, whatever the sums say */
        out->mean = out->min;
        out->variance = out->stddev = 0.0;
        return;
    }
    double md, msq;
    double var = variance_from_sums(w, &md, &msq);
    if (!isfinite(var) || !(var > 0) || md * md > RECENTER_RATIO * var ||
        !(w->max_sq <= RANGE_RATIO * msq)) {
        recenter(w);
        var = variance_from_sums(w, &md, &msq);
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

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
#define STRIDE ROLLING_SUFFIX_STRIDE

static size_t suffix_entries(uint32_t window)
{
    return ((size_t)window + STRIDE - 1) / STRIDE;
}

static size_t bit_words(uint32_t window)
{
    return ((size_t)window + 63) / 64;
}

size_t rolling_state_bytes(uint32_t window)
{
    return (size_t)window * (sizeof(double) + sizeof(int64_t)) +
           2 * suffix_entries(window) * sizeof(double) + bit_words(window) * sizeof(uint64_t);
}

int rolling_init(rolling_window *w, uint32_t window, double deadband)
{
    memset(w, 0, sizeof *w);
    if (window == 0 || window > WINDOW_MAX || !(deadband >= 0) || !isfinite(deadband))
        return -EINVAL;
    /* One block, every array 8-byte aligned: doubles first, then the bits. */
    char *mem = malloc(rolling_state_bytes(window));
    if (!mem)
        return -ENOMEM;
    size_t nsuf = suffix_entries(window);
    w->values = (double *)mem;
    w->times = (int64_t *)(w->values + window);
    w->suf_min = (double *)(w->times + window);
    w->suf_max = w->suf_min + nsuf;
    w->changed = (uint64_t *)(w->suf_max + nsuf);
    memset(w->changed, 0, bit_words(window) * sizeof *w->changed);
    w->window = window;
    w->deadband = deadband;
    for (size_t j = 0; j < nsuf; j++) { /* no previous block yet */
        w->suf_min[j] = INFINITY;
        w->suf_max[j] = -INFINITY;
    }
    w->pre_min = INFINITY;
    w->pre_max = -INFINITY;
    return 0;
}

void rolling_free(rolling_window *w)
{
    free(w->values);
    memset(w, 0, sizeof *w);
}

/* Slot of the window's value i (0 = oldest). */
static uint32_t slot_of(const rolling_window *w, uint32_t i)
{
    uint32_t s = w->pos + w->window - w->count + i; /* < 2 * window <= 2^27 */
    return s >= w->window ? s - w->window : s;
}

static unsigned changed_bit(const rolling_window *w, uint32_t slot)
{
    return (unsigned)(w->changed[slot >> 6] >> (slot & 63)) & 1u;
}

/* Moves K to the window's mean and recomputes S1 and S2 exactly from the
 * ring in one compensated pass. The new K is the mean the current sums give
 * (K only has to be near the mean, not equal to it); when the sums are not
 * finite (a past overflow), a compensated pass over the values finds it. */
static void recenter(rolling_window *w)
{
    double k = w->count ? w->shift + compsum_value(&w->s1) / w->count : 0.0;
    if (!isfinite(k)) {
        compsum total;
        compsum_reset(&total);
        for (uint32_t i = 0; i < w->count; i++)
            compsum_add(&total, w->values[slot_of(w, i)]);
        k = w->count ? compsum_value(&total) / w->count : 0.0;
        if (!isfinite(k))
            k = 0.0;
    }
    compsum_reset(&w->s1);
    compsum_reset(&w->s2);
    double max_sq = 0.0;
    for (uint32_t i = 0; i < w->count; i++) {
        double d = w->values[slot_of(w, i)] - k;
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

/* Closes a block of N values (the ring now holds exactly that block, its
 * position p in slot p + pos mod N): suffix extremes of it, one backward
 * pass, kept at every STRIDE-th position for the next N queries. */
static void close_block(rolling_window *w)
{
    double mn = INFINITY, mx = -INFINITY;
    for (uint32_t i = w->window; i-- > 0;) {
        uint32_t s = w->pos + i;
        double x = w->values[s >= w->window ? s - w->window : s];
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
        if (i % STRIDE == 0) {
            w->suf_min[i / STRIDE] = mn;
            w->suf_max[i / STRIDE] = mx;
        }
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
    const double shift = w->shift;
    compsum s1 = w->s1, s2 = w->s2;
    uint32_t count = w->count;
    const uint32_t slot = w->pos; /* when full, also the oldest value's slot */
    uint64_t *word = &w->changed[slot >> 6];
    const unsigned bit = slot & 63;

    if (count == w->window) { /* evict the oldest */
        double d = w->values[slot] - shift; /* bit-identical to the term added */
        compsum_add(&s1, -d);
        compsum_add(&s2, -(d * d));
        w->changed_in_ring -= (uint32_t)(*word >> bit) & 1u;
        count--;
    }

    uint64_t changed = w->has_previous && fabs(v - w->previous) > w->deadband;
    w->values[slot] = v;
    w->times[slot] = t_ns;
    *word = (*word & ~(1ull << bit)) | (changed << bit);
    w->changed_in_ring += (uint32_t)changed;
    w->previous = v;
    w->has_previous = 1;
    w->next++;
    w->pos = slot + 1 == w->window ? 0 : slot + 1;
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
    uint32_t slot = slot_of(w, i);
    return (stat_point){.t_ns = w->times[slot], .v = w->values[slot]};
}

int rolling_resize(rolling_window *w, uint32_t window)
{
    if (window == w->window)
        return 0;
    rolling_window nw;
    int rc = rolling_init(&nw, window, w->deadband);
    if (rc)
        return rc;
    uint32_t keep = w->count < window ? w->count : window;
    for (uint32_t i = w->count - keep; i < w->count; i++) {
        stat_point p = rolling_at(w, i);
        rolling_add(&nw, p.t_ns, p.v);
    }
    nw.added_base = w->next + w->added_base - nw.next;
    nw.excluded_nonfinite = w->excluded_nonfinite;
    nw.excluded_quality = w->excluded_quality;
    nw.recenters += w->recenters;
    if (keep == 0 && w->has_previous) { /* nothing kept, yet changes continue from there */
        nw.previous = w->previous;
        nw.has_previous = 1;
    }
    rolling_free(w);
    *w = nw;
    return 0;
}

uint32_t rolling_copy(const rolling_window *w, stat_point *out)
{
    for (uint32_t i = 0; i < w->count; i++)
        out[i] = rolling_at(w, i);
    return w->count;
}

/* The window's extremes: the previous block from position head_len on
 * (the strided suffix from the next multiple of STRIDE, the few positions
 * before it read from the ring, where they still are), then the current
 * block's head. Before the first block closes there is no previous block
 * (count == head_len) and the suffix entries are +-inf. */
static void window_extremes(const rolling_window *w, double *mn_out, double *mx_out)
{
    uint32_t h = w->head_len;
    double mn = w->pre_min, mx = w->pre_max;
    if (w->count > h) {
        uint32_t j = (h + STRIDE - 1) / STRIDE;
        if ((size_t)j < suffix_entries(w->window)) {
            mn = w->suf_min[j] < mn ? w->suf_min[j] : mn;
            mx = w->suf_max[j] > mx ? w->suf_max[j] : mx;
        }
        uint32_t stop = j * STRIDE < w->window ? j * STRIDE : w->window;
        for (uint32_t p = h; p < stop; p++) { /* oldest values: slots pos + p - h */
            double x = w->values[slot_of(w, p - h)];
            mn = x < mn ? x : mn;
            mx = x > mx ? x : mx;
        }
    }
    *mn_out = mn;
    *mx_out = mx;
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
    uint32_t first = slot_of(w, 0), last = slot_of(w, w->count - 1);
    out->first = w->values[first];
    out->first_t_ns = w->times[first];
    out->last = w->values[last];
    out->last_t_ns = w->times[last];
    double mn, mx;
    window_extremes(w, &mn, &mx);
    out->min = mn;
    out->max = mx;
    /* The oldest value's flag compares it with a value already gone. */
    out->changes = w->changed_in_ring - changed_bit(w, first);

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

/*
 * trend.c — slope, change rate and suggested poll interval (see trend.h).
 */
#include "trend.h"

#include <errno.h>
#include <math.h>

int trend_least_squares(const stat_point *pts, size_t n, double *slope_per_s)
{
    *slope_per_s = NAN;
    if (n < 2)
        return -EDOM;
    /* Times relative to the first point, in seconds, keep the sums small. */
    int64_t t0 = pts[0].t_ns;
    double st = 0, sv = 0;
    for (size_t i = 0; i < n; i++) {
        st += (double)(pts[i].t_ns - t0) * 1e-9;
        sv += pts[i].v;
    }
    double mt = st / (double)n, mv = sv / (double)n;
    double sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        double dt = (double)(pts[i].t_ns - t0) * 1e-9 - mt;
        sxx += dt * dt;
        sxy += dt * (pts[i].v - mv);
    }
    if (!(sxx > 0))
        return -EDOM;
    *slope_per_s = sxy / sxx;
    return 0;
}

double trend_change_rate(uint32_t changes, int64_t span_ns)
{
    if (span_ns <= 0)
        return NAN;
    return (double)changes / ((double)span_ns * 1e-9);
}

double trend_suggest_interval_ms(const suggest_limits *lim, uint32_t samples, uint32_t changes,
                                 int64_t span_ns)
{
    double min_ms = lim && lim->min_ms > 0 ? lim->min_ms : 100.0;
    double max_ms = lim && lim->max_ms > 0 ? lim->max_ms : 60000.0;
    if (max_ms < min_ms)
        max_ms = min_ms;
    if (samples < 2 || span_ns <= 0)
        return NAN;
    if (changes == 0)
        return max_ms;
    double between_changes_ms = (double)span_ns * 1e-6 / (double)changes;
    double ms = between_changes_ms / 2.0;
    if (ms < min_ms)
        ms = min_ms;
    if (ms > max_ms)
        ms = max_ms;
    return ms;
}

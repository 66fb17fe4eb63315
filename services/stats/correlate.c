/*
 * correlate.c — grid alignment and Pearson correlation (see correlate.h).
 */
#include "correlate.h"

#include "interp.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

double correlate_pearson(const double *x, const double *y, size_t n)
{
    if (n < 2)
        return NAN;
    double sx = 0, sy = 0;
    for (size_t i = 0; i < n; i++) {
        sx += x[i];
        sy += y[i];
    }
    double mx = sx / (double)n, my = sy / (double)n;
    double sxx = 0, syy = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
    }
    if (!(sxx > 0) || !(syy > 0))
        return NAN;
    double r = sxy / sqrt(sxx * syy);
    return r > 1 ? 1 : r < -1 ? -1 : r;
}

int correlate_overlap(const timebuf *const *bufs, size_t k, int64_t *from_ns, int64_t *to_ns)
{
    int64_t from = INT64_MIN, to = INT64_MAX;
    for (size_t i = 0; i < k; i++) {
        if (bufs[i]->count == 0)
            return -ERANGE;
        int64_t oldest = timebuf_at(bufs[i], 0).t_ns;
        int64_t newest = timebuf_at(bufs[i], bufs[i]->count - 1).t_ns;
        if (oldest > from)
            from = oldest;
        if (newest < to)
            to = newest;
    }
    if (from >= to)
        return -ERANGE;
    *from_ns = from;
    *to_ns = to;
    return 0;
}

/* Grid time j of points over [from, to], exact in integers. */
static int64_t grid_time(const correlate_request *req, uint32_t j)
{
    uint64_t span = (uint64_t)req->to_ns - (uint64_t)req->from_ns;
    uint64_t steps = req->points - 1;
    /* span / steps * j + remainder share, without 128-bit overflow */
    uint64_t q = span / steps, r = span % steps;
    uint64_t off = q * j + (uint64_t)((double)r * (double)j / (double)steps);
    return (int64_t)((uint64_t)req->from_ns + off);
}

int correlate_aligned(const correlate_request *req, double *matrix, uint32_t *aligned)
{
    *aligned = 0;
    if (req->k < 2 || req->k > CORRELATE_MAX_TAGS || req->points < 2 || req->points > 100000 ||
        req->from_ns >= req->to_ns)
        return -EINVAL;
    size_t k = req->k;
    double *series = malloc(k * req->points * sizeof *series);
    if (!series)
        return -ENOMEM;
    uint32_t n = 0;
    for (uint32_t j = 0; j < req->points; j++) {
        int64_t t = grid_time(req, j);
        int covered = 1;
        for (size_t i = 0; i < k && covered; i++) {
            interp_result r;
            int pos = interp_at(req->bufs[i], t, req->modes ? req->modes[i] : INTERP_LINEAR, &r);
            if (pos != INTERP_EXACT && pos != INTERP_BETWEEN)
                covered = 0;
            else
                series[i * req->points + n] = r.value;
        }
        if (covered)
            n++;
    }
    for (size_t a = 0; a < k; a++) {
        for (size_t b = a; b < k; b++) {
            double r = correlate_pearson(series + a * req->points, series + b * req->points, n);
            matrix[a * k + b] = matrix[b * k + a] = r;
        }
    }
    free(series);
    *aligned = n;
    return 0;
}

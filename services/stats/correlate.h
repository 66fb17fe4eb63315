/*
 * correlate.h — Pearson correlation between tags, over aligned windows.
 *
 * Tags are sampled at different times, so they are first aligned on a
 * common grid: `points` evenly spaced times from from_ns to to_ns, each tag
 * interpolated there (linear or step, as for value-at-time queries). A grid
 * time where any tag has no stored neighbour on both sides is skipped, so
 * every pair is computed over the same samples. A constant series has no
 * correlation (NaN).
 */
#ifndef SHMBUS_STATS_CORRELATE_H
#define SHMBUS_STATS_CORRELATE_H

#include "timebuf.h"

#include <stddef.h>
#include <stdint.h>

#define CORRELATE_MAX_TAGS 32

/* Pearson r of x and y (two-pass); NaN when n < 2 or either is constant. */
double correlate_pearson(const double *x, const double *y, size_t n);

typedef struct correlate_request {
    const timebuf *const *bufs; /* k time-window buffers */
    const int *modes;           /* k enum interp_mode */
    size_t k;                   /* 2..CORRELATE_MAX_TAGS */
    int64_t from_ns, to_ns;     /* from < to */
    uint32_t points;            /* grid size, 2..100000 */
} correlate_request;

/* Fills matrix[k*k] (row-major, 1 on the diagonal unless a series is
 * constant) and *aligned (grid points every tag covered). Returns 0,
 * -EINVAL for a bad request, -ENOMEM. */
int correlate_aligned(const correlate_request *req, double *matrix, uint32_t *aligned);

/* The overlap of the tags' stored ranges: [max of oldest, min of newest].
 * Returns 0, or -ERANGE when some buffer is empty or they do not overlap. */
int correlate_overlap(const timebuf *const *bufs, size_t k, int64_t *from_ns, int64_t *to_ns);

#endif

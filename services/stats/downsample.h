/*
 * downsample.h — min/max-bucket downsampling of a time-ordered point array.
 *
 * Splits the points into consecutive buckets of `bucket` points and keeps, of
 * each bucket, its first point, its last point, its minimum and its maximum
 * (the earliest one on ties), each once and in time order: at most 4 points
 * per bucket. Shape-preserving for plots (spikes survive) and cheap: one
 * pass, in place. Used by the time-window buffer when it nears capacity and
 * by range queries that would return more points than asked for.
 */
#ifndef SHMBUS_STATS_DOWNSAMPLE_H
#define SHMBUS_STATS_DOWNSAMPLE_H

#include "statpoint.h"

#include <stddef.h>

/* Downsamples pts[0..n) in place; returns the new count (<= n). bucket < 5
 * keeps everything. */
size_t downsample_minmax(stat_point *pts, size_t n, size_t bucket);

/* The bucket size that brings n points down to at most max_points (>= 8). */
size_t downsample_bucket_for(size_t n, size_t max_points);

#endif

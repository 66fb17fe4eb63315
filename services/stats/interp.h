/*
 * interp.h — the value of a tag at a given time, from its time-window
 * buffer: linear interpolation between the two stored neighbours, or a
 * step (the earlier neighbour's value holds) for booleans and integer state
 * tags. Outside the stored range nothing is extrapolated: the result says
 * "before" or "after" and names the nearest stored point.
 */
#ifndef SHMBUS_STATS_INTERP_H
#define SHMBUS_STATS_INTERP_H

#include "statpoint.h"
#include "timebuf.h"

enum interp_position {
    INTERP_EMPTY = 0,   /* nothing stored */
    INTERP_EXACT = 1,   /* a point sits at t: prev = next = that point */
    INTERP_BETWEEN = 2, /* prev.t < t < next.t */
    INTERP_BEFORE = 3,  /* t before the oldest point: next = oldest, value NaN */
    INTERP_AFTER = 4,   /* t after the newest point: prev = newest, value NaN */
};

enum interp_mode {
    INTERP_LINEAR = 0,
    INTERP_STEP = 1,
};

typedef struct interp_result {
    int position; /* enum interp_position */
    double value; /* NaN unless EXACT or BETWEEN */
    int has_prev, has_next;
    stat_point prev, next;
} interp_result;

/* Value between a and b (a.t < t < b.t) by mode. */
double interp_between(stat_point a, stat_point b, int64_t t_ns, int mode);

/* Looks up t in tb; fills *out and returns its position. */
int interp_at(const timebuf *tb, int64_t t_ns, int mode, interp_result *out);

const char *interp_position_name(int position);

#endif

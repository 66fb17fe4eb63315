/*
 * statpoint.h — the (time, value) pair every part of the statistics core
 * trades in. Times are nanoseconds since the epoch (the TagValue record's
 * timestamp_ns); values are finite doubles (non-finite ones never get in).
 */
#ifndef SHMBUS_STATS_STATPOINT_H
#define SHMBUS_STATS_STATPOINT_H

#include <stdint.h>

typedef struct stat_point {
    int64_t t_ns;
    double v;
} stat_point;

#endif

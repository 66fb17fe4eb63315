/*
 * leak.h — leak watch: a window of (time, resident bytes) samples of one
 * process and the least-squares slope through them. The monitor feeds one
 * sample per process every sample period and warns when the slope exceeds the
 * configured growth (leak_growth_mb_per_min) over the window (leak_window_s).
 *
 * One leak_window belongs to one thread (the monitor).
 */
#ifndef SHMBUS_CTL_LEAK_H
#define SHMBUS_CTL_LEAK_H

#include <stdint.h>

#define LEAK_SAMPLES 64 /* samples kept; the monitor spaces them window/LEAK_SAMPLES apart */
#define LEAK_MIN_SAMPLES 8

typedef struct leak_window {
    int64_t t_ms[LEAK_SAMPLES];
    double bytes[LEAK_SAMPLES];
    uint32_t head;  /* next write position */
    uint32_t count; /* valid samples */
} leak_window;

void leak_reset(leak_window *w);

/* Adds a sample; the oldest is dropped when the window is full. */
void leak_add(leak_window *w, int64_t t_ms, double bytes);

/* Least-squares slope in bytes per second over the samples not older than
 * window_ms before the newest. Returns 0 and sets *slope, or -1 when there is
 * no trend yet: fewer than LEAK_MIN_SAMPLES samples, or they span less than
 * half the window (a process that just started is not a leak). */
int leak_slope(const leak_window *w, int64_t window_ms, double *bytes_per_s);

#endif

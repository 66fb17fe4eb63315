/*
 * simgen.h — the signal generators of shmbus-sim (ramp, sine, counter,
 * random walk, toggle, constant), as pure functions of time so that a test
 * can compute what the simulator serves at any instant. Also used by
 * benchmarks that want realistic plant data.
 *
 * t_ms is milliseconds since the epoch; the generators work on
 * t = t_ms / 1000.0 seconds. Definitions (config_sim in config.h):
 *   constant     value
 *   ramp         min + (max - min) * frac(t / period_s)
 *   sine         (min+max)/2 + (max-min)/2 * sin(2*pi*t / period_s)
 *   counter      min + fmod(floor(t * step), max - min + 1)
 *   random_walk  k = floor(t / period_s); start at (min+max)/2 at the last
 *                multiple of 1000 steps, then for j = that+1 .. k add
 *                +step if bit 0 of splitmix64(seed * 2^32 + j) is 1, else
 *                -step, reflecting at min and max
 *   toggle       0 while frac(t / period_s) < 0.5, else 1
 */
#ifndef SHMBUS_SIMGEN_H
#define SHMBUS_SIMGEN_H

#include "config.h"

#include <stdint.h>

/* The engineering value of generator s at t_ms. */
double simgen_value(const config_sim *s, int64_t t_ms);

/* The hash behind random walks (public so tests can reproduce them). */
uint64_t simgen_splitmix64(uint64_t x);

#endif

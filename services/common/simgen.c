/*
 * simgen.c — deterministic signal generators for shmbus-sim (see simgen.h).
 * Every operation is plain IEEE double arithmetic in a fixed order, so a
 * Python reimplementation in the tests gets bit-identical values.
 */
#include "simgen.h"

#include <math.h>

#define WALK_RESTART 1000 /* steps after which a random walk restarts mid-range */

uint64_t simgen_splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static double random_walk(const config_sim *s, double t)
{
    double k = floor(t / s->period_s);
    double start = k - fmod(k, WALK_RESTART);
    double pos = (s->min + s->max) / 2;
    for (double j = start + 1; j <= k; j++) {
        uint64_t h = simgen_splitmix64(((uint64_t)s->seed << 32) + (uint64_t)(int64_t)j);
        pos += (h & 1) ? s->step : -s->step;
        if (pos > s->max)
            pos = 2 * s->max - pos;
        if (pos < s->min)
            pos = 2 * s->min - pos;
        if (pos > s->max || pos < s->min) /* a step wider than the range */
            pos = (s->min + s->max) / 2;
    }
    return pos;
}

double simgen_value(const config_sim *s, int64_t t_ms)
{
    double t = (double)t_ms / 1000.0;
    switch (s->kind) {
    case CONFIG_SIM_RAMP: {
        double x = t / s->period_s;
        return s->min + (s->max - s->min) * (x - floor(x));
    }
    case CONFIG_SIM_SINE:
        return (s->min + s->max) / 2 + (s->max - s->min) / 2 * sin(2 * M_PI * t / s->period_s);
    case CONFIG_SIM_COUNTER:
        return s->min + fmod(floor(t * s->step), s->max - s->min + 1);
    case CONFIG_SIM_RANDOM_WALK:
        return random_walk(s, t);
    case CONFIG_SIM_TOGGLE: {
        double x = t / s->period_s;
        return x - floor(x) < 0.5 ? 0.0 : 1.0;
    }
    case CONFIG_SIM_CONSTANT:
    default:
        return s->value;
    }
}

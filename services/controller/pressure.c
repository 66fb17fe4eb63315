/*
 * pressure.c — level names and the hysteresis rule (see pressure.h).
 */
#include "pressure.h"

#include <string.h>

static const char *const level_names[PRESSURE_LEVELS] = {"none", "low", "moderate", "high",
                                                         "critical"};

const char *pressure_level_name(int level)
{
    return level >= 0 && level < PRESSURE_LEVELS ? level_names[level] : "unknown";
}

int pressure_level_parse(const char *name)
{
    for (int i = 0; name && i < PRESSURE_LEVELS; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

double pressure_exit_value(const pressure_thresholds *t, int level)
{
    if (level <= PRESSURE_NONE || level >= PRESSURE_LEVELS)
        return 0.0;
    double v = t->enter[level] - t->hysteresis;
    if (level == PRESSURE_CRITICAL && v > t->enter[PRESSURE_HIGH])
        v = t->enter[PRESSURE_HIGH];
    return v;
}

int pressure_next_level(const pressure_thresholds *t, int current, double value)
{
    if (current < PRESSURE_NONE)
        current = PRESSURE_NONE;
    if (current > PRESSURE_CRITICAL)
        current = PRESSURE_CRITICAL;
    int target = PRESSURE_NONE;
    for (int l = PRESSURE_LOW; l <= PRESSURE_CRITICAL; l++)
        if (value >= t->enter[l])
            target = l;
    if (target > current)
        return target;
    if (current > PRESSURE_NONE && value < pressure_exit_value(t, current))
        return current - 1;
    return current;
}

/*
 * pressure.h — memory-pressure levels and the hysteresis rule that moves
 * between them. Pure functions, no state of their own: the monitor keeps the
 * current level and asks for the next one on every check.
 *
 * A pressure value is a ratio (0 = idle, 1 = a limit reached). Every source
 * (ring utilization, a device's share against its quota, a member's memory
 * against its limit, the system's PSI) is expressed that way, and the level
 * follows the largest.
 */
#ifndef SHMBUS_CTL_PRESSURE_H
#define SHMBUS_CTL_PRESSURE_H

enum pressure_level {
    PRESSURE_NONE = 0,
    PRESSURE_LOW = 1,
    PRESSURE_MODERATE = 2,
    PRESSURE_HIGH = 3,
    PRESSURE_CRITICAL = 4,
};
#define PRESSURE_LEVELS 5

typedef struct pressure_thresholds {
    double
        enter[PRESSURE_LEVELS]; /* enter[L]: value at which level L is entered (enter[0] unused) */
    double hysteresis;          /* a level is left only below enter[L] - hysteresis */
} pressure_thresholds;

/* "none", "low", "moderate", "high", "critical"; "unknown" out of range. */
const char *pressure_level_name(int level);

/* Parses a level name; returns the level or -1. */
int pressure_level_parse(const char *name);

/* The value below which `level` is left: enter[level] - hysteresis, and for
 * critical never above the high threshold (producers stay paused until the
 * value is back under "high"). */
double pressure_exit_value(const pressure_thresholds *t, int level);

/* The level after one check with `value` while at `current`:
 *  - rising: the highest level whose enter threshold value reaches, at once;
 *  - falling: one level down per check, and only when value is below the
 *    current level's exit value (so recovery runs in reverse order and a
 *    value hovering around a threshold does not flap);
 *  - otherwise: current. */
int pressure_next_level(const pressure_thresholds *t, int current, double value);

#endif

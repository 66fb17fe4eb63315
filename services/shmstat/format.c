/*
 * format.c — times and durations as shmstat prints them.
 */
#include "shmstat.h"

#include <math.h>
#include <time.h>

const char *format_time(char *buf, size_t len, int64_t ns)
{
    time_t sec = (time_t)(ns / 1000000000);
    long ms = (long)((ns % 1000000000) / 1000000);
    if (ns < 0) {
        sec -= 1;
        ms += 1000;
    }
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) {
        snprintf(buf, len, "%lld ns", (long long)ns);
        return buf;
    }
    char day[32];
    strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03ldZ", day, ms);
    return buf;
}

const char *format_age(char *buf, size_t len, double seconds)
{
    if (!isfinite(seconds)) {
        snprintf(buf, len, "-");
    } else if (seconds < 0) {
        snprintf(buf, len, "in future"); /* clock steps: say so, not a negative age */
    } else if (seconds < 1) {
        snprintf(buf, len, "%.0fms", seconds * 1000);
    } else if (seconds < 120) {
        snprintf(buf, len, "%.1fs", seconds);
    } else if (seconds < 7200) {
        snprintf(buf, len, "%.0fm%02.0fs", floor(seconds / 60), fmod(seconds, 60));
    } else if (seconds < 172800) {
        snprintf(buf, len, "%.0fh%02.0fm", floor(seconds / 3600), floor(fmod(seconds, 3600) / 60));
    } else {
        snprintf(buf, len, "%.0fd%02.0fh", floor(seconds / 86400),
                 floor(fmod(seconds, 86400) / 3600));
    }
    return buf;
}

/*
 * query_time.c — times on the command line and in output: epoch
 * nanoseconds or ISO 8601, always printed in UTC with nanoseconds.
 */
#include "query.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

int query_parse_time(const char *s, int64_t *ns)
{
    const char *p = s;
    if (*p == '-' || isdigit((unsigned char)*p)) {
        /* all digits (optionally signed): epoch nanoseconds */
        size_t n = strspn(p + (*p == '-'), "0123456789");
        if (n > 0 && p[(*p == '-') + n] == '\0') {
            char *end;
            long long v = strtoll(p, &end, 10);
            if (*end)
                return -1;
            *ns = v;
            return 0;
        }
    }
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31)
        return -1;
    int64_t frac = 0;
    int64_t zone_s = 0;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || h > 23 || mi > 59)
            return -1;
        if (*p == ':') {
            p++;
            if (digits(&p, 2, &sec) || sec > 60)
                return -1;
            if (*p == '.' || *p == ',') {
                p++;
                int64_t scale = 100000000;
                if (!isdigit((unsigned char)*p))
                    return -1;
                while (isdigit((unsigned char)*p)) {
                    frac += (*p - '0') * scale;
                    scale /= 10;
                    p++;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, zh, zm = 0;
            if (digits(&p, 2, &zh))
                return -1;
            if (*p == ':')
                p++;
            if (*p && digits(&p, 2, &zm))
                return -1;
            zone_s = sign * (zh * 3600 + zm * 60);
        }
    }
    if (*p)
        return -1;
    int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
                   sec - zone_s;
    *ns = secs * 1000000000 + frac;
    return 0;
}

void query_format_time(int64_t ns, char *buf, size_t len)
{
    int64_t secs = ns / 1000000000, rem = ns % 1000000000;
    if (rem < 0) {
        rem += 1000000000;
        secs--;
    }
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long long)rem);
}

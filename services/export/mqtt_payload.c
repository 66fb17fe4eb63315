/*
 * mqtt_payload.c — what a record looks like on the broker (schemas/mqtt.md):
 *
 *   topic    <prefix>/<device>/<tag>
 *   payload  {"time":"2026-11-23T16:32:18.123456Z","value":21.5,
 *             "quality":"GOOD","unit":"degC","seq":1795000000000000123}
 *
 * Names become topic levels with '/', '+', '#' and control characters
 * replaced by '_' (a tag name must not open new levels or act as a
 * wildcard). A tag the catalog does not know is device<id>/tag<id>.
 * Numbers are printed in the shortest form that reads back to the same
 * double; NaN and infinities, which JSON cannot carry, are null.
 */
#include "mqtt_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static size_t put_level(char *out, size_t cap, const char *name)
{
    size_t n = 0;
    if (!*name && cap > 1)
        out[n++] = '_';
    for (; *name && n + 1 < cap; name++) {
        unsigned char c = (unsigned char)*name;
        out[n++] = (c == '/' || c == '+' || c == '#' || c < 0x20 || c == 0x7f) ? '_' : (char)c;
    }
    out[n] = '\0';
    return n;
}

int mqtt_format_topic(const char *prefix, const export_row *r, const export_tag *tag, char *buf,
                      size_t cap)
{
    char device[80], name[80];
    if (tag->known) {
        put_level(device, sizeof device, tag->device);
        put_level(name, sizeof name, tag->name);
    } else {
        snprintf(device, sizeof device, "device%u", r->device_id);
        snprintf(name, sizeof name, "tag%u", r->tag_id);
    }
    int n = snprintf(buf, cap, "%s/%s/%s", prefix, device, name);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* Shortest %.Ng that reads back as the same double. */
static int format_double(char *buf, size_t cap, double v)
{
    if (!isfinite(v))
        return snprintf(buf, cap, "null");
    for (int precision = 15; precision <= 17; precision++) {
        int n = snprintf(buf, cap, "%.*g", precision, v);
        if (n < 0 || (size_t)n >= cap || strtod(buf, NULL) == v)
            return n;
    }
    return (int)strlen(buf);
}

int mqtt_format_time(int64_t ns, char *buf, size_t cap)
{
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return snprintf(buf, cap, "1970-01-01T00:00:00.000000Z");
    return snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    (int)(frac / 1000));
}

/* JSON string body: quotes, backslashes and control characters escaped. */
static size_t put_json_string(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

int mqtt_format_payload(const export_row *r, const export_tag *tag, char *buf, size_t cap)
{
    char time_text[40], value[40], unit[200];
    mqtt_format_time(r->time_ns, time_text, sizeof time_text);
    format_double(value, sizeof value, r->value);
    put_json_string(unit, sizeof unit, tag->unit);
    int n;
    if (r->exception_code)
        n = snprintf(buf, cap,
                     "{\"time\":\"%s\",\"value\":%s,\"quality\":\"%s\",\"unit\":\"%s\","
                     "\"seq\":%llu,\"exception\":%u}",
                     time_text, value, shm_quality_name(r->quality), unit,
                     (unsigned long long)r->seq, r->exception_code);
    else
        n = snprintf(buf, cap,
                     "{\"time\":\"%s\",\"value\":%s,\"quality\":\"%s\",\"unit\":\"%s\","
                     "\"seq\":%llu}",
                     time_text, value, shm_quality_name(r->quality), unit,
                     (unsigned long long)r->seq);
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

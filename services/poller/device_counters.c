/*
 * device_counters.c — the named counters of a device in the segment, e.g.
 * shmbus_poller_requests_total{device="plc1"}. Opening an existing name
 * returns the same counter, so a restarted poller continues the totals.
 */
#include "device.h"

#include <stdio.h>

static int open_one(shm_segment *seg, const char *device, const char *metric, const char *kind,
                    int type, shm_counter **out)
{
    char name[SHM_COUNTER_NAME_MAX + 1];
    int n;
    if (kind)
        n = snprintf(name, sizeof name, "shmbus_poller_%s{device=\"%s\",kind=\"%s\"}", metric,
                     device, kind);
    else
        n = snprintf(name, sizeof name, "shmbus_poller_%s{device=\"%s\"}", metric, device);
    if (n < 0 || (size_t)n >= sizeof name)
        return SHM_EINVAL; /* cannot happen: config limits device names to 48 */
    return shm_counter_open(seg, name, type, out);
}

int device_counters_open(shm_segment *seg, const char *device, device_counters *c)
{
    const struct {
        const char *metric, *kind;
        int type;
        shm_counter **slot;
    } table[] = {
        {"requests_total", NULL, SHM_COUNTER, &c->requests},
        {"records_total", NULL, SHM_COUNTER, &c->records},
        {"records_dropped_total", NULL, SHM_COUNTER, &c->dropped},
        {"registers_total", NULL, SHM_COUNTER, &c->registers},
        {"overruns_total", NULL, SHM_COUNTER, &c->overruns},
        {"connects_total", NULL, SHM_COUNTER, &c->reconnects},
        {"breaker_opens_total", NULL, SHM_COUNTER, &c->breaker_opens},
        {"errors_total", "timeout", SHM_COUNTER, &c->err_timeout},
        {"errors_total", "exception", SHM_COUNTER, &c->err_exception},
        {"errors_total", "bad_frame", SHM_COUNTER, &c->err_bad_frame},
        {"errors_total", "connection", SHM_COUNTER, &c->err_connection},
        {"errors_total", "decode", SHM_COUNTER, &c->err_decode},
        {"rtt_microseconds_total", NULL, SHM_COUNTER, &c->rtt_us_sum},
        {"rtt_microseconds_last", NULL, SHM_GAUGE, &c->rtt_us_last},
        {"rtt_microseconds_max", NULL, SHM_GAUGE, &c->rtt_us_max},
        {"connected", NULL, SHM_GAUGE, &c->connected},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        int rc = open_one(seg, device, table[i].metric, table[i].kind, table[i].type,
                          table[i].slot);
        if (rc < 0)
            return rc;
    }
    return 0;
}

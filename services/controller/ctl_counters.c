/*
 * ctl_counters.c — the controller's own named counters in the segment
 * (exported by every inspector, and by /metrics with the shmbus_ prefix),
 * and reset_counters. Counters are opened once at start-up; opening an
 * existing name continues its total, so a restarted controller keeps counting.
 */
#include "ctl.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

static shm_counter *open_one(controller *c, const char *name, int kind)
{
    shm_counter *k = NULL;
    if (shm_counter_open(c->seg, name, kind, &k) != 0) {
        log_warn("counter %s: %s", name, shm_last_error());
        return NULL;
    }
    return k;
}

void ctl_counters_open(controller *c)
{
    ctl_counters *k = &c->counters;
    for (int from = 0; from < PRESSURE_LEVELS; from++) {
        for (int to = from - 1; to <= from + 1; to += 2) {
            if (to < 0 || to >= PRESSURE_LEVELS)
                continue;
            char name[SHM_COUNTER_NAME_MAX + 1];
            snprintf(name, sizeof name,
                     "controller_pressure_transitions_total{from=\"%s\",to=\"%s\"}",
                     pressure_level_name(from), pressure_level_name(to));
            k->transitions[from][to] = open_one(c, name, SHM_COUNTER);
        }
    }
    k->checks = open_one(c, "controller_checks_total", SHM_COUNTER);
    k->joins = open_one(c, "controller_member_joins_total", SHM_COUNTER);
    k->left = open_one(c, "controller_member_departures_total{how=\"left\"}", SHM_COUNTER);
    k->died = open_one(c, "controller_member_departures_total{how=\"died\"}", SHM_COUNTER);
    k->leak_warnings = open_one(c, "controller_leak_warnings_total", SHM_COUNTER);
    k->requests_ok = open_one(c, "controller_control_requests_total{result=\"ok\"}", SHM_COUNTER);
    k->requests_error =
        open_one(c, "controller_control_requests_total{result=\"error\"}", SHM_COUNTER);
    k->reloads_ok = open_one(c, "controller_reloads_total{result=\"ok\"}", SHM_COUNTER);
    k->reloads_error = open_one(c, "controller_reloads_total{result=\"error\"}", SHM_COUNTER);
    k->paused_by_operator = open_one(c, "controller_paused_by_operator", SHM_GAUGE);
}

struct reset_ctx {
    controller *c;
    const char *prefix;
    int reset;
};

static int reset_one(void *arg, const char *name, int kind, uint64_t value)
{
    struct reset_ctx *r = arg;
    if (kind != SHM_COUNTER || strncmp(name, r->prefix, strlen(r->prefix)) != 0)
        return 0;
    shm_counter *k;
    if (shm_counter_open(r->c->seg, name, kind, &k) == 0) {
        shm_counter_set(k, 0);
        r->reset++;
    }
    (void)value;
    return 0;
}

int ctl_counters_reset(controller *c, const char *prefix)
{
    struct reset_ctx r = {.c = c, .prefix = prefix ? prefix : "", .reset = 0};
    shm_counter_foreach(c->seg, reset_one, &r);
    log_info("reset %d counters%s%s", r.reset, r.prefix[0] ? " starting with " : "", r.prefix);
    return r.reset;
}

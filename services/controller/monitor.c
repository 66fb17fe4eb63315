/*
 * monitor.c — one check of the controller, run by the main thread every
 * check interval: reclaim dead members, watch the registry, gather the
 * pressure sources, move the pressure level (hysteresis in pressure.c),
 * publish the actions, and copy the new view in for the readers.
 *
 * Actions per level, in the order they are published when rising (falling
 * undoes them in reverse, one level per check):
 *   low       {"cmd":"pressure","level":"low"}       (informational)
 *   moderate  {"cmd":"pressure","level":"moderate"}  poller slows low-priority poll groups
 *   high      {"cmd":"pressure","level":"high"}      poller stops low-priority tags
 *   critical  {"cmd":"pressure","level":"critical"} then {"cmd":"pause"}, and the segment's
 *             paused flag: producers get SHM_EPAUSED until the level falls back to high,
 *             which publishes {"cmd":"resume"} then {"cmd":"pressure","level":"high"}.
 */
#include "ctl.h"

#include "events.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void monitor_init(controller *c)
{
    memset(&c->mon, 0, sizeof c->mon);
}

void monitor_free(controller *c)
{
    free(c->mon.peek_buf);
    free(c->mon.peek_records);
    c->mon.peek_buf = NULL;
    c->mon.peek_records = NULL;
}

void ctl_apply_pause_locked(controller *c)
{
    int want = c->paused_by_operator || c->paused_by_pressure;
    shm_counter_set(c->counters.paused_by_operator, c->paused_by_operator ? 1 : 0);
    if (want == c->paused_applied)
        return;
    shm_set_paused(c->seg, want);
    c->paused_applied = want;
    if (want) {
        log_warn("producers paused (%s)",
                 c->paused_by_operator ? "by the operator" : "critical memory pressure");
        events_pause(c->ev);
    } else {
        log_info("producers resumed");
        events_resume(c->ev);
    }
}

/* One step between adjacent levels. Call with lock held. */
static void transition_locked(controller *c, const ctl_view *v, int from, int to)
{
    const char *detail = strcmp(v->source, "ring") == 0     ? v->src.ring_group
                         : strcmp(v->source, "device") == 0 ? v->src.device_name
                         : strcmp(v->source, "member") == 0 ? v->src.member_name
                                                            : c->psi_path;
    const char *what = strcmp(v->source, "ring") == 0     ? "group "
                       : strcmp(v->source, "device") == 0 ? "device "
                                                          : "";
    int lvl = to > from && to >= PRESSURE_HIGH ? LOG_LVL_WARNING : LOG_LVL_INFO;
    log_msg(lvl, "pressure %s -> %s: %.3f from %s (%s%s)", pressure_level_name(from),
            pressure_level_name(to), v->value, v->source, what, detail);
    shm_counter_add(c->counters.transitions[from][to], 1);
    shm_set_pressure_level(c->seg, (uint32_t)to);
    if (to == PRESSURE_CRITICAL) {
        events_pressure(c->ev, to);
        c->paused_by_pressure = true;
        ctl_apply_pause_locked(c);
    } else if (from == PRESSURE_CRITICAL) {
        c->paused_by_pressure = false;
        ctl_apply_pause_locked(c);
        events_pressure(c->ev, to);
    } else {
        events_pressure(c->ev, to);
    }
}

/* Records this check's totals and derives rates over the rate window. */
static void update_rates(monitor *m, ctl_view *v, int64_t now)
{
    mon_rate_sample *s = &m->rates[m->rate_head];
    memset(s, 0, sizeof *s);
    s->t_ms = now;
    s->records_put = v->ring.records_put;
    s->full_rejections = v->ring.full_rejections;
    s->overflow_events = v->ring.overflow_events;
    for (int g = 0; g < v->n_groups; g++) {
        s->consumed[g] = v->groups[g].s.consumed;
        s->lost[g] = v->groups[g].s.lost;
        snprintf(s->group[g], sizeof s->group[g], "%s", v->groups[g].s.name);
    }
    m->rate_head = (m->rate_head + 1) % CTL_RATE_SAMPLES;
    if (m->rate_count < CTL_RATE_SAMPLES)
        m->rate_count++;
    /* The oldest sample still inside the window. */
    const mon_rate_sample *old = s;
    for (uint32_t k = 1; k < m->rate_count; k++) {
        const mon_rate_sample *o =
            &m->rates[(m->rate_head + CTL_RATE_SAMPLES - 1 - k) % CTL_RATE_SAMPLES];
        if (now - o->t_ms > CTL_RATE_WINDOW_MS)
            break;
        old = o;
    }
    uint64_t attempts =
        (s->records_put - old->records_put) + (s->full_rejections - old->full_rejections);
    uint64_t overflows = s->overflow_events - old->overflow_events;
    v->overflow_rate_pct = attempts ? 100.0 * (double)overflows / (double)attempts : 0.0;
    if (v->overflow_rate_pct > 100.0)
        v->overflow_rate_pct = 100.0;
    for (int g = 0; g < v->n_groups; g++) {
        v->groups[g].overflow_rate_pct = 0;
        for (int h = 0; h < SHM_MAX_GROUPS; h++) {
            if (strcmp(old->group[h], s->group[g]) != 0)
                continue;
            uint64_t lost = s->lost[g] - old->lost[h];
            uint64_t seen = (s->consumed[g] - old->consumed[h]) + lost;
            v->groups[g].overflow_rate_pct = seen ? 100.0 * (double)lost / (double)seen : 0.0;
            break;
        }
    }
}

static void gather_ring(controller *c, ctl_view *v)
{
    shm_group_stats gs[SHM_MAX_GROUPS];
    shm_ring_stats_get(c->seg, &v->ring);
    int n = shm_group_stats_get(c->seg, gs, SHM_MAX_GROUPS);
    v->n_groups = n < 0 ? 0 : n > SHM_MAX_GROUPS ? SHM_MAX_GROUPS : n;
    uint64_t worst = 0;
    v->src.ring = 0;
    v->src.ring_group[0] = '\0';
    for (int g = 0; g < v->n_groups; g++) {
        v->groups[g].s = gs[g];
        if (gs[g].lag >= worst) {
            worst = gs[g].lag;
            v->src.ring = gs[g].utilization;
            snprintf(v->src.ring_group, sizeof v->src.ring_group, "%.*s", SHM_NAME_MAX, gs[g].name);
        }
    }
    v->used_slots = worst > c->info.slot_count ? c->info.slot_count : worst;
}

static void pick_source(ctl_view *v)
{
    v->value = v->src.ring;
    snprintf(v->source, sizeof v->source, "ring");
    if (v->src.device_on && v->src.device > v->value) {
        v->value = v->src.device;
        snprintf(v->source, sizeof v->source, "device");
    }
    if (v->src.member_on && v->src.member > v->value) {
        v->value = v->src.member;
        snprintf(v->source, sizeof v->source, "member");
    }
    if (v->src.system_on && v->src.system > v->value) {
        v->value = v->src.system;
        snprintf(v->source, sizeof v->source, "system");
    }
}

/* The system source. Whether the PSI file can be used is logged when that
 * changes (not every check): a kernel without PSI turns the source off
 * quietly (info), a file that cannot be read or does not parse is a warning
 * naming the file. */
static void read_system_pressure(controller *c, ctl_view *v)
{
    monitor *m = &c->mon;
    int rc = procmem_read_psi(c->psi_path, &v->src.system);
    v->src.system_on = rc == 0;
    if (m->psi_checked && rc == m->psi_rc)
        return;
    if (rc == 0 && m->psi_checked)
        log_info("system memory pressure: %s is readable again; the system source is on",
                 c->psi_path);
    else if (rc == -ENOENT)
        log_info("system memory pressure: %s does not exist (kernel without PSI?); the system "
                 "source is off",
                 c->psi_path);
    else if (rc == -EACCES)
        log_warn("system memory pressure: %s: permission denied; the system source is off",
                 c->psi_path);
    else if (rc != 0)
        log_warn("system memory pressure: %s does not hold a PSI 'some avg10=' line with a "
                 "percentage 0..100; the system source is off",
                 c->psi_path);
    m->psi_rc = rc;
    m->psi_checked = true;
}

void monitor_tick(controller *c)
{
    monitor *m = &c->mon;
    ctl_view *v = &m->next;
    int64_t now = ctl_now_ms();
    ctl_settings set;
    pthread_mutex_lock(&c->lock);
    set = c->set;
    pthread_mutex_unlock(&c->lock);

    members_track(c);
    shm_reclaim_report rep;
    int dead = shm_reclaim(c->seg, &rep);
    if (dead > 0)
        log_info("reclaimed %d dead member(s): %u claimed slots padded, %u batches handed back",
                 dead, rep.slots_padded, rep.batches_orphaned);
    shm_ring_stats after;
    shm_ring_stats_get(c->seg, &after);
    m->last_reclaimed = after.members_reclaimed;

    members_update(c, &set, now, v);
    gather_ring(c, v);
    devices_update(c, &set, v);
    read_system_pressure(c, v);
    pick_source(v);
    update_rates(m, v, now);
    v->tick_ms = now;

    pthread_mutex_lock(&c->lock);
    v->ticks = c->view.ticks + 1;
    v->reclaimed = c->view.reclaimed + (uint64_t)(dead > 0 ? dead : 0);
    v->transitions = c->view.transitions;
    v->level = c->view.level;
    v->level_since_ms = c->view.level_since_ms;
    int next = pressure_next_level(&set.thr, v->level, v->value);
    if (next > v->level) {
        for (int l = v->level + 1; l <= next; l++)
            transition_locked(c, v, l - 1, l);
    } else if (next < v->level) {
        transition_locked(c, v, v->level, next);
    }
    if (next != v->level) {
        v->transitions += (uint64_t)abs(next - v->level);
        v->level = next;
        v->level_since_ms = now;
    }
    c->view = *v;
    pthread_mutex_unlock(&c->lock);
    shm_counter_add(c->counters.checks, 1);
}

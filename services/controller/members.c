/*
 * members.c — watching the member registry (monitor thread only): joins and
 * departures logged and counted, each member process's memory read from
 * /proc, its trend (leak watch), and the member pressure source (private
 * resident memory against controller.rss_limit_mb).
 *
 * Memory figures are per process: several members (a poller's device
 * threads) may share one. "Private" memory is resident minus shared pages,
 * so the mapped ring, which every member touches, does not count against a
 * member's limit or look like a leak.
 */
#include "ctl.h"

#include "log.h"

#include <stdio.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)

const char *ctl_role_name(uint32_t role)
{
    switch (role) {
    case SHM_ROLE_PRODUCER:
        return "producer";
    case SHM_ROLE_CONSUMER:
        return "consumer";
    case SHM_ROLE_CONTROLLER:
        return "controller";
    case SHM_ROLE_OBSERVER:
        return "observer";
    default:
        return "none";
    }
}

static bool same_member(const mon_known *k, const shm_member_stats *s)
{
    return k->index == s->index && k->pid == s->pid && k->start_time == s->start_time &&
           k->joined_ns == s->joined_ns;
}

static mon_known *find_known(monitor *m, const shm_member_stats *s)
{
    for (int i = 0; i < m->n_known; i++)
        if (same_member(&m->known[i], s))
            return &m->known[i];
    return NULL;
}

static void describe(char *buf, size_t len, const mon_known *k)
{
    snprintf(buf, len, "member %u '%s' (%s%s%s, pid %d)", k->index, k->name, ctl_role_name(k->role),
             k->group[0] ? " of group " : "", k->group, (int)k->pid);
}

static void note_death(controller *c, mon_known *k, const char *how)
{
    char who[160];
    describe(who, sizeof who, k);
    log_warn("%s %s; what it held goes back to its group", who, how);
    shm_counter_add(c->counters.died, 1);
    k->departed = true;
}

/* Joins and departures: diff of the registry against what we saw before.
 * Runs on a snapshot taken before this check's reclaim, so a member killed
 * since the last check is still there (ACTIVE, process gone) and is logged
 * as died by name. A member that vanished from the registry entirely either
 * closed (left) or was killed and reclaimed by another member in between;
 * libshm's reclaim counter tells how many of those died. */
void members_track(controller *c)
{
    monitor *m = &c->mon;
    int n = shm_member_stats_get(c->seg, m->snap, CTL_MAX_MEMBERS);
    n = n < 0 ? 0 : n > CTL_MAX_MEMBERS ? CTL_MAX_MEMBERS : n;
    shm_ring_stats rs;
    shm_ring_stats_get(c->seg, &rs);
    uint64_t reclaimed_by_others = rs.members_reclaimed - m->last_reclaimed;

    for (int i = 0; i < m->n_known; i++)
        m->known[i].seen = false;
    for (int i = 0; i < n; i++) {
        const shm_member_stats *s = &m->snap[i];
        bool live = s->state == SHM_MEMBER_ACTIVE && s->alive;
        mon_known *k = find_known(m, s);
        if (!k) {
            if (m->n_known == CTL_MAX_MEMBERS)
                continue;
            k = &m->known[m->n_known++];
            *k = (mon_known){.index = s->index,
                             .pid = s->pid,
                             .start_time = s->start_time,
                             .joined_ns = s->joined_ns,
                             .role = s->role};
            snprintf(k->name, sizeof k->name, "%s", s->name);
            snprintf(k->group, sizeof k->group, "%s", s->group);
            if (live) {
                char who[160];
                describe(who, sizeof who, k);
                log_info("%s joined", who);
                shm_counter_add(c->counters.joins, 1);
            }
        }
        if (!live && !k->departed) {
            if (s->state == SHM_MEMBER_DEAD && reclaimed_by_others > 0)
                reclaimed_by_others--; /* this death is already in the counter */
            note_death(c, k, "died");
        }
        k->seen = true;
    }
    for (int i = 0; i < m->n_known;) {
        mon_known *k = &m->known[i];
        if (k->seen) {
            i++;
            continue;
        }
        if (!k->departed) {
            char who[160];
            describe(who, sizeof who, k);
            if (reclaimed_by_others > 0 && !shm_process_alive(k->pid, k->start_time)) {
                reclaimed_by_others--;
                note_death(c, k, "died (reclaimed by another member)");
            } else {
                log_info("%s left", who);
                shm_counter_add(c->counters.left, 1);
            }
        }
        m->known[i] = m->known[--m->n_known];
    }
}

static mon_process *find_process(monitor *m, int32_t pid, uint64_t start_time)
{
    for (int i = 0; i < m->n_procs; i++)
        if (m->procs[i].pid == pid && m->procs[i].start_time == start_time)
            return &m->procs[i];
    if (m->n_procs == CTL_MAX_MEMBERS)
        return NULL;
    mon_process *p = &m->procs[m->n_procs++];
    memset(p, 0, sizeof *p);
    p->pid = pid;
    p->start_time = start_time;
    leak_reset(&p->leak);
    return p;
}

/* Reads one process's memory and feeds the leak watch. */
static void sample_process(controller *c, mon_process *p, const ctl_settings *set, int64_t now_ms,
                           const char *name)
{
    procmem_rss mem;
    p->mem_known = procmem_read_rss(p->pid, &mem) == 0;
    if (!p->mem_known)
        return;
    p->mem = mem;
    int64_t window_ms = (int64_t)set->leak_window_s * 1000;
    int64_t period_ms = window_ms / LEAK_SAMPLES;
    if (period_ms < set->check_interval_ms)
        period_ms = set->check_interval_ms;
    if (p->last_sample_ms && now_ms - p->last_sample_ms < period_ms)
        return;
    p->last_sample_ms = now_ms;
    leak_add(&p->leak, now_ms, (double)mem.private_bytes);
    double slope;
    p->growth_known = leak_slope(&p->leak, window_ms, &slope) == 0;
    if (!p->growth_known)
        return;
    p->growth_mb_per_min = slope * 60.0 / MIB;
    double limit = set->leak_growth_mb_per_min;
    if (limit <= 0)
        return;
    if (!p->warned && p->growth_mb_per_min > limit) {
        p->warned = true;
        shm_counter_add(c->counters.leak_warnings, 1);
        log_warn("leak watch: '%s' (pid %d) private memory grows %.1f MB/min over the last "
                 "%u s (limit %.1f MB/min), now %.1f MB",
                 name, (int)p->pid, p->growth_mb_per_min, set->leak_window_s, limit,
                 (double)mem.private_bytes / MIB);
    } else if (p->warned && p->growth_mb_per_min < limit / 2) {
        p->warned = false; /* re-armed: a new growth spell warns again */
        log_info("leak watch: '%s' (pid %d) stopped growing (%.1f MB/min)", name, (int)p->pid,
                 p->growth_mb_per_min);
    }
}

void members_update(controller *c, const ctl_settings *set, int64_t now_ms, ctl_view *v)
{
    monitor *m = &c->mon;
    int n = shm_member_stats_get(c->seg, m->snap, CTL_MAX_MEMBERS);
    n = n < 0 ? 0 : n > CTL_MAX_MEMBERS ? CTL_MAX_MEMBERS : n;

    for (int i = 0; i < m->n_procs; i++)
        m->procs[i].seen = false;
    v->n_members = n;
    v->src.member_on = set->rss_limit_bytes > 0;
    v->src.member = 0;
    v->src.member_name[0] = '\0';
    for (int i = 0; i < n; i++) {
        const shm_member_stats *s = &m->snap[i];
        ctl_member *cm = &v->members[i];
        memset(cm, 0, sizeof *cm);
        cm->s = *s;
        if (!(s->state == SHM_MEMBER_ACTIVE && s->alive))
            continue;
        mon_process *p = find_process(m, s->pid, s->start_time);
        if (!p)
            continue;
        if (!p->seen) { /* first member of this process in this check */
            p->seen = true;
            sample_process(c, p, set, now_ms, s->name);
        }
        cm->mem_known = p->mem_known;
        cm->mem = p->mem;
        cm->growth_known = p->growth_known;
        cm->growth_mb_per_min = p->growth_mb_per_min;
        cm->leak_suspect = p->warned;
        if (v->src.member_on && p->mem_known) {
            double ratio = (double)p->mem.private_bytes / (double)set->rss_limit_bytes;
            if (ratio > v->src.member) {
                v->src.member = ratio;
                snprintf(v->src.member_name, sizeof v->src.member_name, "%s (pid %d)", s->name,
                         (int)s->pid);
            }
        }
    }
    for (int i = 0; i < m->n_procs;) {
        if (m->procs[i].seen)
            i++;
        else
            m->procs[i] = m->procs[--m->n_procs];
    }
}

static bool role_matches(const shm_member_stats *s, const char *role)
{
    size_t n = strlen(role);
    if (strcmp(s->group, role) == 0 || strcmp(s->name, role) == 0)
        return true;
    if (strncmp(s->name, role, n) == 0 && s->name[n] && strchr("-_.:/@", s->name[n]))
        return true;
    return strcmp(ctl_role_name(s->role), role) == 0;
}

bool ctl_role_satisfied(const ctl_view *v, const char *role)
{
    for (int i = 0; i < v->n_members; i++) {
        const shm_member_stats *s = &v->members[i].s;
        if (s->state == SHM_MEMBER_ACTIVE && s->alive && role_matches(s, role))
            return true;
    }
    return false;
}

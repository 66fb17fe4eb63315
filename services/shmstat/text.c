/*
 * text.c — shmstat's human-readable report: segment, ring, groups, members,
 * named counters. Column headers name each figure; README.md explains them.
 * Rates print as "-" where the basis has none (see snapshot.h).
 */
#include "shmstat.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static const char *rate(char *buf, size_t len, double per_s)
{
    if (!isfinite(per_s))
        snprintf(buf, len, "-");
    else if (per_s >= 1e6)
        snprintf(buf, len, "%.2fM", per_s / 1e6);
    else if (per_s >= 1e4)
        snprintf(buf, len, "%.1fk", per_s / 1e3);
    else
        snprintf(buf, len, "%.1f", per_s);
    return buf;
}

static const char *bytes(char *buf, size_t len, uint64_t n)
{
    if (n >= (uint64_t)1 << 30)
        snprintf(buf, len, "%.1f GiB", (double)n / (double)(1u << 30));
    else if (n >= (uint64_t)1 << 20)
        snprintf(buf, len, "%.1f MiB", (double)n / (double)(1u << 20));
    else
        snprintf(buf, len, "%.1f KiB", (double)n / 1024.0);
    return buf;
}

/* Names from the segment are shown with non-printable bytes as '?', so a
 * hostile name cannot drive the terminal. */
static const char *printable(char *buf, size_t len, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        buf[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
    buf[i] = '\0';
    if (i == 0 && len > 1)
        snprintf(buf, len, "-");
    return buf;
}

static void render_segment(FILE *out, const struct snapshot *s, const struct rates *r)
{
    const shm_segment_info *i = &s->info;
    char created[48], age[32], size[32], name[SHM_NAME_MAX + 1];
    format_time(created, sizeof created, i->created_ns);
    format_age(age, sizeof age, (double)(s->real_ns - i->created_ns) / 1e9);
    fprintf(out, "segment /shmbus.%s  layout %u  %s  created %s (%s ago) by pid %d\n",
            printable(name, sizeof name, i->name), i->layout_version,
            bytes(size, sizeof size, i->total_bytes), created, age, (int)i->creator_pid);
    fprintf(out,
            "  slots %u x %u B (payload %u B)  policy %s  max members %u  catalog %u  "
            "counters %u  warn at %u%%\n",
            i->slot_count, i->slot_size, i->slot_payload, policy_name(i->policy), i->max_members,
            i->catalog_capacity, i->counter_capacity, i->util_warn_pct);
    if (r->basis == RATES_INTERVAL)
        fprintf(out, "  rates over the last %.2f s\n", r->interval_s);
    else
        fprintf(out, "  rates are averages since the segment was created / the member joined\n");
}

static void render_ring(FILE *out, const struct snapshot *s, const struct rates *r)
{
    const shm_ring_stats *k = &s->ring;
    char rb[32];
    fprintf(out, "ring\n");
    fprintf(out,
            "  head %" PRIu64 "  capacity %u  utilization %.1f%%  high-water %.1f%%  groups %u\n",
            k->head_seq, s->info.slot_count, k->utilization * 100.0,
            k->util_high_water_permille / 10.0, k->groups);
    fprintf(out,
            "  records put %" PRIu64 " (%s/s)  full rejections %" PRIu64
            "  overflow events %" PRIu64 "  claims lapped %" PRIu64 "\n",
            k->records_put, rate(rb, sizeof rb, r->put_per_s), k->full_rejections,
            k->overflow_events, k->claims_lapped);
    fprintf(out,
            "  slots reclaimed %" PRIu64 "  members reclaimed %" PRIu64
            "  utilization warnings %" PRIu64 "  paused %s  pressure level %u\n",
            k->slots_reclaimed, k->members_reclaimed, k->util_warnings, k->paused ? "yes" : "no",
            k->pressure_level);
}

static void render_groups(FILE *out, const struct snapshot *s, const struct rates *r)
{
    fprintf(out, "groups (%d)\n", s->ngroups);
    if (s->ngroups == 0)
        return;
    fprintf(out, "  %-16s %4s %20s %20s %10s %6s %12s %9s %10s %9s %8s %7s %7s\n", "NAME", "MEMB",
            "NEXT", "TAIL", "LAG", "UTIL", "CONSUMED", "CONS/S", "LOST", "REDELIV", "PADDED",
            "INVALID", "ORPHANS");
    for (int i = 0; i < s->ngroups; i++) {
        const shm_group_stats *g = &s->groups[i];
        char name[SHM_NAME_MAX + 1], rb[32];
        fprintf(out,
                "  %-16s %4u %20" PRIu64 " %20" PRIu64 " %10" PRIu64 " %5.1f%% %12" PRIu64
                " %9s %10" PRIu64 " %9" PRIu64 " %8" PRIu64 " %7" PRIu64 " %7u\n",
                printable(name, sizeof name, g->name), g->members, g->next_seq, g->tail_seq, g->lag,
                g->utilization * 100.0, g->consumed,
                rate(rb, sizeof rb, r->group_consumed_per_s[i]), g->lost, g->redelivered, g->padded,
                g->invalid, g->orphans);
    }
}

static void render_members(FILE *out, const struct snapshot *s, const struct rates *r)
{
    fprintf(out, "members (%d)\n", s->nmembers);
    if (s->nmembers == 0)
        return;
    fprintf(out, "  %4s %8s %-10s %-16s %-16s %-6s %-5s %9s %12s %9s %4s\n", "IDX", "PID", "ROLE",
            "GROUP", "NAME", "STATE", "ALIVE", "HEARTBEAT", "RECORDS", "REC/S", "HELD");
    for (int i = 0; i < s->nmembers; i++) {
        const shm_member_stats *m = &s->members[i];
        char group[SHM_NAME_MAX + 1], name[SHM_NAME_MAX + 1], age[32], rb[32];
        format_age(age, sizeof age, (double)(s->real_ns - m->heartbeat_ns) / 1e9);
        fprintf(out, "  %4u %8d %-10s %-16s %-16s %-6s %-5s %9s %12" PRIu64 " %9s %4u\n", m->index,
                (int)m->pid, role_name(m->role), printable(group, sizeof group, m->group),
                printable(name, sizeof name, m->name), member_state_name(m->state),
                m->alive ? "yes" : "no", age, m->records,
                rate(rb, sizeof rb, r->member_records_per_s[i]), m->batches_held);
    }
}

static void render_counters(FILE *out, const struct snapshot *s, const struct rates *r)
{
    fprintf(out, "counters (%d)\n", s->ncounters);
    if (s->ncounters)
        fprintf(out, "  %-60s %-7s %20s %9s\n", "NAME", "KIND", "VALUE", "PER/S");
    for (int i = 0; i < s->ncounters; i++) {
        const struct stat_counter *c = &s->counters[i];
        char name[SHM_COUNTER_NAME_MAX + 1], rb[32];
        fprintf(out, "  %-60s %-7s %20" PRIu64 " %9s\n", printable(name, sizeof name, c->name),
                counter_kind_name(c->kind), c->value, rate(rb, sizeof rb, r->counter_per_s[i]));
    }
}

void text_render(FILE *out, const struct snapshot *s, const struct rates *r)
{
    render_segment(out, s, r);
    render_ring(out, s, r);
    render_groups(out, s, r);
    render_members(out, s, r);
    render_counters(out, s, r);
}

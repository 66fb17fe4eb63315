/*
 * metrics.c — the Prometheus exposition (see metrics.h and README.md for
 * every name). Rules kept here: names start with shmbus_, carry their base
 * unit (_bytes, _seconds, _ratio, _records), counters end in _total; each
 * family is written once, as one contiguous block with # HELP and # TYPE;
 * label values are escaped; no series appears twice.
 */
#include "metrics.h"

#include "events.h"
#include "promname.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The families written from the view, so named counters cannot clash. */
static const char *const builtin_families[] = {
    "shmbus_controller_start_time_seconds",
    "shmbus_controller_events_published_total",
    "shmbus_ring_slots",
    "shmbus_ring_slot_size_bytes",
    "shmbus_ring_used_slots",
    "shmbus_ring_utilization_ratio",
    "shmbus_ring_high_water_ratio",
    "shmbus_ring_paused",
    "shmbus_ring_records_put_total",
    "shmbus_ring_claims_lapped_total",
    "shmbus_ring_full_rejections_total",
    "shmbus_ring_overflow_events_total",
    "shmbus_ring_reclaimed_slots_total",
    "shmbus_ring_reclaimed_members_total",
    "shmbus_ring_utilization_warnings_total",
    "shmbus_pressure_level",
    "shmbus_pressure_ratio",
    "shmbus_pressure_threshold_ratio",
    "shmbus_system_memory_pressure_ratio",
    "shmbus_group_lag_records",
    "shmbus_group_utilization_ratio",
    "shmbus_group_members",
    "shmbus_group_orphaned_batches",
    "shmbus_group_consumed_records_total",
    "shmbus_group_lost_records_total",
    "shmbus_group_loss_events_total",
    "shmbus_group_redelivered_records_total",
    "shmbus_group_batches_total",
    "shmbus_group_invalid_records_total",
    "shmbus_group_padded_slots_total",
    "shmbus_members",
    "shmbus_member_info",
    "shmbus_member_records_total",
    "shmbus_member_batches_total",
    "shmbus_member_bytes_total",
    "shmbus_member_batches_held",
    "shmbus_member_heartbeat_age_seconds",
    "shmbus_member_resident_bytes",
    "shmbus_member_private_bytes",
    "shmbus_member_private_growth_bytes_per_second",
    "shmbus_device_ring_share_ratio",
    "shmbus_device_traffic_ratio",
    NULL,
};

static void family(strbuf *b, const char *name, const char *type, const char *help)
{
    strbuf_printf(b, "# HELP %s ", name);
    prom_help_text(b, help);
    strbuf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void sample_u64(strbuf *b, const char *name, uint64_t v)
{
    strbuf_printf(b, "%s %" PRIu64 "\n", name, v);
}

static void sample_f(strbuf *b, const char *name, double v)
{
    strbuf_printf(b, "%s %.9g\n", name, v);
}

/* name{group="x"} */
static void group_sample(strbuf *b, const char *name, const char *group, const char *value)
{
    strbuf_printf(b, "%s{group=\"", name);
    prom_label_value(b, group);
    strbuf_printf(b, "\"} %s\n", value);
}

/* name{member="x",slot="n",pid="p",group="g"} */
static void member_sample(strbuf *b, const char *name, const shm_member_stats *s, const char *value)
{
    strbuf_printf(b, "%s{member=\"", name);
    prom_label_value(b, s->name);
    strbuf_printf(b, "\",slot=\"%u\",pid=\"%d\",group=\"", s->index, (int)s->pid);
    prom_label_value(b, s->group);
    strbuf_printf(b, "\"} %s\n", value);
}

static void render_ring(controller *c, const ctl_view *v, strbuf *b)
{
    const shm_ring_stats *r = &v->ring;
    family(b, "shmbus_controller_start_time_seconds", "gauge",
           "When the controller started, seconds since the epoch.");
    sample_u64(b, "shmbus_controller_start_time_seconds", (uint64_t)c->started_wall_s);
    family(b, "shmbus_controller_events_published_total", "counter",
           "Messages the controller published on its nng PUB socket.");
    sample_u64(b, "shmbus_controller_events_published_total", events_sent(c->ev));
    family(b, "shmbus_ring_slots", "gauge", "Slots in the ring: its capacity in records.");
    sample_u64(b, "shmbus_ring_slots", c->info.slot_count);
    family(b, "shmbus_ring_slot_size_bytes", "gauge", "Bytes per ring slot, header included.");
    sample_u64(b, "shmbus_ring_slot_size_bytes", c->info.slot_size);
    family(b, "shmbus_ring_used_slots", "gauge",
           "Records in the ring not yet acknowledged by the slowest consumer group.");
    sample_u64(b, "shmbus_ring_used_slots", v->used_slots);
    family(b, "shmbus_ring_utilization_ratio", "gauge",
           "Used slots over slots, for the slowest consumer group.");
    sample_f(b, "shmbus_ring_utilization_ratio", (double)v->used_slots / c->info.slot_count);
    family(b, "shmbus_ring_high_water_ratio", "gauge", "Highest utilization seen by producers.");
    sample_f(b, "shmbus_ring_high_water_ratio", r->util_high_water_permille / 1000.0);
    family(b, "shmbus_ring_paused", "gauge", "1 while producers are paused by the controller.");
    sample_u64(b, "shmbus_ring_paused", r->paused);
    static const struct {
        const char *name, *help;
        size_t offset;
    } totals[] = {
        {"shmbus_ring_records_put_total", "Records committed by producers.",
         offsetof(shm_ring_stats, records_put)},
        {"shmbus_ring_claims_lapped_total", "Producer slots overwritten before commit.",
         offsetof(shm_ring_stats, claims_lapped)},
        {"shmbus_ring_full_rejections_total", "Claims refused because the ring was full.",
         offsetof(shm_ring_stats, full_rejections)},
        {"shmbus_ring_overflow_events_total",
         "Overflow events: refused claims (backpressure) or laps of a group (drop-oldest).",
         offsetof(shm_ring_stats, overflow_events)},
        {"shmbus_ring_reclaimed_slots_total", "Slots of dead producers padded over.",
         offsetof(shm_ring_stats, slots_reclaimed)},
        {"shmbus_ring_reclaimed_members_total", "Dead members reclaimed.",
         offsetof(shm_ring_stats, members_reclaimed)},
        {"shmbus_ring_utilization_warnings_total", "Crossings of the utilization warning level.",
         offsetof(shm_ring_stats, util_warnings)},
    };
    for (size_t i = 0; i < sizeof totals / sizeof totals[0]; i++) {
        uint64_t val;
        memcpy(&val, (const char *)r + totals[i].offset, sizeof val);
        family(b, totals[i].name, "counter", totals[i].help);
        sample_u64(b, totals[i].name, val);
    }
}

static void render_pressure(controller *c, const ctl_view *v, strbuf *b)
{
    family(b, "shmbus_pressure_level", "gauge",
           "Memory-pressure level: 0 none, 1 low, 2 moderate, 3 high, 4 critical.");
    sample_u64(b, "shmbus_pressure_level", (uint64_t)v->level);
    family(b, "shmbus_pressure_ratio", "gauge",
           "Each pressure source as a ratio of its limit (1 = limit reached).");
    strbuf_printf(b, "shmbus_pressure_ratio{source=\"ring\"} %.9g\n", v->src.ring);
    if (v->src.device_on)
        strbuf_printf(b, "shmbus_pressure_ratio{source=\"device\"} %.9g\n", v->src.device);
    if (v->src.member_on)
        strbuf_printf(b, "shmbus_pressure_ratio{source=\"member\"} %.9g\n", v->src.member);
    if (v->src.system_on)
        strbuf_printf(b, "shmbus_pressure_ratio{source=\"system\"} %.9g\n", v->src.system);
    family(b, "shmbus_pressure_threshold_ratio", "gauge", "Value at which each level is entered.");
    for (int l = PRESSURE_LOW; l <= PRESSURE_CRITICAL; l++)
        strbuf_printf(b, "shmbus_pressure_threshold_ratio{level=\"%s\"} %.9g\n",
                      pressure_level_name(l), c->set.thr.enter[l]);
    if (v->src.system_on) {
        family(b, "shmbus_system_memory_pressure_ratio", "gauge",
               "Share of the last 10 s some task waited for memory (PSI some avg10).");
        sample_f(b, "shmbus_system_memory_pressure_ratio", v->src.system);
    }
    family(b, "shmbus_device_ring_share_ratio", "gauge",
           "Estimated share of the ring's slots holding each device's records.");
    for (int d = 0; d < v->n_devices; d++) {
        strbuf_puts(b, "shmbus_device_ring_share_ratio{device=\"");
        prom_label_value(b, v->devices[d].name);
        strbuf_printf(b, "\"} %.9g\n", v->devices[d].share);
    }
    family(b, "shmbus_device_traffic_ratio", "gauge",
           "Each device's share of the newest records in the ring.");
    for (int d = 0; d < v->n_devices; d++) {
        strbuf_puts(b, "shmbus_device_traffic_ratio{device=\"");
        prom_label_value(b, v->devices[d].name);
        strbuf_printf(b, "\"} %.9g\n", v->devices[d].traffic);
    }
}

static void render_groups(controller *c, const ctl_view *v, strbuf *b)
{
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"shmbus_group_lag_records", "gauge", "Records published but not yet acknowledged."},
        {"shmbus_group_utilization_ratio", "gauge", "Lag over ring slots."},
        {"shmbus_group_members", "gauge", "Live members of the group."},
        {"shmbus_group_orphaned_batches", "gauge", "Batches of dead members awaiting re-delivery."},
        {"shmbus_group_consumed_records_total", "counter", "Records delivered to the group."},
        {"shmbus_group_lost_records_total", "counter",
         "Records overwritten before the group read them."},
        {"shmbus_group_loss_events_total", "counter", "Times the group lost records."},
        {"shmbus_group_redelivered_records_total", "counter",
         "Records re-delivered after a member died."},
        {"shmbus_group_batches_total", "counter", "Batches taken by members of the group."},
        {"shmbus_group_invalid_records_total", "counter", "Records the group marked invalid."},
        {"shmbus_group_padded_slots_total", "counter", "Padding slots of dead producers skipped."},
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        family(b, fams[f].name, fams[f].type, fams[f].help);
        for (int g = 0; g < v->n_groups; g++) {
            const shm_group_stats *s = &v->groups[g].s;
            char val[32];
            switch (f) {
            case 0:
                snprintf(val, sizeof val, "%" PRIu64, s->lag);
                break;
            case 1:
                snprintf(val, sizeof val, "%.9g", s->utilization);
                break;
            case 2:
                snprintf(val, sizeof val, "%u", s->members);
                break;
            case 3:
                snprintf(val, sizeof val, "%u", s->orphans);
                break;
            case 4:
                snprintf(val, sizeof val, "%" PRIu64, s->consumed);
                break;
            case 5:
                snprintf(val, sizeof val, "%" PRIu64, s->lost);
                break;
            case 6:
                snprintf(val, sizeof val, "%" PRIu64, s->lost_events);
                break;
            case 7:
                snprintf(val, sizeof val, "%" PRIu64, s->redelivered);
                break;
            case 8:
                snprintf(val, sizeof val, "%" PRIu64, s->batches);
                break;
            case 9:
                snprintf(val, sizeof val, "%" PRIu64, s->invalid);
                break;
            default:
                snprintf(val, sizeof val, "%" PRIu64, s->padded);
                break;
            }
            group_sample(b, fams[f].name, s->name, val);
        }
    }
}

static void render_members(controller *c, const ctl_view *v, strbuf *b)
{
    uint32_t active = 0, dead = 0;
    for (int i = 0; i < v->n_members; i++) {
        if (v->members[i].s.state == SHM_MEMBER_ACTIVE && v->members[i].s.alive)
            active++;
        else
            dead++;
    }
    family(b, "shmbus_members", "gauge", "Registry members by state.");
    strbuf_printf(b, "shmbus_members{state=\"active\"} %u\n", active);
    strbuf_printf(b, "shmbus_members{state=\"dead\"} %u\n", dead);
    family(b, "shmbus_member_info", "gauge", "One series per member; labels say who it is.");
    for (int i = 0; i < v->n_members; i++) {
        const shm_member_stats *s = &v->members[i].s;
        strbuf_printf(b, "shmbus_member_info{member=\"");
        prom_label_value(b, s->name);
        strbuf_printf(b, "\",slot=\"%u\",pid=\"%d\",group=\"", s->index, (int)s->pid);
        prom_label_value(b, s->group);
        strbuf_printf(b, "\",role=\"%s\",state=\"%s\"} 1\n", ctl_role_name(s->role),
                      s->state == SHM_MEMBER_ACTIVE && s->alive ? "active" : "dead");
    }
    int64_t wall = ctl_wall_ns();
    static const struct {
        const char *name, *type, *help;
    } fams[] = {
        {"shmbus_member_records_total", "counter", "Records the member put or consumed."},
        {"shmbus_member_batches_total", "counter", "Claims or batches the member took."},
        {"shmbus_member_bytes_total", "counter", "Record bytes the member put or consumed."},
        {"shmbus_member_batches_held", "gauge", "Batches the member holds unacknowledged."},
        {"shmbus_member_heartbeat_age_seconds", "gauge", "Time since the member's heartbeat."},
        {"shmbus_member_resident_bytes", "gauge", "Resident memory of the member's process."},
        {"shmbus_member_private_bytes", "gauge",
         "Resident memory of the member's process minus shared pages (the ring)."},
        {"shmbus_member_private_growth_bytes_per_second", "gauge",
         "Least-squares trend of private memory over the leak-watch window."},
    };
    for (size_t f = 0; f < sizeof fams / sizeof fams[0]; f++) {
        family(b, fams[f].name, fams[f].type, fams[f].help);
        for (int i = 0; i < v->n_members; i++) {
            const ctl_member *m = &v->members[i];
            const shm_member_stats *s = &m->s;
            char val[32];
            switch (f) {
            case 0:
                snprintf(val, sizeof val, "%" PRIu64, s->records);
                break;
            case 1:
                snprintf(val, sizeof val, "%" PRIu64, s->batches);
                break;
            case 2:
                snprintf(val, sizeof val, "%" PRIu64, s->bytes);
                break;
            case 3:
                snprintf(val, sizeof val, "%u", s->batches_held);
                break;
            case 4:
                snprintf(val, sizeof val, "%.3f",
                         s->heartbeat_ns > 0 && wall > s->heartbeat_ns
                             ? (double)(wall - s->heartbeat_ns) / 1e9
                             : 0.0);
                break;
            case 5:
                if (!m->mem_known)
                    continue;
                snprintf(val, sizeof val, "%" PRIu64, m->mem.resident_bytes);
                break;
            case 6:
                if (!m->mem_known)
                    continue;
                snprintf(val, sizeof val, "%" PRIu64, m->mem.private_bytes);
                break;
            default:
                if (!m->growth_known)
                    continue;
                snprintf(val, sizeof val, "%.6g", m->growth_mb_per_min * 1048576.0 / 60.0);
                break;
            }
            member_sample(b, fams[f].name, s, val);
        }
    }
}

/* ---- named counters */

typedef struct named_entry {
    char family[PROM_NAME_MAX];
    char labels[PROM_LABELS_MAX];
    char original[SHM_COUNTER_NAME_MAX + 1];
    int kind;
    uint64_t value;
    double scale; /* to the base unit (seconds), 1 when none applies */
    uint32_t order;
} named_entry;

typedef struct named_list {
    named_entry *e;
    uint32_t n, cap;
    bool oom;
} named_list;

static int collect(void *arg, const char *name, int kind, uint64_t value)
{
    named_list *l = arg;
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? l->cap * 2 : 64;
        named_entry *p = realloc(l->e, cap * sizeof *p);
        if (!p) {
            l->oom = true;
            return 1;
        }
        l->e = p;
        l->cap = cap;
    }
    named_entry *e = &l->e[l->n];
    if (prom_counter_name(name, kind == SHM_COUNTER, e->family, sizeof e->family, e->labels,
                          sizeof e->labels) < 0)
        return 0; /* cannot be named validly within the limits: left out */
    e->scale = prom_base_unit(e->family, sizeof e->family);
    snprintf(e->original, sizeof e->original, "%.*s", (int)strcspn(name, "{"), name);
    e->kind = kind;
    e->value = value;
    e->order = l->n++;
    return 0;
}

static int by_family(const void *a, const void *b)
{
    const named_entry *x = a, *y = b;
    int c = strcmp(x->family, y->family);
    return c ? c : (x->order > y->order) - (x->order < y->order);
}

static bool taken_name(const char *const *taken, const char *name)
{
    for (int i = 0; taken && taken[i]; i++)
        if (strcmp(taken[i], name) == 0)
            return true;
    return false;
}

int metrics_render_named(const shm_segment *seg, const char *const *taken, strbuf *out)
{
    named_list l = {0};
    shm_counter_foreach(seg, collect, &l);
    if (l.oom) {
        free(l.e);
        return -1;
    }
    qsort(l.e, l.n, sizeof *l.e, by_family);
    for (uint32_t i = 0; i < l.n;) {
        uint32_t j = i;
        while (j < l.n && strcmp(l.e[j].family, l.e[i].family) == 0)
            j++;
        if (!taken_name(taken, l.e[i].family)) {
            const named_entry *first = &l.e[i];
            char help[SHM_COUNTER_NAME_MAX + 64];
            snprintf(help, sizeof help, "Named %s '%s' from the segment.",
                     first->kind == SHM_COUNTER ? "counter" : "gauge", first->original);
            family(out, first->family, first->kind == SHM_COUNTER ? "counter" : "gauge", help);
            for (uint32_t k = i; k < j; k++) {
                const named_entry *e = &l.e[k];
                bool dup = e->kind != first->kind; /* one family, one type */
                for (uint32_t p = i; !dup && p < k; p++)
                    dup = l.e[p].kind == e->kind && strcmp(l.e[p].labels, e->labels) == 0;
                if (dup)
                    continue;
                strbuf_printf(out, "%s%s%s%s ", e->family, e->labels[0] ? "{" : "", e->labels,
                              e->labels[0] ? "}" : "");
                if (e->scale != 1)
                    strbuf_printf(out, "%.9g\n", (double)e->value * e->scale);
                else
                    strbuf_printf(out, "%" PRIu64 "\n", e->value);
            }
        }
        i = j;
    }
    free(l.e);
    return strbuf_failed(out) ? -1 : 0;
}

int metrics_render(controller *c, strbuf *out)
{
    pthread_mutex_lock(&c->lock);
    const ctl_view *v = &c->view;
    render_ring(c, v, out);
    render_pressure(c, v, out);
    render_groups(c, v, out);
    render_members(c, v, out);
    pthread_mutex_unlock(&c->lock);
    if (metrics_render_named(c->seg, builtin_families, out) != 0)
        return -1;
    return strbuf_failed(out) ? -1 : 0;
}

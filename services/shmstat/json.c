/*
 * json.c — shmstat --json: the same facts as the text report, as one JSON
 * document. Figures are numbers (64-bit values exact), utilizations are
 * fractions 0..1, times are ns since the epoch (with an ISO 8601 copy for
 * people), rates per second. A rate a basis cannot give is left out.
 */
#include "jsonw.h"
#include "shmstat.h"

#include <math.h>

static void opt_rate(struct jsonw *w, const char *key, double per_s)
{
    if (isfinite(per_s))
        jw_double(w, key, per_s);
}

static void segment(struct jsonw *w, const struct snapshot *s)
{
    const shm_segment_info *i = &s->info;
    char created[48];
    jw_object_begin(w, "segment");
    jw_str(w, "name", i->name);
    jw_u64(w, "layout_version", i->layout_version);
    jw_u64(w, "total_bytes", i->total_bytes);
    jw_u64(w, "slot_size", i->slot_size);
    jw_u64(w, "slot_payload", i->slot_payload);
    jw_u64(w, "slot_count", i->slot_count);
    jw_str(w, "policy", policy_name(i->policy));
    jw_u64(w, "max_members", i->max_members);
    jw_u64(w, "catalog_capacity", i->catalog_capacity);
    jw_u64(w, "counter_capacity", i->counter_capacity);
    jw_u64(w, "util_warn_pct", i->util_warn_pct);
    jw_i64(w, "created_ns", i->created_ns);
    jw_str(w, "created", format_time(created, sizeof created, i->created_ns));
    jw_i64(w, "creator_pid", i->creator_pid);
    jw_u64(w, "initial_seq", i->initial_seq);
    jw_object_end(w);
}

static void ring(struct jsonw *w, const struct snapshot *s, const struct rates *r)
{
    const shm_ring_stats *k = &s->ring;
    jw_object_begin(w, "ring");
    jw_u64(w, "head_seq", k->head_seq);
    jw_u64(w, "capacity", s->info.slot_count);
    jw_double(w, "utilization", k->utilization);
    jw_double(w, "high_water", k->util_high_water_permille / 1000.0);
    jw_u64(w, "records_put", k->records_put);
    opt_rate(w, "put_per_s", r->put_per_s);
    jw_u64(w, "full_rejections", k->full_rejections);
    jw_u64(w, "overflow_events", k->overflow_events);
    jw_u64(w, "claims_lapped", k->claims_lapped);
    jw_u64(w, "slots_reclaimed", k->slots_reclaimed);
    jw_u64(w, "members_reclaimed", k->members_reclaimed);
    jw_u64(w, "util_warnings", k->util_warnings);
    jw_bool(w, "paused", k->paused != 0);
    jw_u64(w, "pressure_level", k->pressure_level);
    jw_u64(w, "groups", k->groups);
    jw_object_end(w);
}

static void groups(struct jsonw *w, const struct snapshot *s, const struct rates *r)
{
    jw_array_begin(w, "groups");
    for (int i = 0; i < s->ngroups; i++) {
        const shm_group_stats *g = &s->groups[i];
        jw_object_begin(w, NULL);
        jw_str(w, "name", g->name);
        jw_u64(w, "members", g->members);
        jw_u64(w, "next_seq", g->next_seq);
        jw_u64(w, "tail_seq", g->tail_seq);
        jw_u64(w, "lag", g->lag);
        jw_double(w, "utilization", g->utilization);
        jw_u64(w, "consumed", g->consumed);
        opt_rate(w, "consumed_per_s", r->group_consumed_per_s[i]);
        jw_u64(w, "lost", g->lost);
        opt_rate(w, "lost_per_s", r->group_lost_per_s[i]);
        jw_u64(w, "lost_events", g->lost_events);
        jw_u64(w, "redelivered", g->redelivered);
        jw_u64(w, "batches", g->batches);
        jw_u64(w, "padded", g->padded);
        jw_u64(w, "invalid", g->invalid);
        jw_u64(w, "orphans", g->orphans);
        jw_object_end(w);
    }
    jw_array_end(w);
}

static void members(struct jsonw *w, const struct snapshot *s, const struct rates *r)
{
    jw_array_begin(w, "members");
    for (int i = 0; i < s->nmembers; i++) {
        const shm_member_stats *m = &s->members[i];
        jw_object_begin(w, NULL);
        jw_u64(w, "index", m->index);
        jw_i64(w, "pid", m->pid);
        jw_u64(w, "start_time", m->start_time);
        jw_str(w, "role", role_name(m->role));
        jw_str(w, "group", m->group);
        jw_str(w, "name", m->name);
        jw_str(w, "state", member_state_name(m->state));
        jw_bool(w, "alive", m->alive);
        jw_i64(w, "joined_ns", m->joined_ns);
        jw_i64(w, "heartbeat_ns", m->heartbeat_ns);
        jw_double(w, "heartbeat_age_s", (double)(s->real_ns - m->heartbeat_ns) / 1e9);
        jw_u64(w, "records", m->records);
        opt_rate(w, "records_per_s", r->member_records_per_s[i]);
        jw_u64(w, "batches", m->batches);
        jw_u64(w, "bytes", m->bytes);
        jw_u64(w, "batches_held", m->batches_held);
        jw_object_end(w);
    }
    jw_array_end(w);
}

static void counters(struct jsonw *w, const struct snapshot *s, const struct rates *r)
{
    jw_array_begin(w, "counters");
    for (int i = 0; i < s->ncounters; i++) {
        const struct stat_counter *c = &s->counters[i];
        jw_object_begin(w, NULL);
        jw_str(w, "name", c->name);
        jw_str(w, "kind", counter_kind_name(c->kind));
        jw_u64(w, "value", c->value);
        opt_rate(w, "per_s", r->counter_per_s[i]);
        jw_object_end(w);
    }
    jw_array_end(w);
}

void json_render(FILE *out, const struct snapshot *s, const struct rates *r, int pretty)
{
    struct jsonw w;
    jw_init(&w, out, pretty);
    jw_object_begin(&w, NULL);
    jw_i64(&w, "time_ns", s->real_ns);
    jw_object_begin(&w, "rates");
    jw_str(&w, "basis", r->basis == RATES_INTERVAL ? "interval" : "lifetime");
    if (r->basis == RATES_INTERVAL)
        jw_double(&w, "interval_s", r->interval_s);
    jw_object_end(&w);
    segment(&w, s);
    ring(&w, s, r);
    groups(&w, s, r);
    members(&w, s, r);
    counters(&w, s, r);
    jw_object_end(&w);
    jw_finish(&w);
}

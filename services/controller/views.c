/*
 * views.c — JSON documents built from the monitor's last view (see views.h).
 * Every field here is documented in services/controller/README.md; nothing
 * else (no paths, no config text) goes out.
 */
#include "views.h"

#include "events.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static double pct(double ratio)
{
    return round(ratio * 100000.0) / 1000.0; /* percent, 3 decimals */
}

static double ratio6(double x)
{
    return round(x * 1e6) / 1e6;
}

static uint64_t capped(uint64_t lag, uint32_t slots)
{
    return lag > slots ? slots : lag;
}

static json_t *opt_string(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

json_t *view_buffer(controller *c)
{
    uint32_t slots = c->info.slot_count;
    pthread_mutex_lock(&c->lock);
    const ctl_view *v = &c->view;
    json_t *groups = json_array();
    for (int g = 0; groups && g < v->n_groups; g++) {
        const ctl_group *cg = &v->groups[g];
        uint64_t size = capped(cg->s.lag, slots);
        json_array_append_new(
            groups, json_pack("{s:s, s:I, s:I, s:f, s:I, s:f}", "name", cg->s.name,
                              "current_size", (json_int_t)size, "max_size", (json_int_t)slots,
                              "utilization_pct", pct((double)size / slots), "overflow_count",
                              (json_int_t)cg->s.lost, "overflow_rate_pct",
                              round(cg->overflow_rate_pct * 1000.0) / 1000.0));
    }
    json_t *doc = json_pack("{s:I, s:I, s:f, s:I, s:f, s:o}", "current_size",
                            (json_int_t)v->used_slots, "max_size", (json_int_t)slots,
                            "utilization_pct", pct((double)v->used_slots / slots),
                            "overflow_count", (json_int_t)v->ring.overflow_events,
                            "overflow_rate_pct", round(v->overflow_rate_pct * 1000.0) / 1000.0,
                            "groups", groups);
    pthread_mutex_unlock(&c->lock);
    return doc;
}

static json_t *member_json(const ctl_member *m, int64_t wall_ns)
{
    const shm_member_stats *s = &m->s;
    double hb_age = s->heartbeat_ns > 0 && wall_ns > s->heartbeat_ns
                        ? (double)(wall_ns - s->heartbeat_ns) / 1e9
                        : 0.0;
    json_t *o = json_pack(
        "{s:i, s:s, s:s, s:o, s:i, s:s, s:b, s:f, s:I, s:I, s:I, s:i}", "slot", (int)s->index,
        "name", s->name, "role", ctl_role_name(s->role), "group", opt_string(s->group), "pid",
        (int)s->pid, "state", s->state == SHM_MEMBER_ACTIVE ? "active" : "dead", "alive",
        s->alive && s->state == SHM_MEMBER_ACTIVE, "heartbeat_age_s", round(hb_age * 1000) / 1000,
        "records", (json_int_t)s->records, "batches", (json_int_t)s->batches, "bytes",
        (json_int_t)s->bytes, "batches_held", (int)s->batches_held);
    if (!o)
        return NULL;
    json_object_set_new(o, "rss_bytes",
                        m->mem_known ? json_integer((json_int_t)m->mem.resident_bytes) : json_null());
    json_object_set_new(o, "private_bytes",
                        m->mem_known ? json_integer((json_int_t)m->mem.private_bytes) : json_null());
    json_object_set_new(o, "growth_mb_per_min",
                        m->growth_known ? json_real(round(m->growth_mb_per_min * 1000) / 1000)
                                        : json_null());
    json_object_set_new(o, "leak_suspect", json_boolean(m->leak_suspect));
    return o;
}

json_t *view_members(controller *c)
{
    int64_t wall = ctl_wall_ns();
    json_t *list = json_array();
    if (!list)
        return NULL;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->view.n_members; i++)
        json_array_append_new(list, member_json(&c->view.members[i], wall));
    pthread_mutex_unlock(&c->lock);
    return json_pack("{s:o}", "members", list);
}

static const char *source_detail(const ctl_view *v)
{
    if (strcmp(v->source, "device") == 0)
        return v->src.device_name;
    if (strcmp(v->source, "member") == 0)
        return v->src.member_name;
    if (strcmp(v->source, "system") == 0)
        return "/proc/pressure/memory";
    return v->src.ring_group;
}

json_t *view_pressure(controller *c)
{
    int64_t now = ctl_now_ms();
    pthread_mutex_lock(&c->lock);
    const ctl_view *v = &c->view;
    const ctl_settings *s = &c->set;
    json_t *devices = json_array();
    for (int d = 0; devices && d < v->n_devices; d++)
        json_array_append_new(devices, json_pack("{s:s, s:f, s:f, s:f}", "device",
                                                 v->devices[d].name, "traffic",
                                                 ratio6(v->devices[d].traffic), "share",
                                                 ratio6(v->devices[d].share), "value",
                                                 ratio6(v->devices[d].value)));
    json_t *sources = json_pack(
        "{s:{s:f, s:o}, s:o, s:o, s:o}", "ring", "value", ratio6(v->src.ring), "group",
        opt_string(v->src.ring_group), "device",
        v->src.device_on ? json_pack("{s:f, s:o}", "value", ratio6(v->src.device), "device",
                                     opt_string(v->src.device_name))
                         : json_null(),
        "member",
        v->src.member_on ? json_pack("{s:f, s:o}", "value", ratio6(v->src.member), "member",
                                     opt_string(v->src.member_name))
                         : json_null(),
        "system", v->src.system_on ? json_real(ratio6(v->src.system)) : json_null());
    json_t *thresholds = json_pack(
        "{s:f, s:f, s:f, s:f, s:f}", "low", s->thr.enter[PRESSURE_LOW], "moderate",
        s->thr.enter[PRESSURE_MODERATE], "high", s->thr.enter[PRESSURE_HIGH], "critical",
        s->thr.enter[PRESSURE_CRITICAL], "hysteresis", s->thr.hysteresis);
    double since = v->level_since_ms ? (double)(now - v->level_since_ms) / 1000.0
                                     : (double)(now - c->started_ms) / 1000.0;
    json_t *doc = json_pack(
        "{s:s, s:f, s:s, s:s, s:b, s:b, s:b, s:f, s:I, s:o, s:o, s:o}", "level",
        pressure_level_name(v->level), "value", ratio6(v->value), "source",
        v->source[0] ? v->source : "ring", "detail", source_detail(v), "paused",
        c->paused_by_operator || c->paused_by_pressure, "paused_by_operator",
        c->paused_by_operator, "paused_by_pressure", c->paused_by_pressure, "since_s",
        round(since * 1000) / 1000, "transitions", (json_int_t)v->transitions, "thresholds",
        thresholds, "sources", sources, "devices", devices);
    pthread_mutex_unlock(&c->lock);
    return doc;
}

json_t *view_health(controller *c, bool *healthy)
{
    int64_t now = ctl_now_ms();
    json_t *roles = json_object(), *missing = json_array();
    if (!roles || !missing) {
        json_decref(roles);
        json_decref(missing);
        return NULL;
    }
    pthread_mutex_lock(&c->lock);
    *healthy = true;
    for (int r = 0; r < c->set.n_roles; r++) {
        bool ok = ctl_role_satisfied(&c->view, c->set.roles[r]);
        json_object_set_new(roles, c->set.roles[r], json_boolean(ok));
        if (!ok) {
            json_array_append_new(missing, json_string(c->set.roles[r]));
            *healthy = false;
        }
    }
    int64_t stall_ms = 10 * (int64_t)c->set.check_interval_ms;
    if (stall_ms < 2000)
        stall_ms = 2000;
    bool checking = c->view.tick_ms > 0 && now - c->view.tick_ms <= stall_ms;
    pthread_mutex_unlock(&c->lock);
    if (!checking)
        *healthy = false;
    return json_pack("{s:s, s:b, s:o, s:o}", "status", *healthy ? "ok" : "unhealthy", "checking",
                     checking, "roles", roles, "missing", missing);
}

json_t *view_status(controller *c)
{
    int64_t now = ctl_now_ms();
    uint32_t slots = c->info.slot_count;
    pthread_mutex_lock(&c->lock);
    const ctl_view *v = &c->view;
    json_t *groups = json_array();
    for (int g = 0; groups && g < v->n_groups; g++) {
        const shm_group_stats *s = &v->groups[g].s;
        json_array_append_new(groups,
                              json_pack("{s:s, s:I, s:i, s:I, s:I, s:I}", "name", s->name, "lag",
                                        (json_int_t)capped(s->lag, slots), "members",
                                        (int)s->members, "consumed", (json_int_t)s->consumed,
                                        "lost", (json_int_t)s->lost, "redelivered",
                                        (json_int_t)s->redelivered));
    }
    json_t *doc = json_pack(
        "{s:s, s:i, s:f, s:s, s:i, s:i, s:b, s:{s:s, s:f, s:s}, s:{s:I, s:I, s:I, s:f, s:I}, "
        "s:o, s:i, s:I, s:I}",
        "segment", c->info.name, "pid", (int)getpid(), "uptime_s",
        round((double)(now - c->started_ms)) / 1000.0, "policy",
        c->info.policy == SHM_POLICY_DROP_OLDEST ? "drop-oldest" : "backpressure", "slot_count",
        (int)c->info.slot_count, "slot_size", (int)c->info.slot_size, "paused",
        c->paused_by_operator || c->paused_by_pressure, "pressure", "level",
        pressure_level_name(v->level), "value", ratio6(v->value), "source",
        v->source[0] ? v->source : "ring", "ring", "head_seq", (json_int_t)v->ring.head_seq,
        "records_put", (json_int_t)v->ring.records_put, "used_slots",
        (json_int_t)v->used_slots, "utilization_pct", pct((double)v->used_slots / slots),
        "overflow_count", (json_int_t)v->ring.overflow_events, "groups", groups, "members",
        v->n_members, "checks", (json_int_t)v->ticks, "events_sent",
        (json_int_t)events_sent(c->ev));
    pthread_mutex_unlock(&c->lock);
    return doc;
}

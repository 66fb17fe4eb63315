/*
 * views.c — JSON documents built from the monitor's last view (see views.h).
 * Every field here is documented in services/controller/README.md; nothing
 * else (no paths, no config text) goes out. Objects are filled key by key in
 * the documented order (jansson keeps insertion order with
 * JSON_PRESERVE_ORDER); a failed allocation leaves a key out, and the caller
 * answers "out of memory" only when the whole document is missing.
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

static double milli(double x)
{
    return round(x * 1000.0) / 1000.0;
}

static uint64_t capped(uint64_t lag, uint32_t slots)
{
    return lag > slots ? slots : lag;
}

/* Setters: o[key] = value (the value reference is stolen, NULL-safe). */
static void put(json_t *o, const char *key, json_t *value)
{
    json_object_set_new(o, key, value);
}

static void put_int(json_t *o, const char *key, uint64_t v)
{
    put(o, key, json_integer((json_int_t)v));
}

static void put_real(json_t *o, const char *key, double v)
{
    put(o, key, json_real(v));
}

static void put_str(json_t *o, const char *key, const char *s)
{
    put(o, key, json_string(s));
}

static void put_opt_str(json_t *o, const char *key, const char *s)
{
    put(o, key, s && *s ? json_string(s) : json_null());
}

static void put_bool(json_t *o, const char *key, bool b)
{
    put(o, key, json_boolean(b));
}

/* The five buffer figures, for the ring or one group. */
static void put_buffer_figures(json_t *o, uint64_t size, uint32_t slots, uint64_t overflows,
                               double overflow_rate_pct)
{
    put_int(o, "current_size", size);
    put_int(o, "max_size", slots);
    put_real(o, "utilization_pct", pct((double)size / slots));
    put_int(o, "overflow_count", overflows);
    put_real(o, "overflow_rate_pct", milli(overflow_rate_pct));
}

json_t *view_buffer(controller *c)
{
    uint32_t slots = c->info.slot_count;
    json_t *doc = json_object(), *groups = json_array();
    pthread_mutex_lock(&c->lock);
    const ctl_view *v = &c->view;
    put_buffer_figures(doc, v->used_slots, slots, v->ring.overflow_events, v->overflow_rate_pct);
    for (int g = 0; groups && g < v->n_groups; g++) {
        const ctl_group *cg = &v->groups[g];
        json_t *o = json_object();
        put_str(o, "name", cg->s.name);
        put_buffer_figures(o, capped(cg->s.lag, slots), slots, cg->s.lost, cg->overflow_rate_pct);
        json_array_append_new(groups, o);
    }
    pthread_mutex_unlock(&c->lock);
    put(doc, "groups", groups);
    return doc;
}

static json_t *member_json(const ctl_member *m, int64_t wall_ns)
{
    const shm_member_stats *s = &m->s;
    json_t *o = json_object();
    if (!o)
        return NULL;
    put_int(o, "slot", s->index);
    put_str(o, "name", s->name);
    put_str(o, "role", ctl_role_name(s->role));
    put_opt_str(o, "group", s->group);
    put_int(o, "pid", (uint64_t)s->pid);
    put_str(o, "state", s->state == SHM_MEMBER_ACTIVE ? "active" : "dead");
    put_bool(o, "alive", s->alive && s->state == SHM_MEMBER_ACTIVE);
    double hb_age = s->heartbeat_ns > 0 && wall_ns > s->heartbeat_ns
                        ? (double)(wall_ns - s->heartbeat_ns) / 1e9
                        : 0.0;
    put_real(o, "heartbeat_age_s", milli(hb_age));
    put_int(o, "records", s->records);
    put_int(o, "batches", s->batches);
    put_int(o, "bytes", s->bytes);
    put_int(o, "batches_held", s->batches_held);
    put(o, "rss_bytes",
        m->mem_known ? json_integer((json_int_t)m->mem.resident_bytes) : json_null());
    put(o, "private_bytes",
        m->mem_known ? json_integer((json_int_t)m->mem.private_bytes) : json_null());
    put(o, "growth_mb_per_min",
        m->growth_known ? json_real(milli(m->growth_mb_per_min)) : json_null());
    put_bool(o, "leak_suspect", m->leak_suspect);
    return o;
}

json_t *view_members(controller *c)
{
    int64_t wall = ctl_wall_ns();
    json_t *doc = json_object(), *list = json_array();
    pthread_mutex_lock(&c->lock);
    for (int i = 0; list && i < c->view.n_members; i++)
        json_array_append_new(list, member_json(&c->view.members[i], wall));
    pthread_mutex_unlock(&c->lock);
    put(doc, "members", list);
    return doc;
}

static const char *source_detail(const controller *c, const ctl_view *v)
{
    if (strcmp(v->source, "device") == 0)
        return v->src.device_name;
    if (strcmp(v->source, "member") == 0)
        return v->src.member_name;
    if (strcmp(v->source, "system") == 0)
        return c->psi_path;
    return v->src.ring_group;
}

/* {value, <what>: name} for an enabled source, null for a disabled one. */
static json_t *source_json(bool on, double value, const char *what, const char *name)
{
    if (!on)
        return json_null();
    json_t *o = json_object();
    put_real(o, "value", ratio6(value));
    put_opt_str(o, what, name);
    return o;
}

json_t *view_pressure(controller *c)
{
    int64_t now = ctl_now_ms();
    json_t *doc = json_object();
    pthread_mutex_lock(&c->lock);
    const ctl_view *v = &c->view;
    const ctl_settings *s = &c->set;
    put_str(doc, "level", pressure_level_name(v->level));
    put_real(doc, "value", ratio6(v->value));
    put_str(doc, "source", v->source[0] ? v->source : "ring");
    put_str(doc, "detail", source_detail(c, v));
    put_bool(doc, "paused", c->paused_by_operator || c->paused_by_pressure);
    put_bool(doc, "paused_by_operator", c->paused_by_operator);
    put_bool(doc, "paused_by_pressure", c->paused_by_pressure);
    int64_t since = v->level_since_ms ? v->level_since_ms : c->started_ms;
    put_real(doc, "since_s", (double)(now - since) / 1000.0);
    put_int(doc, "transitions", v->transitions);

    json_t *thr = json_object();
    for (int l = PRESSURE_LOW; l <= PRESSURE_CRITICAL; l++)
        put_real(thr, pressure_level_name(l), s->thr.enter[l]);
    put_real(thr, "hysteresis", s->thr.hysteresis);
    put(doc, "thresholds", thr);

    json_t *src = json_object();
    put(src, "ring", source_json(true, v->src.ring, "group", v->src.ring_group));
    put(src, "device", source_json(v->src.device_on, v->src.device, "device", v->src.device_name));
    put(src, "member", source_json(v->src.member_on, v->src.member, "member", v->src.member_name));
    put(src, "system", v->src.system_on ? json_real(ratio6(v->src.system)) : json_null());
    put(doc, "sources", src);

    json_t *devices = json_array();
    for (int d = 0; devices && d < v->n_devices; d++) {
        json_t *o = json_object();
        put_str(o, "device", v->devices[d].name);
        put_real(o, "traffic", ratio6(v->devices[d].traffic));
        put_real(o, "share", ratio6(v->devices[d].share));
        put_real(o, "value", ratio6(v->devices[d].value));
        json_array_append_new(devices, o);
    }
    put(doc, "devices", devices);
    pthread_mutex_unlock(&c->lock);
    return doc;
}

json_t *view_health(controller *c, bool *healthy)
{
    int64_t now = ctl_now_ms();
    json_t *doc = json_object(), *roles = json_object(), *missing = json_array();
    pthread_mutex_lock(&c->lock);
    *healthy = true;
    for (int r = 0; r < c->set.n_roles; r++) {
        bool ok = ctl_role_satisfied(&c->view, c->set.roles[r]);
        put_bool(roles, c->set.roles[r], ok);
        if (!ok) {
            json_array_append_new(missing, json_string(c->set.roles[r]));
            *healthy = false;
        }
    }
    /* The check loop must be alive too: 10 intervals, at least 2 s. */
    int64_t stall_ms = 10 * (int64_t)c->set.check_interval_ms;
    if (stall_ms < 2000)
        stall_ms = 2000;
    bool checking = c->view.tick_ms > 0 && now - c->view.tick_ms <= stall_ms;
    pthread_mutex_unlock(&c->lock);
    if (!checking)
        *healthy = false;
    put_str(doc, "status", *healthy ? "ok" : "unhealthy");
    put_bool(doc, "checking", checking);
    put(doc, "roles", roles);
    put(doc, "missing", missing);
    return doc;
}

json_t *view_status(controller *c)
{
    int64_t now = ctl_now_ms();
    uint32_t slots = c->info.slot_count;
    json_t *doc = json_object();
    put_str(doc, "segment", c->info.name);
    put_int(doc, "pid", (uint64_t)getpid());
    put_real(doc, "uptime_s", (double)(now - c->started_ms) / 1000.0);
    put_str(doc, "policy",
            c->info.policy == SHM_POLICY_DROP_OLDEST ? "drop-oldest" : "backpressure");
    put_int(doc, "slot_count", c->info.slot_count);
    put_int(doc, "slot_size", c->info.slot_size);

    pthread_mutex_lock(&c->lock);
    const ctl_view *v = &c->view;
    put_bool(doc, "paused", c->paused_by_operator || c->paused_by_pressure);
    json_t *pressure = json_object();
    put_str(pressure, "level", pressure_level_name(v->level));
    put_real(pressure, "value", ratio6(v->value));
    put_str(pressure, "source", v->source[0] ? v->source : "ring");
    put(doc, "pressure", pressure);

    json_t *ring = json_object();
    put_int(ring, "head_seq", v->ring.head_seq);
    put_int(ring, "records_put", v->ring.records_put);
    put_int(ring, "used_slots", v->used_slots);
    put_real(ring, "utilization_pct", pct((double)v->used_slots / slots));
    put_int(ring, "overflow_count", v->ring.overflow_events);
    put(doc, "ring", ring);

    json_t *groups = json_array();
    for (int g = 0; groups && g < v->n_groups; g++) {
        const shm_group_stats *s = &v->groups[g].s;
        json_t *o = json_object();
        put_str(o, "name", s->name);
        put_int(o, "lag", capped(s->lag, slots));
        put_int(o, "members", s->members);
        put_int(o, "consumed", s->consumed);
        put_int(o, "lost", s->lost);
        put_int(o, "redelivered", s->redelivered);
        json_array_append_new(groups, o);
    }
    put(doc, "groups", groups);
    put_int(doc, "members", (uint64_t)v->n_members);
    put_int(doc, "checks", v->ticks);
    pthread_mutex_unlock(&c->lock);
    put_int(doc, "events_sent", events_sent(c->ev));
    return doc;
}

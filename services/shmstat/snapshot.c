/*
 * snapshot.c — reading a segment into a struct snapshot, and rates between
 * two snapshots (see snapshot.h). Nothing here writes to the segment.
 */
#include "snapshot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct counter_sink {
    struct snapshot *s;
    int cap;
};

static int collect_counter(void *ctx, const char *name, int kind, uint64_t value)
{
    struct counter_sink *sink = ctx;
    if (sink->s->ncounters >= sink->cap)
        return 1; /* more than the header's capacity: cannot happen, stop */
    struct stat_counter *c = &sink->s->counters[sink->s->ncounters++];
    snprintf(c->name, sizeof c->name, "%s", name);
    c->kind = kind;
    c->value = value;
    return 0;
}

int snapshot_take(const shm_segment *seg, struct snapshot *s)
{
    int rc;
    memset(s, 0, sizeof *s);
    if ((rc = shm_segment_info_get(seg, &s->info)) != 0)
        return rc;
    s->real_ns = clock_ns(CLOCK_REALTIME);
    s->mono_ns = clock_ns(CLOCK_MONOTONIC);
    if ((rc = shm_ring_stats_get(seg, &s->ring)) != 0)
        return rc;
    rc = shm_group_stats_get(seg, s->groups, SHM_MAX_GROUPS);
    if (rc < 0)
        return rc;
    s->ngroups = rc < SHM_MAX_GROUPS ? rc : SHM_MAX_GROUPS;

    uint32_t max_members = s->info.max_members ? s->info.max_members : 1;
    s->members = calloc(max_members, sizeof *s->members);
    uint32_t max_counters = s->info.counter_capacity ? s->info.counter_capacity : 1;
    s->counters = calloc(max_counters, sizeof *s->counters);
    if (!s->members || !s->counters) {
        rc = SHM_ENOMEM;
        goto fail;
    }
    rc = shm_member_stats_get(seg, s->members, (int)max_members);
    if (rc < 0)
        goto fail;
    s->nmembers = rc < (int)max_members ? rc : (int)max_members;

    struct counter_sink sink = {s, (int)max_counters};
    rc = shm_counter_foreach(seg, collect_counter, &sink);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    snapshot_free(s);
    return rc;
}

void snapshot_free(struct snapshot *s)
{
    free(s->members);
    free(s->counters);
    s->members = NULL;
    s->counters = NULL;
    s->nmembers = s->ncounters = 0;
}

int snapshot_same_segment(const struct snapshot *a, const struct snapshot *b)
{
    return a->info.created_ns == b->info.created_ns && a->info.creator_pid == b->info.creator_pid &&
           a->info.initial_seq == b->info.initial_seq && strcmp(a->info.name, b->info.name) == 0;
}

static double per_second(uint64_t now, uint64_t before, double seconds)
{
    if (seconds <= 0 || now < before)
        return NAN; /* a counter that went back belongs to someone else */
    return (double)(now - before) / seconds;
}

static const shm_member_stats *find_member(const struct snapshot *s, const shm_member_stats *m)
{
    for (int i = 0; i < s->nmembers; i++) {
        const shm_member_stats *o = &s->members[i];
        /* The same registry slot, held by the same process since the same
         * join: a slot taken over by a new member starts afresh. */
        if (o->index == m->index && o->pid == m->pid && o->start_time == m->start_time &&
            o->joined_ns == m->joined_ns)
            return o;
    }
    return NULL;
}

static const shm_group_stats *find_group(const struct snapshot *s, const char *name)
{
    for (int i = 0; i < s->ngroups; i++)
        if (strcmp(s->groups[i].name, name) == 0)
            return &s->groups[i];
    return NULL;
}

static const struct stat_counter *find_counter(const struct snapshot *s, int hint, const char *name)
{
    /* Named counters are never freed, so the same name keeps its index. */
    if (hint < s->ncounters && strcmp(s->counters[hint].name, name) == 0)
        return &s->counters[hint];
    for (int i = 0; i < s->ncounters; i++)
        if (strcmp(s->counters[i].name, name) == 0)
            return &s->counters[i];
    return NULL;
}

int rates_compute(const struct snapshot *cur, const struct snapshot *prev, struct rates *r)
{
    memset(r, 0, sizeof *r);
    r->member_records_per_s = calloc((size_t)cur->nmembers + 1, sizeof(double));
    r->counter_per_s = calloc((size_t)cur->ncounters + 1, sizeof(double));
    if (!r->member_records_per_s || !r->counter_per_s) {
        rates_free(r);
        return SHM_ENOMEM;
    }
    for (int g = 0; g < SHM_MAX_GROUPS; g++)
        r->group_consumed_per_s[g] = r->group_lost_per_s[g] = NAN;

    if (!prev) {
        r->basis = RATES_LIFETIME;
        double age = (double)(cur->real_ns - cur->info.created_ns) / 1e9;
        r->put_per_s = per_second(cur->ring.records_put, 0, age);
        for (int i = 0; i < cur->nmembers; i++) {
            const shm_member_stats *m = &cur->members[i];
            double since = (double)(cur->real_ns - m->joined_ns) / 1e9;
            r->member_records_per_s[i] = per_second(m->records, 0, since);
        }
        for (int i = 0; i < cur->ncounters; i++)
            r->counter_per_s[i] = NAN;
        return 0;
    }

    r->basis = RATES_INTERVAL;
    double dt = (double)(cur->mono_ns - prev->mono_ns) / 1e9;
    r->interval_s = dt;
    r->put_per_s = per_second(cur->ring.records_put, prev->ring.records_put, dt);
    for (int g = 0; g < cur->ngroups; g++) {
        const shm_group_stats *p = find_group(prev, cur->groups[g].name);
        if (!p)
            continue;
        r->group_consumed_per_s[g] = per_second(cur->groups[g].consumed, p->consumed, dt);
        r->group_lost_per_s[g] = per_second(cur->groups[g].lost, p->lost, dt);
    }
    for (int i = 0; i < cur->nmembers; i++) {
        const shm_member_stats *p = find_member(prev, &cur->members[i]);
        r->member_records_per_s[i] = p ? per_second(cur->members[i].records, p->records, dt) : NAN;
    }
    for (int i = 0; i < cur->ncounters; i++) {
        const struct stat_counter *c = &cur->counters[i];
        const struct stat_counter *p = find_counter(prev, i, c->name);
        r->counter_per_s[i] =
            p && c->kind == SHM_COUNTER ? per_second(c->value, p->value, dt) : NAN;
    }
    return 0;
}

void rates_free(struct rates *r)
{
    free(r->member_records_per_s);
    free(r->counter_per_s);
    r->member_records_per_s = NULL;
    r->counter_per_s = NULL;
}

const char *policy_name(uint32_t policy)
{
    switch (policy) {
    case SHM_POLICY_DROP_OLDEST:
        return "drop-oldest";
    case SHM_POLICY_BACKPRESSURE:
        return "backpressure";
    default:
        return "unknown";
    }
}

const char *role_name(uint32_t role)
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

const char *member_state_name(uint32_t state)
{
    switch (state) {
    case SHM_MEMBER_ACTIVE:
        return "active";
    case SHM_MEMBER_DEAD:
        return "dead";
    case SHM_MEMBER_FREE:
        return "free";
    default:
        return "unknown";
    }
}

const char *counter_kind_name(int kind)
{
    return kind == SHM_GAUGE ? "gauge" : kind == SHM_COUNTER ? "counter" : "unknown";
}

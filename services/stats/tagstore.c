/*
 * tagstore.c — per-tag state of the stats service (see tagstore.h).
 */
#include "tagstore.h"

#include "interp.h"

#include <errno.h>
#include <shmbus/shm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char no_name[] = ""; /* the name of every tag the catalog has not named yet */

/* Per tag besides window and history, as planned: the struct and a name of
 * TAG_NAME_PLAN bytes. */
static uint64_t tag_fixed_plan(void)
{
    return budget_chunk(sizeof(tag_state)) + budget_chunk(TAG_NAME_PLAN + 1);
}

static uint64_t tables_bytes(uint32_t max_tags)
{
    return budget_chunk((uint64_t)max_tags * sizeof(tag_state *)) +
           budget_chunk((uint64_t)max_tags * sizeof(uint32_t));
}

/* Ids below max_tags that shard K of N owns: no shard ever has more tags. */
static uint32_t count_owned(const store_params *p)
{
    if (p->shard_n == 1)
        return p->max_tags;
    uint32_t n = 0;
    for (uint32_t id = 0; id < p->max_tags; id++)
        n += tagstore_shard_of(id, p->shard_n) == p->shard_k;
    return n;
}

static int params_ok(const store_params *p)
{
    return p->shard_n > 0 && p->shard_k < p->shard_n && p->max_tags > 0 && p->window > 0 &&
           p->history_ns > 0 && p->history_capacity >= TIMEBUF_MIN_CAPACITY;
}

int tagstore_plan(const store_params *p, budget_request *req, budget_grant *grant)
{
    memset(req, 0, sizeof *req);
    memset(grant, 0, sizeof *grant);
    if (!params_ok(p))
        return -EINVAL;
    uint32_t owned = count_owned(p);
    uint32_t tags = p->planned_tags ? p->planned_tags : 1;
    if (tags > owned)
        tags = owned ? owned : 1;
    *req = (budget_request){.limit_bytes = p->memory_limit,
                            .fixed_bytes = tables_bytes(p->max_tags),
                            .tag_fixed_bytes = tag_fixed_plan(),
                            .tags = tags,
                            .window = p->window,
                            .history = p->history_capacity};
    return budget_derive(req, grant);
}

int tagstore_init(tagstore *s, const store_params *p)
{
    memset(s, 0, sizeof *s);
    int rc = tagstore_plan(p, &s->request, &s->grant);
    if (rc)
        return rc;
    s->p = *p;
    s->owned_ids = count_owned(p);
    s->by_id = calloc(p->max_tags, sizeof *s->by_id);
    s->order = calloc(p->max_tags, sizeof *s->order);
    if (!s->by_id || !s->order) {
        tagstore_free(s);
        return -ENOMEM;
    }
    return 0;
}

static void free_tag(tag_state *t)
{
    rolling_free(&t->roll);
    timebuf_free(&t->hist);
    if (t->name != no_name)
        free(t->name);
    free(t);
}

void tagstore_free(tagstore *s)
{
    if (s->by_id) {
        for (uint32_t i = 0; i < s->n_tags; i++)
            free_tag(s->by_id[s->order[i]]);
    }
    free(s->by_id);
    free(s->order);
    memset(s, 0, sizeof *s);
}

/* Makes g the plan: every tag gets its sizes (a tag that cannot be resized
 * for lack of memory keeps its own and is counted). */
static int apply_plan(tagstore *s, const budget_request *req, const budget_grant *g,
                      const char *why)
{
    budget_grant before = s->grant;
    s->request = *req;
    s->grant = *g;
    s->replans++;
    int rc = 0;
    if (g->window != before.window || g->history != before.history) {
        for (uint32_t i = 0; i < s->n_tags; i++) {
            tag_state *t = s->by_id[s->order[i]];
            if (rolling_resize(&t->roll, g->window) != 0 ||
                timebuf_resize(&t->hist, g->history) != 0) {
                s->resize_failures++;
                rc = -ENOMEM;
            }
        }
    }
    if (s->hooks.on_plan)
        s->hooks.on_plan(s->hooks.ctx, s, &before, why);
    return rc;
}

int tagstore_plan_for(tagstore *s, uint32_t tags, const char *why)
{
    if (tags < s->n_tags)
        tags = s->n_tags;
    if (tags > s->owned_ids)
        tags = s->owned_ids;
    if (tags <= s->grant.tags)
        return 0; /* plans only grow: tags never leave the store */
    budget_request req = s->request;
    req.tags = tags;
    budget_grant g;
    budget_derive(&req, &g); /* -ENOSPC: minimal sizes, g.over says so */
    return apply_plan(s, &req, &g, why);
}

int tagstore_set_limits(tagstore *s, uint32_t window, uint32_t history_capacity,
                        uint64_t memory_limit, int64_t history_ns)
{
    if (window == 0 || window > (1u << 26) || history_capacity < TIMEBUF_MIN_CAPACITY ||
        history_ns <= 0)
        return -EINVAL;
    budget_request req = s->request;
    req.window = window;
    req.history = history_capacity;
    req.limit_bytes = memory_limit;
    budget_grant g;
    int over = budget_derive(&req, &g);
    if (over == -EINVAL)
        return -EINVAL;
    s->p.window = window;
    s->p.history_capacity = history_capacity;
    s->p.memory_limit = memory_limit;
    s->p.history_ns = history_ns;
    for (uint32_t i = 0; i < s->n_tags; i++)
        s->by_id[s->order[i]]->hist.horizon_ns = history_ns;
    int rc = apply_plan(s, &req, &g, "reload");
    return rc ? rc : over;
}

uint64_t tagstore_state_bytes(const tagstore *s)
{
    uint64_t n = tables_bytes(s->p.max_tags);
    for (uint32_t i = 0; i < s->n_tags; i++) {
        const tag_state *t = s->by_id[s->order[i]];
        n += budget_chunk(sizeof *t) +
             (t->name != no_name ? budget_chunk(strlen(t->name) + 1) : 0) +
             budget_chunk(rolling_state_bytes(t->roll.window)) +
             budget_chunk(timebuf_state_bytes(t->hist.capacity));
    }
    return n;
}

uint32_t tagstore_shard_of(uint32_t tag_id, uint32_t shards)
{
    /* MurmurHash3's 32-bit finalizer: consecutive ids spread evenly. */
    uint32_t h = tag_id;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return shards ? h % shards : 0;
}

int tagstore_owns(const tagstore *s, uint32_t tag_id)
{
    return s->p.shard_n == 1 || tagstore_shard_of(tag_id, s->p.shard_n) == s->p.shard_k;
}

tag_state *tagstore_get(const tagstore *s, uint32_t tag_id)
{
    return tag_id < s->p.max_tags ? s->by_id[tag_id] : NULL;
}

tag_state *tagstore_at(const tagstore *s, uint32_t i)
{
    return i < s->n_tags ? s->by_id[s->order[i]] : NULL;
}

/* A tag beyond the plan: plan for more (what the catalog knows, and at
 * least an eighth more, so that plans change O(log tags) times). */
static void grow_plan(tagstore *s, uint32_t tag_id)
{
    uint32_t want = s->grant.tags + s->grant.tags / 8 + 1;
    uint32_t known = s->hooks.count_known_tags ? s->hooks.count_known_tags(s->hooks.ctx) : 0;
    if (known > want)
        want = known;
    char why[128];
    snprintf(why, sizeof why, "tag %u is tag %u of this shard, %u were planned for", tag_id,
             s->n_tags + 1, s->grant.tags);
    tagstore_plan_for(s, want, why); /* a tag left at its sizes was counted */
}

int tagstore_ensure(tagstore *s, uint32_t tag_id, tag_state **out)
{
    if (tag_id >= s->p.max_tags)
        return -ERANGE;
    if (s->by_id[tag_id]) {
        *out = s->by_id[tag_id];
        return 0;
    }
    if (!tagstore_owns(s, tag_id))
        return -EXDEV;
    if (s->n_tags >= s->grant.tags)
        grow_plan(s, tag_id);
    tag_state *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->id = tag_id;
    t->name = no_name;
    t->mode = INTERP_LINEAR;
    int rc = rolling_init(&t->roll, s->grant.window, s->p.deadband);
    if (rc == 0) {
        rc = timebuf_init(&t->hist, s->grant.history, s->p.history_ns, 0);
        if (rc != 0)
            rolling_free(&t->roll);
    }
    if (rc != 0) {
        free(t);
        return rc;
    }
    s->by_id[tag_id] = t;
    s->order[s->n_tags++] = tag_id;
    *out = t;
    return 0;
}

tag_state *tagstore_find_name(const tagstore *s, const char *name)
{
    if (!name || !*name)
        return NULL;
    for (uint32_t i = 0; i < s->n_tags; i++) {
        tag_state *t = s->by_id[s->order[i]];
        if (strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

int tagstore_set_meta(tagstore *s, tag_state *t, const char *name, uint8_t data_type)
{
    size_t n = strlen(name);
    if (n > TAG_NAME_MAX)
        n = TAG_NAME_MAX;
    if (strlen(t->name) != n || memcmp(t->name, name, n) != 0) {
        char *copy = n ? malloc(n + 1) : no_name;
        if (!copy)
            return -ENOMEM;
        if (n) {
            memcpy(copy, name, n);
            copy[n] = '\0';
        }
        if (t->name != no_name)
            free(t->name);
        t->name = copy;
    }
    t->data_type = data_type;
    t->has_meta = 1;
    int step = data_type == SHM_DT_BOOL || data_type == SHM_DT_BIT;
    for (size_t i = 0; i < s->p.n_step_tags && !step; i++)
        step = strcmp(s->p.step_tags[i], t->name) == 0;
    t->mode = step ? INTERP_STEP : INTERP_LINEAR;
    return 0;
}

int tagstore_apply(tagstore *s, uint32_t tag_id, int64_t t_ns, double value, int quality)
{
    tag_state *t;
    int rc = tagstore_ensure(s, tag_id, &t);
    if (rc == -ERANGE)
        s->bad_id++;
    else if (rc == -EXDEV)
        s->foreign_shard++;
    if (rc != 0)
        return rc;
    s->applied++;
    if (quality != SHM_Q_GOOD) {
        rolling_exclude_quality(&t->roll);
        return 0;
    }
    if (rolling_add(&t->roll, t_ns, value))
        timebuf_insert(&t->hist, t_ns, value);
    return 0;
}

uint64_t tagstore_purge(tagstore *s, int64_t cutoff_ns)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < s->n_tags; i++)
        n += timebuf_purge(&s->by_id[s->order[i]]->hist, cutoff_ns);
    return n;
}

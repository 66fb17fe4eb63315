/*
 * tagstore.h — the stats service's per-tag state: for each tag id of this
 * shard, a rolling window, a time-window buffer and what the catalog says
 * about the tag (name, data type, hence linear or step interpolation).
 *
 * Sharding: a tag belongs to shard K of N when tagstore_shard_of(id, N) ==
 * K (a 32-bit mix of the id, mod N), so shards split tags evenly whatever
 * the ids. Ids must be below max_tags (the segment's catalog capacity).
 *
 * Memory: window and history are asked for (params); what each tag gets is
 * derived from memory_limit and the number of tags planned for (budget.h),
 * and allocated whole when the tag first appears, so the store never holds
 * more than the plan says. The plan starts from planned_tags (what the
 * configuration or the catalog announce); when more tags appear than
 * planned, the plan grows (to what hooks.count_known_tags reports, and by at
 * least an eighth) and, when the limit binds, every tag is shrunk to the new
 * sizes (the newest window values kept, the older half of the history
 * downsampled). hooks.on_plan hears of every change. Should even the
 * minimal sizes not fit, further tags still get them and the store reports
 * itself over its limit (grant.over), never dropping data.
 * Owned by the service's single thread; nothing here is thread-safe.
 */
#ifndef SHMBUS_STATS_TAGSTORE_H
#define SHMBUS_STATS_TAGSTORE_H

#include "budget.h"
#include "rolling.h"
#include "timebuf.h"
#include "trend.h"

#include <stddef.h>
#include <stdint.h>

#define TAG_NAME_MAX 255

/* Name bytes a tag is planned with (its name is allocated to fit). */
#define TAG_NAME_PLAN 40

typedef struct store_params {
    uint32_t window;              /* asked: rolling window, values */
    int64_t history_ns;           /* time-window horizon */
    uint32_t history_capacity;    /* asked: points per tag before downsampling */
    uint64_t memory_limit;        /* bytes for the store and every tag's state; 0 = none */
    uint32_t planned_tags;        /* tags to plan for at first (0: 1) */
    double deadband;              /* what counts as a change */
    suggest_limits limits;        /* suggested poll interval bounds */
    uint32_t shard_k, shard_n;    /* this shard; n >= 1 */
    uint32_t max_tags;            /* ids must be below this */
    const char *const *step_tags; /* names interpolated as steps (state tags) */
    size_t n_step_tags;
} store_params;

typedef struct tag_state {
    rolling_window roll;
    timebuf hist;
    int64_t meta_tried_ns; /* last catalog lookup (monotonic) */
    char *name;            /* "" until the catalog names it; allocated to fit */
    uint32_t id;
    uint8_t has_meta;
    uint8_t data_type; /* enum shm_data_type, when has_meta */
    uint8_t mode;      /* enum interp_mode */
} tag_state;

struct tagstore;

typedef struct tagstore_hooks {
    void *ctx;
    /* Tags this shard is known to have (e.g. its catalog entries); 0 when
     * unknown. Asked when more tags appear than planned. May be NULL. */
    uint32_t (*count_known_tags)(void *ctx);
    /* The plan changed (more tags, new limits): previous grant and why.
     * May be NULL. */
    void (*on_plan)(void *ctx, const struct tagstore *s, const budget_grant *before,
                    const char *why);
} tagstore_hooks;

typedef struct tagstore {
    store_params p;
    tagstore_hooks hooks;
    tag_state **by_id; /* p.max_tags entries */
    uint32_t *order;   /* ids in order of first appearance */
    uint32_t n_tags;
    uint32_t owned_ids;     /* ids below max_tags this shard can own: the most tags there can be */
    budget_request request; /* what the current plan was derived from */
    budget_grant grant;     /* window and history every tag has now */
    uint64_t replans;       /* plan changes since start */
    uint64_t resize_failures; /* tags left at their old sizes for lack of memory */
    uint64_t applied;       /* records that reached a tag */
    uint64_t foreign_shard; /* records of other shards' tags */
    uint64_t bad_id;        /* records with tag_id >= max_tags */
} tagstore;

/* Plans for p->planned_tags and prepares the tables. Returns 0, -EINVAL
 * (bad parameters), -ENOSPC (the limit cannot hold the planned tags even at
 * the minimal sizes; s->request and s->grant say what was needed, and the
 * store is left empty) or -ENOMEM. */
int tagstore_init(tagstore *s, const store_params *p);

/* The plan p would start with (no allocation): fills *req and *grant and
 * returns what budget_derive() returns, or -EINVAL. */
int tagstore_plan(const store_params *p, budget_request *req, budget_grant *grant);

/* Plans for at least `tags` tags (never fewer than there are, never more
 * than owned_ids); shrinks every tag when the limit binds. Returns 0 or
 * -ENOMEM (some tags kept their sizes; counted in resize_failures). */
int tagstore_plan_for(tagstore *s, uint32_t tags, const char *why);

/* New asked sizes, limit and horizon (a reload): re-derives the plan for
 * the tags planned and resizes every tag, growing or shrinking. Returns 0,
 * -EINVAL (nothing changed), -ENOSPC (applied at the minimal sizes; the
 * store is over its limit) or -ENOMEM (some tags kept their sizes). */
int tagstore_set_limits(tagstore *s, uint32_t window, uint32_t history_capacity,
                        uint64_t memory_limit, int64_t history_ns);

/* Bytes the per-tag state and the tables take now, counted like the plan
 * (malloc chunks, actual name lengths). */
uint64_t tagstore_state_bytes(const tagstore *s);
void tagstore_free(tagstore *s);

uint32_t tagstore_shard_of(uint32_t tag_id, uint32_t shards);

/* 1 when the tag belongs to this shard. */
int tagstore_owns(const tagstore *s, uint32_t tag_id);

/* The state of a tag, or NULL when it never appeared. */
tag_state *tagstore_get(const tagstore *s, uint32_t tag_id);

/* The state of a tag, created when missing. Returns 0, -ERANGE (id too
 * large), -EXDEV (another shard's tag), -ENOMEM. */
int tagstore_ensure(tagstore *s, uint32_t tag_id, tag_state **out);

/* Finds a tag by name (NULL when none). */
tag_state *tagstore_find_name(const tagstore *s, const char *name);

/* Names a tag and chooses its interpolation: step for booleans and bits and
 * for names listed in step_tags, linear otherwise. Returns 0 or -ENOMEM
 * (the name stays as it was). */
int tagstore_set_meta(tagstore *s, tag_state *t, const char *name, uint8_t data_type);

/* Applies one sample: quality 0 (GOOD) with a finite value enters the
 * window and the history; anything else is counted as excluded. Returns 0
 * or what tagstore_ensure() returns (the sample is then counted, not kept). */
int tagstore_apply(tagstore *s, uint32_t tag_id, int64_t t_ns, double value, int quality);

/* Ages every tag's history against cutoff_ns; returns points purged. */
uint64_t tagstore_purge(tagstore *s, int64_t cutoff_ns);

/* Tag number i (0..n_tags-1) in order of first appearance. */
tag_state *tagstore_at(const tagstore *s, uint32_t i);

#endif

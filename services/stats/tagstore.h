/*
 * tagstore.h — the stats service's per-tag state: for each tag id of this
 * shard, a rolling window, a time-window buffer and what the catalog says
 * about the tag (name, data type, hence linear or step interpolation).
 *
 * Sharding: a tag belongs to shard K of N when tagstore_shard_of(id, N) ==
 * K (a 32-bit mix of the id, mod N), so shards split tags evenly whatever
 * the ids. Ids must be below max_tags (the segment's catalog capacity).
 * Owned by the service's single thread; nothing here is thread-safe.
 */
#ifndef SHMBUS_STATS_TAGSTORE_H
#define SHMBUS_STATS_TAGSTORE_H

#include "rolling.h"
#include "timebuf.h"
#include "trend.h"

#include <stddef.h>
#include <stdint.h>

#define TAG_NAME_MAX 255

typedef struct store_params {
    uint32_t window;              /* rolling window, values */
    int64_t history_ns;           /* time-window horizon */
    uint32_t history_capacity;    /* points per tag before downsampling */
    double deadband;              /* what counts as a change */
    suggest_limits limits;        /* suggested poll interval bounds */
    uint32_t shard_k, shard_n;    /* this shard; n >= 1 */
    uint32_t max_tags;            /* ids must be below this */
    const char *const *step_tags; /* names interpolated as steps (state tags) */
    size_t n_step_tags;
} store_params;

typedef struct tag_state {
    uint32_t id;
    char name[TAG_NAME_MAX + 1]; /* "" until the catalog names it */
    int has_meta;
    uint8_t data_type;     /* enum shm_data_type, when has_meta */
    int mode;              /* enum interp_mode */
    int64_t meta_tried_ns; /* last catalog lookup (monotonic) */
    rolling_window roll;
    timebuf hist;
} tag_state;

typedef struct tagstore {
    store_params p;
    tag_state **by_id; /* p.max_tags entries */
    uint32_t *order;   /* ids in order of first appearance */
    uint32_t n_tags;
    uint64_t applied;       /* records that reached a tag */
    uint64_t foreign_shard; /* records of other shards' tags */
    uint64_t bad_id;        /* records with tag_id >= max_tags */
} tagstore;

/* Returns 0, -EINVAL (bad parameters) or -ENOMEM. */
int tagstore_init(tagstore *s, const store_params *p);
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
 * for names listed in step_tags, linear otherwise. */
void tagstore_set_meta(tagstore *s, tag_state *t, const char *name, uint8_t data_type);

/* Applies one sample: quality 0 (GOOD) with a finite value enters the
 * window and the history; anything else is counted as excluded. Returns 0
 * or what tagstore_ensure() returns (the sample is then counted, not kept). */
int tagstore_apply(tagstore *s, uint32_t tag_id, int64_t t_ns, double value, int quality);

/* Ages every tag's history against cutoff_ns; returns points purged. */
uint64_t tagstore_purge(tagstore *s, int64_t cutoff_ns);

/* Tag number i (0..n_tags-1) in order of first appearance. */
tag_state *tagstore_at(const tagstore *s, uint32_t i);

#endif

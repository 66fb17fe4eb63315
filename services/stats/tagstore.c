/*
 * tagstore.c — per-tag state of the stats service (see tagstore.h).
 */
#include "tagstore.h"

#include "interp.h"

#include <errno.h>
#include <shmbus/shm.h>
#include <stdlib.h>
#include <string.h>

int tagstore_init(tagstore *s, const store_params *p)
{
    memset(s, 0, sizeof *s);
    if (p->shard_n == 0 || p->shard_k >= p->shard_n || p->max_tags == 0 || p->window == 0 ||
        p->history_ns <= 0 || p->history_capacity < TIMEBUF_MIN_CAPACITY)
        return -EINVAL;
    s->p = *p;
    s->by_id = calloc(p->max_tags, sizeof *s->by_id);
    s->order = calloc(p->max_tags, sizeof *s->order);
    if (!s->by_id || !s->order) {
        tagstore_free(s);
        return -ENOMEM;
    }
    return 0;
}

void tagstore_free(tagstore *s)
{
    if (s->by_id) {
        for (uint32_t i = 0; i < s->n_tags; i++) {
            tag_state *t = s->by_id[s->order[i]];
            rolling_free(&t->roll);
            timebuf_free(&t->hist);
            free(t);
        }
    }
    free(s->by_id);
    free(s->order);
    memset(s, 0, sizeof *s);
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
    tag_state *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->id = tag_id;
    t->mode = INTERP_LINEAR;
    int rc = rolling_init(&t->roll, s->p.window, s->p.deadband);
    if (rc == 0) {
        rc = timebuf_init(&t->hist, s->p.history_capacity, s->p.history_ns, 0);
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

void tagstore_set_meta(tagstore *s, tag_state *t, const char *name, uint8_t data_type)
{
    size_t n = strlen(name);
    if (n > TAG_NAME_MAX)
        n = TAG_NAME_MAX;
    memcpy(t->name, name, n);
    t->name[n] = '\0';
    t->data_type = data_type;
    t->has_meta = 1;
    int step = data_type == SHM_DT_BOOL || data_type == SHM_DT_BIT;
    for (size_t i = 0; i < s->p.n_step_tags && !step; i++)
        step = strcmp(s->p.step_tags[i], t->name) == 0;
    t->mode = step ? INTERP_STEP : INTERP_LINEAR;
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

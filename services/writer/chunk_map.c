/*
 * chunk_map.c — the map from a column's key (device << 32 | tag) to a small
 * number that the block builder and the seal's rewrite keep their columns
 * by: open addressing with linear probing, at most half full, one 64-bit
 * multiply per lookup. Values are stored plus one, so 0 marks a free slot.
 * Not thread-safe: one map per owner.
 */
#include "chunk_internal.h"

#include <stdlib.h>

static inline size_t slot_of(uint64_t key, size_t cap)
{
    return (size_t)((key * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static int map_resize(chunk_map *m, size_t cap)
{
    uint64_t *keys = calloc(cap, sizeof *keys);
    uint32_t *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return chunk__fail(CHUNK_ENOMEM, "out of memory for %zu columns", m->n + 1);
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->vals[i])
            continue;
        size_t j = slot_of(m->keys[i], cap);
        while (vals[j])
            j = (j + 1) & (cap - 1);
        keys[j] = m->keys[i];
        vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return 0;
}

uint32_t chunk_map_get(const chunk_map *m, uint64_t key)
{
    if (!m->cap)
        return 0;
    for (size_t j = slot_of(key, m->cap); m->vals[j]; j = (j + 1) & (m->cap - 1))
        if (m->keys[j] == key)
            return m->vals[j];
    return 0;
}

int chunk_map_put(chunk_map *m, uint64_t key, uint32_t value)
{
    if ((m->n + 1) * 2 > m->cap) {
        int rc = map_resize(m, m->cap ? m->cap * 2 : 256);
        if (rc < 0)
            return rc;
    }
    size_t j = slot_of(key, m->cap);
    while (m->vals[j] && m->keys[j] != key)
        j = (j + 1) & (m->cap - 1);
    m->n += !m->vals[j];
    m->keys[j] = key;
    m->vals[j] = value;
    return 0;
}

void chunk_map_clear(chunk_map *m)
{
    if (m->cap)
        memset(m->vals, 0, m->cap * sizeof *m->vals);
    m->n = 0;
}

void chunk_map_free(chunk_map *m)
{
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof *m);
}

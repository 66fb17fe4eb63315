/*
 * chunk_series.c — growable per-tag point arrays (struct of arrays), and
 * the time-ordering and duplicate removal the query applies after merging
 * the chunks of several writers.
 */
#include "chunk_internal.h"

#include <stdlib.h>

/* One allocation holds the seven arrays (8-byte ones first, so each stays
 * aligned): growing a series is one malloc, not seven reallocs. */
#define POINT_BYTES (4 * 8 + 2 + 1 + 1)

/* Moves the series into one allocation of exactly cap points. */
static int series_realloc(chunk_series *s, size_t cap)
{
    if (cap > SIZE_MAX / POINT_BYTES)
        return chunk__fail(CHUNK_ENOMEM, "out of memory for %zu points", cap);
    uint8_t *m = malloc(cap * POINT_BYTES);
    if (!m)
        return chunk__fail(CHUNK_ENOMEM, "out of memory for %zu points", cap);
    chunk_series t = {.n = s->n, .cap = cap, .mem = m};
    t.ts = (int64_t *)(void *)m;
    t.seq = (uint64_t *)(void *)(m + 8 * cap);
    t.value = (double *)(void *)(m + 16 * cap);
    t.raw = (int64_t *)(void *)(m + 24 * cap);
    t.flags = (uint16_t *)(void *)(m + 32 * cap);
    t.quality = m + 34 * cap;
    t.exception = m + 35 * cap;
    if (s->n) {
        memcpy(t.ts, s->ts, s->n * 8);
        memcpy(t.seq, s->seq, s->n * 8);
        memcpy(t.value, s->value, s->n * 8);
        memcpy(t.raw, s->raw, s->n * 8);
        memcpy(t.flags, s->flags, s->n * 2);
        memcpy(t.quality, s->quality, s->n);
        memcpy(t.exception, s->exception, s->n);
    }
    free(s->mem);
    t.tmp = s->tmp;
    t.tmp_cap = s->tmp_cap;
    *s = t;
    return 0;
}

/* Capacity doubles from a small start: a block builder holds thousands of
 * columns of a few points each, and what a column once held stays
 * allocated for the next block. */
int chunk_series_reserve(chunk_series *s, size_t n)
{
    if (n > SIZE_MAX / 2 - s->n)
        return CHUNK_ENOMEM;
    size_t need = s->n + n;
    if (need <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 8;
    while (cap < need)
        cap *= 2;
    return series_realloc(s, cap);
}

int chunk_series_reserve_exact(chunk_series *s, size_t n)
{
    if (n > SIZE_MAX / 2 - s->n)
        return CHUNK_ENOMEM;
    size_t need = s->n + n;
    return need <= s->cap ? 0 : series_realloc(s, need);
}

size_t chunk_series_memory(const chunk_series *s)
{
    return s->cap * POINT_BYTES + s->tmp_cap * sizeof *s->tmp;
}

void chunk_series_free(chunk_series *s)
{
    free(s->mem);
    free(s->tmp);
    memset(s, 0, sizeof *s);
}

void chunk_series_clear(chunk_series *s)
{
    s->n = 0;
}

struct order_key {
    int64_t ts;
    uint64_t seq;
    size_t idx;
};

static int cmp_key(const void *a, const void *b)
{
    const struct order_key *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->seq != y->seq)
        return x->seq < y->seq ? -1 : 1;
    return 0;
}

static bool in_order(const chunk_series *s)
{
    for (size_t i = 1; i < s->n; i++)
        if (s->ts[i] < s->ts[i - 1] || (s->ts[i] == s->ts[i - 1] && s->seq[i] <= s->seq[i - 1]))
            return false;
    return true;
}

/* Applies a permutation by copying into a fresh series. */
static int permute(chunk_series *s, const struct order_key *k)
{
    chunk_series t = {0};
    int rc = chunk_series_reserve(&t, s->n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < s->n; i++) {
        size_t j = k[i].idx;
        t.ts[i] = s->ts[j];
        t.seq[i] = s->seq[j];
        t.value[i] = s->value[j];
        t.raw[i] = s->raw[j];
        t.quality[i] = s->quality[j];
        t.exception[i] = s->exception[j];
        t.flags[i] = s->flags[j];
    }
    t.n = s->n;
    t.tmp = s->tmp;
    t.tmp_cap = s->tmp_cap;
    s->tmp = NULL;
    chunk_series_free(s);
    *s = t;
    return 0;
}

int chunk_series_sort_dedupe(chunk_series *s, size_t *removed_out)
{
    if (!in_order(s)) {
        struct order_key *k = malloc(s->n * sizeof *k);
        if (!k)
            return chunk__fail(CHUNK_ENOMEM, "out of memory sorting %zu points", s->n);
        for (size_t i = 0; i < s->n; i++)
            k[i] = (struct order_key){s->ts[i], s->seq[i], i};
        qsort(k, s->n, sizeof *k, cmp_key);
        int rc = permute(s, k);
        free(k);
        if (rc < 0)
            return rc;
    }
    /* The same sequence number is the same record: equal timestamps too, so
     * copies are adjacent after sorting. */
    size_t out = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (out > 0 && s->seq[i] == s->seq[out - 1] && s->ts[i] == s->ts[out - 1])
            continue;
        if (out != i) {
            s->ts[out] = s->ts[i];
            s->seq[out] = s->seq[i];
            s->value[out] = s->value[i];
            s->raw[out] = s->raw[i];
            s->quality[out] = s->quality[i];
            s->exception[out] = s->exception[i];
            s->flags[out] = s->flags[i];
        }
        out++;
    }
    if (removed_out)
        *removed_out = s->n - out;
    s->n = out;
    return 0;
}

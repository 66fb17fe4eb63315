/*
 * timebuf.h — the time-window buffer of one tag: points of the last H
 * seconds, in time order, in a ring of fixed capacity.
 *
 * - Points older than the horizon are purged as they age: on every insert
 *   relative to the newest timestamp, and by timebuf_purge() against a
 *   clock the caller chooses (the service uses wall-clock time).
 * - Near capacity the older half is downsampled with min/max buckets
 *   (first, last, min and max of each bucket survive) instead of dropping
 *   data; the resolution of old data thus decays geometrically with age.
 *   compacted_until_ns says up to when points may be survivors of that.
 * - Timestamps out of order: a point older than the newest is inserted at
 *   its place (O(distance from the end)) and counted; a point at a
 *   timestamp already stored replaces that point's value (last write wins)
 *   and is counted; a point older than newest - horizon is dropped and
 *   counted.
 * Not thread-safe: one owner.
 */
#ifndef SHMBUS_STATS_TIMEBUF_H
#define SHMBUS_STATS_TIMEBUF_H

#include "statpoint.h"

#include <stddef.h>
#include <stdint.h>

#define TIMEBUF_MIN_CAPACITY 64
#define TIMEBUF_DEFAULT_BUCKET 16

enum timebuf_insert_result {
    TIMEBUF_APPENDED = 0, /* newest point */
    TIMEBUF_INSERTED = 1, /* out of order, placed in time order */
    TIMEBUF_REPLACED = 2, /* same timestamp as a stored point: value replaced */
    TIMEBUF_TOO_OLD = 3,  /* older than the horizon: dropped */
};

typedef struct timebuf {
    stat_point *pts;
    uint32_t capacity;
    uint32_t head; /* physical index of the oldest point */
    uint32_t count;
    uint32_t bucket; /* downsampling bucket size */
    int64_t horizon_ns;
    int64_t compacted_until_ns; /* INT64_MIN while nothing was downsampled */
    uint64_t appended, inserted, replaced, too_old, purged;
    uint64_t compactions, downsampled_away;
} timebuf;

/* capacity >= TIMEBUF_MIN_CAPACITY and >= 4 * bucket; horizon_ns > 0;
 * bucket 0 = TIMEBUF_DEFAULT_BUCKET. Returns 0, -EINVAL, -ENOMEM. */
int timebuf_init(timebuf *tb, uint32_t capacity, int64_t horizon_ns, uint32_t bucket);
void timebuf_free(timebuf *tb);

/* Bytes of the points array of a buffer of `capacity` points. */
size_t timebuf_state_bytes(uint32_t capacity);

/* Gives the buffer room for `capacity` points (same bounds as
 * timebuf_init). Shrinking below the points held downsamples the older
 * half until they fit (as at capacity), so extremes survive. Returns 0,
 * -EINVAL or -ENOMEM (tb unchanged). */
int timebuf_resize(timebuf *tb, uint32_t capacity);

/* Stores a point (v must be finite); returns an enum timebuf_insert_result. */
int timebuf_insert(timebuf *tb, int64_t t_ns, double v);

/* Removes points with t < cutoff_ns; returns how many. */
uint32_t timebuf_purge(timebuf *tb, int64_t cutoff_ns);

/* Downsamples the older half now (normally automatic at capacity). */
void timebuf_compact(timebuf *tb);

/* Point i in time order, 0 = oldest (i < count). */
static inline stat_point timebuf_at(const timebuf *tb, uint32_t i)
{
    uint32_t p = tb->head + i;
    if (p >= tb->capacity)
        p -= tb->capacity;
    return tb->pts[p];
}

/* Index of the first point with t >= t_ns (count when none). */
uint32_t timebuf_lower_bound(const timebuf *tb, int64_t t_ns);
/* Index of the first point with t > t_ns (count when none). */
uint32_t timebuf_upper_bound(const timebuf *tb, int64_t t_ns);

/* Copies the points with from_ns <= t <= to_ns into out (room for max_out);
 * returns how many there are in the range (copies min(that, max_out)). */
uint32_t timebuf_range(const timebuf *tb, int64_t from_ns, int64_t to_ns, stat_point *out,
                       uint32_t max_out);

#endif

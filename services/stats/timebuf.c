/*
 * timebuf.c — time-ordered ring of points with ageing and downsampling
 * (see timebuf.h for the rules).
 */
#include "timebuf.h"

#include "downsample.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

size_t timebuf_state_bytes(uint32_t capacity)
{
    return (size_t)capacity * sizeof(stat_point);
}

static int capacity_ok(uint32_t capacity, uint32_t bucket)
{
    return capacity >= TIMEBUF_MIN_CAPACITY && bucket >= 5 && capacity / 4 >= bucket;
}

int timebuf_init(timebuf *tb, uint32_t capacity, int64_t horizon_ns, uint32_t bucket)
{
    memset(tb, 0, sizeof *tb);
    if (bucket == 0)
        bucket = TIMEBUF_DEFAULT_BUCKET;
    if (!capacity_ok(capacity, bucket) || horizon_ns <= 0)
        return -EINVAL;
    tb->pts = malloc(timebuf_state_bytes(capacity));
    if (!tb->pts)
        return -ENOMEM;
    tb->capacity = capacity;
    tb->bucket = bucket;
    tb->horizon_ns = horizon_ns;
    tb->compacted_until_ns = INT64_MIN;
    return 0;
}

void timebuf_free(timebuf *tb)
{
    free(tb->pts);
    memset(tb, 0, sizeof *tb);
}

static stat_point *slot(timebuf *tb, uint32_t i)
{
    uint32_t p = tb->head + i;
    if (p >= tb->capacity)
        p -= tb->capacity;
    return &tb->pts[p];
}

uint32_t timebuf_lower_bound(const timebuf *tb, int64_t t_ns)
{
    uint32_t lo = 0, hi = tb->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (timebuf_at(tb, mid).t_ns < t_ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint32_t timebuf_upper_bound(const timebuf *tb, int64_t t_ns)
{
    uint32_t lo = 0, hi = tb->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (timebuf_at(tb, mid).t_ns <= t_ns)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static void reverse(stat_point *p, uint32_t from, uint32_t to)
{
    while (from + 1 < to) {
        stat_point t = p[from];
        p[from] = p[to - 1];
        p[to - 1] = t;
        from++;
        to--;
    }
}

/* Rotates the storage so that the oldest point is at index 0. */
static void linearize(timebuf *tb)
{
    if (tb->head == 0)
        return;
    reverse(tb->pts, 0, tb->head);
    reverse(tb->pts, tb->head, tb->capacity);
    reverse(tb->pts, 0, tb->capacity);
    tb->head = 0;
}

void timebuf_compact(timebuf *tb)
{
    uint32_t older = tb->count / 2;
    if (older < tb->bucket)
        return;
    linearize(tb);
    uint32_t kept = (uint32_t)downsample_minmax(tb->pts, older, tb->bucket);
    memmove(tb->pts + kept, tb->pts + older, (size_t)(tb->count - older) * sizeof *tb->pts);
    tb->count = tb->count - older + kept;
    tb->compacted_until_ns = tb->pts[kept - 1].t_ns;
    tb->compactions++;
    tb->downsampled_away += older - kept;
}

int timebuf_resize(timebuf *tb, uint32_t capacity)
{
    if (!capacity_ok(capacity, tb->bucket))
        return -EINVAL;
    if (capacity == tb->capacity)
        return 0;
    stat_point *pts = malloc(timebuf_state_bytes(capacity));
    if (!pts)
        return -ENOMEM;
    /* Terminates: count > capacity >= 4 * bucket, so the older half holds
     * at least 2 full buckets, and a full bucket (>= 5 points) keeps at
     * most 4 of them. */
    while (tb->count > capacity)
        timebuf_compact(tb);
    for (uint32_t i = 0; i < tb->count; i++)
        pts[i] = timebuf_at(tb, i);
    free(tb->pts);
    tb->pts = pts;
    tb->capacity = capacity;
    tb->head = 0;
    return 0;
}

uint32_t timebuf_purge(timebuf *tb, int64_t cutoff_ns)
{
    uint32_t n = 0;
    while (tb->count > 0 && tb->pts[tb->head].t_ns < cutoff_ns) {
        tb->head = tb->head + 1 == tb->capacity ? 0 : tb->head + 1;
        tb->count--;
        n++;
    }
    tb->purged += n;
    return n;
}

int timebuf_insert(timebuf *tb, int64_t t_ns, double v)
{
    if (tb->count > 0) {
        int64_t newest = timebuf_at(tb, tb->count - 1).t_ns;
        if (t_ns == newest) {
            slot(tb, tb->count - 1)->v = v;
            tb->replaced++;
            return TIMEBUF_REPLACED;
        }
        if (t_ns < newest) {
            /* The difference is positive and below 2^64: exact unsigned. */
            if ((uint64_t)newest - (uint64_t)t_ns > (uint64_t)tb->horizon_ns) {
                tb->too_old++;
                return TIMEBUF_TOO_OLD;
            }
            uint32_t at = timebuf_lower_bound(tb, t_ns);
            if (at < tb->count && timebuf_at(tb, at).t_ns == t_ns) {
                slot(tb, at)->v = v;
                tb->replaced++;
                return TIMEBUF_REPLACED;
            }
            if (tb->count == tb->capacity) {
                timebuf_compact(tb);
                at = timebuf_lower_bound(tb, t_ns);
            }
            for (uint32_t i = tb->count; i > at; i--)
                *slot(tb, i) = *slot(tb, i - 1);
            *slot(tb, at) = (stat_point){.t_ns = t_ns, .v = v};
            tb->count++;
            tb->inserted++;
            return TIMEBUF_INSERTED;
        }
    }
    if (tb->count == tb->capacity)
        timebuf_compact(tb);
    *slot(tb, tb->count) = (stat_point){.t_ns = t_ns, .v = v};
    tb->count++;
    tb->appended++;
    /* Age out what the newest point leaves behind the horizon. */
    if (t_ns > INT64_MIN + tb->horizon_ns)
        timebuf_purge(tb, t_ns - tb->horizon_ns);
    return TIMEBUF_APPENDED;
}

uint32_t timebuf_range(const timebuf *tb, int64_t from_ns, int64_t to_ns, stat_point *out,
                       uint32_t max_out)
{
    if (from_ns > to_ns)
        return 0;
    uint32_t lo = timebuf_lower_bound(tb, from_ns);
    uint32_t hi = timebuf_upper_bound(tb, to_ns);
    uint32_t n = hi > lo ? hi - lo : 0;
    for (uint32_t i = 0; i < n && i < max_out; i++)
        out[i] = timebuf_at(tb, lo + i);
    return n;
}

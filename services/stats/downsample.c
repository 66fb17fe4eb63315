/*
 * downsample.c — min/max buckets (see downsample.h). In place is safe: the
 * output index never passes the start of the bucket being read.
 */
#include "downsample.h"

size_t downsample_minmax(stat_point *pts, size_t n, size_t bucket)
{
    if (bucket < 5)
        return n;
    size_t out = 0;
    for (size_t start = 0; start < n; start += bucket) {
        size_t end = start + bucket < n ? start + bucket : n;
        size_t lo = start, hi = start;
        for (size_t i = start + 1; i < end; i++) {
            if (pts[i].v < pts[lo].v)
                lo = i;
            if (pts[i].v > pts[hi].v)
                hi = i;
        }
        size_t keep[4] = {start, lo < hi ? lo : hi, lo < hi ? hi : lo, end - 1};
        size_t previous = (size_t)-1;
        stat_point picked[4];
        size_t n_picked = 0;
        for (int k = 0; k < 4; k++) {
            if (keep[k] == previous)
                continue;
            picked[n_picked++] = pts[keep[k]];
            previous = keep[k];
        }
        /* Copy after reading: out <= start, so nothing unread is overwritten. */
        for (size_t k = 0; k < n_picked; k++)
            pts[out++] = picked[k];
    }
    return out;
}

size_t downsample_bucket_for(size_t n, size_t max_points)
{
    if (max_points < 8)
        max_points = 8;
    if (n <= max_points)
        return 1;
    size_t buckets = max_points / 4;
    size_t bucket = (n + buckets - 1) / buckets;
    return bucket < 5 ? 5 : bucket;
}

/*
 * backoff.c — reconnect delays: exponential with full jitter, so a group of
 * exporters that lost their database at the same instant do not knock on
 * its door in lockstep when it comes back (AWS architecture blog,
 * "Exponential Backoff And Jitter"). A xorshift generator seeded per
 * process is plenty for spreading retries.
 */
#include "export.h"

void export_backoff_init(export_backoff *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed)
{
    b->min_ms = min_ms ? min_ms : 1;
    b->max_ms = max_ms < b->min_ms ? b->min_ms : max_ms;
    b->attempt = 0;
    b->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
}

static uint64_t next_random(export_backoff *b)
{
    uint64_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    return x;
}

uint32_t export_backoff_next(export_backoff *b)
{
    uint64_t cap = b->min_ms;
    for (uint32_t i = 0; i < b->attempt && cap < b->max_ms; i++)
        cap *= 2;
    if (cap > b->max_ms)
        cap = b->max_ms;
    if (b->attempt < 64)
        b->attempt++;
    uint64_t low = b->min_ms / 2;
    if (low > cap)
        low = cap;
    return (uint32_t)(low + next_random(b) % (cap - low + 1));
}

void export_backoff_reset(export_backoff *b)
{
    b->attempt = 0;
}

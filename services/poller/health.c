/*
 * health.c — reconnect backoff and per-unit circuit breaker (see health.h).
 */
#include "health.h"

void backoff_init(backoff *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed)
{
    *b = (backoff){.min_ms = min_ms ? min_ms : 1,
                   .max_ms = max_ms < min_ms ? min_ms : max_ms,
                   .rng = seed | 1};
}

bool backoff_ready(const backoff *b, int64_t now_ns)
{
    return now_ns >= b->next_try_ns;
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

uint32_t backoff_failed(backoff *b, int64_t now_ns)
{
    uint64_t delay = b->min_ms;
    for (uint32_t i = 0; i < b->attempts && delay < b->max_ms; i++)
        delay *= 2;
    if (delay > b->max_ms)
        delay = b->max_ms;
    /* "Equal jitter": never less than half the delay, so a storm of
     * reconnects spreads out but the bound max_ms still holds. */
    uint64_t half = delay / 2;
    uint64_t jittered = half + (half ? xorshift(&b->rng) % (delay - half + 1) : delay);
    if (b->attempts < 64)
        b->attempts++;
    b->next_try_ns = now_ns + (int64_t)jittered * 1000000;
    return (uint32_t)jittered;
}

void backoff_lost(backoff *b, int64_t now_ns)
{
    b->attempts = 0;
    b->next_try_ns = now_ns;
}

void backoff_succeeded(backoff *b)
{
    b->attempts = 0;
    b->next_try_ns = 0;
}

void breaker_init(breaker *b, uint32_t threshold, uint32_t open_s)
{
    *b = (breaker){.threshold = threshold ? threshold : 1, .open_ms = open_s * 1000};
}

bool breaker_allows(const breaker *b, int64_t now_ns)
{
    return now_ns >= b->open_until_ns;
}

bool breaker_cycle(breaker *b, bool answered, int64_t now_ns)
{
    if (answered) {
        b->failures = 0;
        b->open_until_ns = 0;
        return false;
    }
    b->failures++;
    if (b->failures < b->threshold)
        return false;
    /* Opens on the threshold, and again after every failed half-open try. */
    b->open_until_ns = now_ns + (int64_t)b->open_ms * 1000000;
    b->opened++;
    return true;
}

/*
 * health.h — the two small state machines that keep a failing device from
 * wasting the poller's time: reconnect backoff (exponential with jitter)
 * and the per-unit circuit breaker. Pure functions of the state and the
 * clock (monotonic ns), so they are tested without sockets.
 */
#ifndef SHMBUS_POLLER_HEALTH_H
#define SHMBUS_POLLER_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

typedef struct backoff {
    uint32_t min_ms, max_ms;
    uint32_t attempts;   /* failed connects in a row */
    int64_t next_try_ns; /* no connect before this */
    uint64_t rng;        /* xorshift state for the jitter */
} backoff;

void backoff_init(backoff *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed);
/* A connect may be tried now. */
bool backoff_ready(const backoff *b, int64_t now_ns);
/* After a failed connect: the next try is min_ms * 2^attempts (capped at
 * max_ms) from now, jittered uniformly into [delay/2, delay]. Returns the
 * delay chosen in ms. */
uint32_t backoff_failed(backoff *b, int64_t now_ns);
/* After a lost connection: the first reconnect is tried at once. */
void backoff_lost(backoff *b, int64_t now_ns);
void backoff_succeeded(backoff *b);

typedef struct breaker {
    uint32_t threshold;     /* failed cycles in a row that open it */
    uint32_t open_ms;
    uint32_t failures;      /* failed cycles in a row */
    int64_t open_until_ns;  /* > now: open, requests are skipped */
    uint64_t opened;        /* times it opened */
} breaker;

void breaker_init(breaker *b, uint32_t threshold, uint32_t open_s);
/* Requests to the unit may be sent (closed, or open time over: half-open). */
bool breaker_allows(const breaker *b, int64_t now_ns);
/* End of a cycle in which the unit was asked: `answered` when any request
 * got an answer (data or exception). Returns true when this opened it. */
bool breaker_cycle(breaker *b, bool answered, int64_t now_ns);

#endif

/*
 * stress_common.h — the record format and bookkeeping shared by the libshm
 * concurrency tests (test_thread_stress.c, test_process_stress.c,
 * test_kill.c). Header-only (static inline) because each test is one
 * executable built from one source file.
 *
 * A stress record names its producer and a per-producer counter, carries the
 * sequence number the producer was given when it knew it (claim API), and is
 * filled to a length derived from the counter with a pattern derived from
 * (producer, counter): a consumer can tell a torn, misplaced or foreign
 * record from a good one without any other state.
 *
 * Bitmaps live in memory shared by threads or, through MAP_SHARED, by
 * processes; bits are set with one atomic fetch_or, whose return value says
 * whether the bit was already set (a duplicate delivery).
 */
#ifndef STRESS_COMMON_H
#define STRESS_COMMON_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define STRESS_MAGIC 0x53545231u /* "STR1" */

struct stress_rec {
    uint32_t magic;
    uint16_t producer;
    uint16_t len; /* the whole record's length, repeated inside it */
    uint64_t counter;
    uint64_t seq; /* 0 when the producer did not know it (shm_put) */
};
#define STRESS_REC_MIN ((uint32_t)sizeof(struct stress_rec))

static inline uint8_t stress_fill_byte(uint32_t producer, uint64_t counter, uint32_t j)
{
    return (uint8_t)(counter * 131u + producer * 7u + j);
}

/* Length of record `counter`: STRESS_REC_MIN..payload, varying. */
static inline uint32_t stress_len(uint64_t counter, uint32_t payload)
{
    return STRESS_REC_MIN + (uint32_t)(counter % (payload - STRESS_REC_MIN + 1));
}

/* Writes record (producer, counter, seq) into buf; returns its length. */
static inline uint32_t stress_write(void *buf, uint32_t payload, uint32_t producer, uint64_t counter,
                                    uint64_t seq)
{
    uint32_t len = stress_len(counter, payload);
    struct stress_rec h = {STRESS_MAGIC, (uint16_t)producer, (uint16_t)len, counter, seq};
    memcpy(buf, &h, sizeof h);
    uint8_t *p = (uint8_t *)buf;
    for (uint32_t j = STRESS_REC_MIN; j < len; j++)
        p[j] = stress_fill_byte(producer, counter, j);
    return len;
}

/* Checks a delivered record; returns NULL when good, else what is wrong
 * (written into why). Fills *out with the header. */
static inline const char *stress_check(const void *data, uint32_t len, uint64_t seq,
                                       uint32_t producers, uint64_t per_producer,
                                       struct stress_rec *out, char *why, size_t why_len)
{
    if (len < STRESS_REC_MIN) {
        snprintf(why, why_len, "seq %llu: record of %u bytes is too short",
                 (unsigned long long)seq, len);
        return why;
    }
    memcpy(out, data, sizeof *out);
    if (out->magic != STRESS_MAGIC || out->len != len || out->producer >= producers ||
        out->counter >= per_producer || (out->seq != 0 && out->seq != seq)) {
        snprintf(why, why_len,
                 "seq %llu: bad header (magic %08x, len %u/%u, producer %u, counter %llu, "
                 "seq %llu)",
                 (unsigned long long)seq, out->magic, out->len, len, out->producer,
                 (unsigned long long)out->counter, (unsigned long long)out->seq);
        return why;
    }
    const uint8_t *p = (const uint8_t *)data;
    for (uint32_t j = STRESS_REC_MIN; j < len; j++) {
        if (p[j] != stress_fill_byte(out->producer, out->counter, j)) {
            snprintf(why, why_len, "seq %llu (producer %u, counter %llu): byte %u torn",
                     (unsigned long long)seq, out->producer, (unsigned long long)out->counter,
                     j);
            return why;
        }
    }
    return NULL;
}

/* Sets bit i; returns the bit's previous value (1: it was already set). */
static inline int bitmap_set(_Atomic uint64_t *bits, uint64_t i)
{
    uint64_t m = (uint64_t)1 << (i % 64);
    return (atomic_fetch_or_explicit(&bits[i / 64], m, memory_order_relaxed) & m) != 0;
}

static inline int bitmap_get(_Atomic uint64_t *bits, uint64_t i)
{
    return (atomic_load_explicit(&bits[i / 64], memory_order_relaxed) >> (i % 64)) & 1u;
}

static inline uint64_t bitmap_count(_Atomic uint64_t *bits, uint64_t nbits)
{
    uint64_t n = 0;
    for (uint64_t w = 0; w < nbits / 64; w++)
        n += (uint64_t)__builtin_popcountll(atomic_load_explicit(&bits[w], memory_order_relaxed));
    for (uint64_t i = nbits / 64 * 64; i < nbits; i++)
        n += (uint64_t)bitmap_get(bits, i);
    return n;
}

static inline size_t bitmap_bytes(uint64_t nbits)
{
    return (size_t)((nbits + 63) / 64 * 8);
}

/* The first error any thread or process hit, kept in shared memory. */
struct stress_error {
    _Atomic uint32_t count;
    char first[256];
};

static inline void stress_fail(struct stress_error *e, const char *msg)
{
    if (atomic_fetch_add(&e->count, 1) == 0) {
        size_t n = strlen(msg);
        if (n >= sizeof e->first)
            n = sizeof e->first - 1;
        memcpy(e->first, msg, n);
        e->first[n] = '\0';
    }
}

#endif

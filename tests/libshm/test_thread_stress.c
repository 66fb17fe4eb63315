/*
 * test_thread_stress.c — the ring driven by threads in one process, so that
 * ThreadSanitizer sees every access (ctest label `concurrency`, also run in
 * the TSan build).
 *
 * Four producer threads (two with shm_put, two with batch claims written in
 * place) feed two consumer groups: "a" with three competing consumers and
 * "b" with one. Every thread has its own producer or consumer handle. Each
 * record names its producer and a per-producer counter (stress_common.h).
 *
 *  - backpressure: every record reaches every group exactly once, each
 *    consumer sees each producer's records in increasing order, the lone
 *    consumer of "b" sees them without gaps, and the ring's and groups'
 *    counters say the same (consumed == put, nothing lost, padded or
 *    re-delivered, tail == head).
 *  - drop-oldest on a small ring (consumers of "b" yield after each batch,
 *    so they are lapped): no record is delivered twice or torn, order per
 *    producer holds, and per group consumed + lost == records put, with
 *    consumed equal to what the consumers counted.
 *
 * Under sanitizers (SHMBUS_SANITIZED) the counts are scaled down.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <shmbus/shm.h>

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shmtest.h"
#include "stress_common.h"

#define PRODUCERS 4
#define GROUPS 2
#define CONSUMERS_A 3
#define CONSUMERS_B 1
#define CONSUMERS (CONSUMERS_A + CONSUMERS_B)

#if defined(SHMBUS_SANITIZED)
#define PER_PRODUCER 100000u
#else
#define PER_PRODUCER 250000u
#endif
#define TOTAL ((uint64_t)PRODUCERS * PER_PRODUCER)
/* A run that has not finished by then is wedged: the threads are stopped and
 * the test fails with the ring's state (ctest's timeout would say less). */
#define WEDGE_MS 90000

static const char *const group_names[GROUPS] = {"a", "b"};

struct run {
    shm_segment *seg;
    uint32_t policy;
    uint32_t payload;
    _Atomic uint32_t producers_done;
    _Atomic uint32_t threads_done;
    _Atomic uint64_t delivered[GROUPS];
    _Atomic uint64_t duplicates[GROUPS];
    _Atomic uint64_t lost_seen[GROUPS]; /* sum of b.lost over acked batches */
    _Atomic uint64_t *seen[GROUPS];     /* bit per (producer, counter) */
    _Atomic uint64_t log_lines;
    struct stress_error err;
};

struct producer_arg {
    struct run *run;
    uint32_t id;
};

struct consumer_arg {
    struct run *run;
    uint32_t group;
    uint32_t id;
    uint64_t batches;
};

static void failf(struct run *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(struct run *run, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    stress_fail(&run->err, msg);
}

/* Cheap per-thread pseudo-random numbers (xorshift). */
/* The library's warnings (utilization crossings: constant on these small
 * rings) are counted rather than printed. */
static void count_log(void *ctx, int level, const char *message)
{
    (void)level;
    (void)message;
    atomic_fetch_add((_Atomic uint64_t *)ctx, 1);
}

static uint32_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

static void *producer_main(void *arg)
{
    struct producer_arg *pa = arg;
    struct run *run = pa->run;
    char name[32];
    snprintf(name, sizeof name, "tp%u", pa->id);
    shm_producer *p = NULL;
    int rc = shm_producer_open(run->seg, name, &p);
    if (rc) {
        failf(run, "producer %u: open: %s", pa->id, shm_strerror(rc));
        atomic_fetch_add(&run->threads_done, 1);
        return NULL;
    }
    uint64_t rs = 0x9e3779b97f4a7c15ull * (pa->id + 1);
    uint8_t buf[SHM_SLOT_MAX];
    uint64_t counter = 0;
    int use_claim = pa->id >= PRODUCERS / 2;
    while (counter < PER_PRODUCER && atomic_load(&run->err.count) == 0) {
        if (!use_claim) {
            uint32_t len = stress_write(buf, run->payload, pa->id, counter, 0);
            rc = shm_put(p, buf, len, NULL);
            if (rc == 0) {
                counter++;
            } else if (rc == SHM_EFULL && run->policy == SHM_POLICY_BACKPRESSURE) {
                sched_yield();
            } else {
                failf(run, "producer %u: put: %s", pa->id, shm_strerror(rc));
                break;
            }
            continue;
        }
        uint32_t want = 1 + rnd(&rs) % 16;
        if (want > PER_PRODUCER - counter)
            want = (uint32_t)(PER_PRODUCER - counter);
        shm_slots c;
        int got = shm_claim(p, want, &c);
        if (got == SHM_EFULL && run->policy == SHM_POLICY_BACKPRESSURE) {
            sched_yield();
            continue;
        }
        if (got <= 0 || (uint32_t)got > want) {
            failf(run, "producer %u: claim %u: %d (%s)", pa->id, want, got, shm_strerror(got));
            break;
        }
        for (uint32_t i = 0; i < (uint32_t)got; i++) {
            uint32_t len = stress_write(shm_slots_buf(&c, i), c.payload, pa->id, counter + i,
                                        c.first_seq + i);
            if (shm_slots_set_len(&c, i, len) != 0)
                failf(run, "producer %u: set_len %u", pa->id, len);
        }
        rc = shm_commit(p, &c);
        if (rc < 0 || rc > got) {
            failf(run, "producer %u: commit: %d", pa->id, rc);
            break;
        }
        /* Under drop-oldest, records of lapped slots are committed into a
         * scratch buffer: they count as put and lost, not as committed. */
        if (run->policy == SHM_POLICY_BACKPRESSURE && rc != got)
            failf(run, "producer %u: committed %d of %d", pa->id, rc, got);
        counter += (uint32_t)got;
    }
    shm_producer_close(&p);
    atomic_fetch_add(&run->producers_done, 1);
    atomic_fetch_add(&run->threads_done, 1);
    return NULL;
}

/* True once the group has nothing more to hand out. */
static int group_finished(struct run *run, uint32_t group)
{
    if (run->policy == SHM_POLICY_BACKPRESSURE)
        return atomic_load(&run->delivered[group]) >= TOTAL;
    if (atomic_load(&run->producers_done) < PRODUCERS)
        return 0;
    shm_ring_stats rs;
    shm_group_stats gs[SHM_MAX_GROUPS];
    if (shm_ring_stats_get(run->seg, &rs) != 0)
        return 1;
    int n = shm_group_stats_get(run->seg, gs, SHM_MAX_GROUPS);
    for (int i = 0; i < n; i++)
        if (strcmp(gs[i].name, group_names[group]) == 0)
            return gs[i].next_seq >= rs.head_seq;
    return 1;
}

static int all_done(void *arg)
{
    struct run *run = arg;
    return atomic_load(&run->threads_done) == PRODUCERS + CONSUMERS;
}

static void *consumer_main(void *arg)
{
    struct consumer_arg *ca = arg;
    struct run *run = ca->run;
    shm_consumer *c = NULL;
    char name[32];
    snprintf(name, sizeof name, "tc%u%s", ca->id, group_names[ca->group]);
    int rc = shm_consumer_open(run->seg, group_names[ca->group], name, &c);
    if (rc) {
        failf(run, "consumer %s: open: %s", name, shm_strerror(rc));
        atomic_fetch_add(&run->threads_done, 1);
        return NULL;
    }
    /* Counters increase with sequence numbers for each producer, and one
     * consumer's batches come in increasing sequence order. */
    int64_t last_counter[PRODUCERS];
    uint64_t last_seq = 0;
    for (int i = 0; i < PRODUCERS; i++)
        last_counter[i] = -1;
    int lone = ca->group == 1 && CONSUMERS_B == 1;
    uint64_t rs = 0x2545f4914f6cdd1dull * (ca->id + 7 + 10 * ca->group);
    char why[200];
    while (atomic_load(&run->err.count) == 0) {
        shm_batch b;
        uint32_t max = 1 + rnd(&rs) % 64;
        int n = shm_consume(c, max, 5, &b);
        if (n < 0) {
            failf(run, "consumer %s: consume: %s", name, shm_strerror(n));
            break;
        }
        if (n == 0) {
            if (group_finished(run, ca->group))
                break;
            continue;
        }
        if ((uint32_t)n > max || b.redelivered)
            failf(run, "consumer %s: batch of %d (max %u), redelivered %u", name, n, max,
                  b.redelivered);
        shm_record r;
        while (shm_batch_next(c, &b, &r) == 1) {
            struct stress_rec h;
            if (stress_check(r.data, r.len, r.seq, PRODUCERS, PER_PRODUCER, &h, why,
                             sizeof why)) {
                failf(run, "consumer %s: %s", name, why);
                continue;
            }
            if ((int64_t)h.counter <= last_counter[h.producer] || r.seq <= last_seq)
                failf(run, "consumer %s: producer %u counter %llu after %lld (seq %llu after %llu)",
                      name, h.producer, (unsigned long long)h.counter,
                      (long long)last_counter[h.producer], (unsigned long long)r.seq,
                      (unsigned long long)last_seq);
            if (lone && run->policy == SHM_POLICY_BACKPRESSURE &&
                ((int64_t)h.counter != last_counter[h.producer] + 1 ||
                 (last_seq != 0 && r.seq != last_seq + 1)))
                failf(run, "consumer %s: gap: producer %u counter %llu after %lld", name,
                      h.producer, (unsigned long long)h.counter,
                      (long long)last_counter[h.producer]);
            last_counter[h.producer] = (int64_t)h.counter;
            last_seq = r.seq;
            if (bitmap_set(run->seen[ca->group], (uint64_t)h.producer * PER_PRODUCER + h.counter))
                atomic_fetch_add(&run->duplicates[ca->group], 1);
        }
        if (b.delivered + b.lost + b.pads + b.invalid != b.count)
            failf(run, "consumer %s: batch of %u: %u delivered + %u lost + %u pads + %u invalid",
                  name, b.count, b.delivered, b.lost, b.pads, b.invalid);
        if (b.pads || b.invalid ||
            (run->policy == SHM_POLICY_BACKPRESSURE && b.lost))
            failf(run, "consumer %s: unexpected %u pads, %u invalid, %u lost", name, b.pads,
                  b.invalid, b.lost);
        rc = shm_ack(c, &b);
        if (rc) {
            failf(run, "consumer %s: ack: %s", name, shm_strerror(rc));
            break;
        }
        ca->batches++;
        atomic_fetch_add(&run->delivered[ca->group], b.delivered);
        atomic_fetch_add(&run->lost_seen[ca->group], b.lost);
        /* Make the lone consumer slow under drop-oldest: it gets lapped. */
        if (lone && run->policy == SHM_POLICY_DROP_OLDEST)
            sched_yield();
    }
    shm_consumer_close(&c);
    atomic_fetch_add(&run->threads_done, 1);
    return NULL;
}

static void run_stress(uint32_t policy, uint32_t slots)
{
    char name[64];
    shmtest_segment_name(name, sizeof name, "tstress");
    shm_segment_options o = {.slot_count = slots, .slot_size = 128, .policy = policy};
    struct run *run = calloc(1, sizeof *run);
    assert_non_null(run);
    run->policy = policy;
    int rc = shm_segment_open(name, &o, SHM_OPEN_CREATE, &run->seg);
    if (rc)
        fail_msg("open %s: %s (%s)", name, shm_strerror(rc), shm_last_error());
    shm_segment_set_log(run->seg, count_log, &run->log_lines);
    shm_segment_info info;
    assert_int_equal(shm_segment_info_get(run->seg, &info), 0);
    run->payload = info.slot_payload;
    for (int g = 0; g < GROUPS; g++) {
        run->seen[g] = calloc(1, bitmap_bytes(TOTAL));
        assert_non_null(run->seen[g]);
    }

    pthread_t ct[CONSUMERS], pt[PRODUCERS];
    struct consumer_arg ca[CONSUMERS];
    struct producer_arg pa[PRODUCERS];
    int64_t t0 = shmtest_now_ms();
    /* Consumers first: a group starts at the newest record when created. */
    shm_consumer *anchor[GROUPS];
    for (int g = 0; g < GROUPS; g++)
        assert_int_equal(shm_consumer_open(run->seg, group_names[g], "anchor", &anchor[g]), 0);
    for (uint32_t i = 0; i < CONSUMERS; i++) {
        ca[i] = (struct consumer_arg){run, i < CONSUMERS_A ? 0u : 1u, i, 0};
        assert_int_equal(pthread_create(&ct[i], NULL, consumer_main, &ca[i]), 0);
    }
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        pa[i] = (struct producer_arg){run, i};
        assert_int_equal(pthread_create(&pt[i], NULL, producer_main, &pa[i]), 0);
    }
    if (!shmtest_wait_until(all_done, run, WEDGE_MS)) {
        shm_ring_stats wrs;
        shm_group_stats wgs[SHM_MAX_GROUPS];
        memset(wgs, 0, sizeof wgs);
        shm_ring_stats_get(run->seg, &wrs);
        int ng = shm_group_stats_get(run->seg, wgs, SHM_MAX_GROUPS);
        failf(run, "wedged after %d ms: head %llu, group %s next %llu tail %llu, group %s "
                   "next %llu tail %llu, delivered %llu/%llu",
              WEDGE_MS, (unsigned long long)wrs.head_seq, ng > 0 ? wgs[0].name : "?",
              (unsigned long long)wgs[0].next_seq, (unsigned long long)wgs[0].tail_seq,
              ng > 1 ? wgs[1].name : "?", (unsigned long long)wgs[1].next_seq,
              (unsigned long long)wgs[1].tail_seq,
              (unsigned long long)atomic_load(&run->delivered[0]),
              (unsigned long long)atomic_load(&run->delivered[1]));
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    for (int i = 0; i < CONSUMERS; i++)
        pthread_join(ct[i], NULL);
    int64_t ms = shmtest_now_ms() - t0;
    if (atomic_load(&run->err.count))
        fail_msg("%u errors; first: %s", atomic_load(&run->err.count), run->err.first);

    shm_ring_stats rs;
    shm_group_stats gs[SHM_MAX_GROUPS];
    assert_int_equal(shm_ring_stats_get(run->seg, &rs), 0);
    assert_int_equal(shm_group_stats_get(run->seg, gs, SHM_MAX_GROUPS), GROUPS);
    print_message("%s: %llu records x %d groups in %lld ms; put %llu, lapped %llu, full %llu, "
                  "%llu warnings logged\n",
                  policy == SHM_POLICY_BACKPRESSURE ? "backpressure" : "drop-oldest",
                  (unsigned long long)TOTAL, GROUPS, (long long)ms,
                  (unsigned long long)rs.records_put, (unsigned long long)rs.claims_lapped,
                  (unsigned long long)rs.full_rejections,
                  (unsigned long long)atomic_load(&run->log_lines));
    assert_int_equal(rs.records_put, TOTAL);
    assert_int_equal(rs.slots_reclaimed, 0);
    uint64_t lost_total = 0;
    for (int g = 0; g < GROUPS; g++) {
        uint64_t distinct = bitmap_count(run->seen[g], TOTAL);
        uint64_t delivered = atomic_load(&run->delivered[g]);
        print_message("  group %s: consumed %llu, lost %llu (%llu events), distinct %llu, "
                      "duplicates %llu\n",
                      gs[g].name, (unsigned long long)gs[g].consumed,
                      (unsigned long long)gs[g].lost, (unsigned long long)gs[g].lost_events,
                      (unsigned long long)distinct,
                      (unsigned long long)atomic_load(&run->duplicates[g]));
        assert_string_equal(gs[g].name, group_names[g]);
        assert_int_equal(atomic_load(&run->duplicates[g]), 0);
        assert_int_equal(distinct, delivered);
        assert_int_equal(gs[g].consumed, delivered);
        assert_int_equal(gs[g].padded, 0);
        assert_int_equal(gs[g].invalid, 0);
        assert_int_equal(gs[g].redelivered, 0);
        assert_int_equal(gs[g].consumed + gs[g].lost, rs.records_put);
        assert_int_equal(gs[g].next_seq, rs.head_seq);
        assert_int_equal(gs[g].tail_seq, rs.head_seq);
        if (policy == SHM_POLICY_BACKPRESSURE) {
            assert_int_equal(delivered, TOTAL);
            assert_int_equal(gs[g].lost, 0);
        } else {
            /* Losses inside batches are counted by the consumers; the rest
             * by the member that skipped a lapped range. */
            assert_true(gs[g].lost >= atomic_load(&run->lost_seen[g]));
        }
        lost_total += gs[g].lost;
    }
    if (policy == SHM_POLICY_DROP_OLDEST)
        assert_true(lost_total > 0); /* the small ring was lapped: the check above had work */
    for (int g = 0; g < GROUPS; g++)
        shm_consumer_close(&anchor[g]);
    for (int g = 0; g < GROUPS; g++)
        free(run->seen[g]);
    shm_segment_close(&run->seg);
    free(run);
}

static void test_backpressure(void **state)
{
    (void)state;
    run_stress(SHM_POLICY_BACKPRESSURE, 256);
}

static void test_drop_oldest(void **state)
{
    (void)state;
    run_stress(SHM_POLICY_DROP_OLDEST, 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_drop_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_process_stress.c — the ring between processes: three producer
 * processes, two consumer groups ("a" with two competing consumer processes,
 * "b" with one), every process attached to the segment by name after fork,
 * all started together by a process-shared barrier. Ten million records
 * (fewer under sanitizers), run once per overflow policy.
 *
 * Each record names its producer and a per-producer counter
 * (stress_common.h). Consumers set one bit per (producer, counter) and group
 * in a MAP_SHARED bitmap; a bit found already set is a duplicate.
 *  - backpressure: every record reaches every group exactly once (no bit
 *    missing, none set twice), each consumer sees each producer's records in
 *    increasing order (the lone consumer of "b": without gaps), and the
 *    counters agree: consumed == put, nothing lost or padded, tail == head.
 *  - drop-oldest (smaller ring: the groups get lapped): no duplicate, no torn
 *    record, order per producer holds, and per group delivered + counted
 *    lost == put, with delivered == consumed == bits set.
 * A run that does not finish within its deadline fails with the ring's state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <shmbus/shm.h>

#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "shmtest.h"
#include "stress_common.h"

#define PRODUCERS 3
#define GROUPS 2
#define CONSUMERS_A 2
#define CONSUMERS_B 1
#define CONSUMERS (CONSUMERS_A + CONSUMERS_B)

#if defined(SHMBUS_SANITIZED)
#define PER_PRODUCER 500000u
#else
#define PER_PRODUCER 3400000u /* 10.2 million records in all */
#endif
#define TOTAL ((uint64_t)PRODUCERS * PER_PRODUCER)
#define DEADLINE_MS 240000

static const char *const group_names[GROUPS] = {"a", "b"};

/* Everything the processes share, in one MAP_SHARED block. */
struct shared {
    char segment[64];
    uint32_t policy;
    _Atomic uint32_t producers_done;
    _Atomic uint64_t delivered[GROUPS];
    _Atomic uint64_t duplicates[GROUPS];
    _Atomic uint64_t batches[CONSUMERS];
    struct stress_error err;
};

struct ctx {
    struct shared *sh;
    _Atomic uint64_t *seen[GROUPS]; /* MAP_SHARED bitmaps */
    shmtest_barrier *start;
    uint32_t id;
};

static struct ctx ctx_g;

static void failf(struct shared *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(struct shared *sh, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    stress_fail(&sh->err, msg);
}

static void quiet_log(void *ctx, int level, const char *message)
{
    (void)ctx;
    (void)level;
    (void)message;
}

static uint32_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (uint32_t)(*s >> 11);
}

static shm_segment *attach(struct shared *sh)
{
    shm_segment *seg = NULL;
    int rc = shm_segment_open(sh->segment, NULL, SHM_OPEN_ATTACH, &seg);
    if (rc) {
        failf(sh, "attach %s: %s (%s)", sh->segment, shm_strerror(rc), shm_last_error());
        return NULL;
    }
    shm_segment_set_log(seg, quiet_log, NULL);
    return seg;
}

/* Producer process `id`: producer 0 puts record by record, the others claim
 * batches of 1..64 and write them in place. */
static int producer_proc(void *arg)
{
    struct ctx *cx = arg;
    struct shared *sh = cx->sh;
    uint32_t id = cx->id;
    shm_segment *seg = attach(sh);
    shm_producer *p = NULL;
    int rc = seg ? shm_producer_open(seg, "stress-producer", &p) : SHM_ENOENT;
    if (rc && seg)
        failf(sh, "producer %u: open: %s", id, shm_strerror(rc));
    shmtest_barrier_wait(cx->start);
    if (rc)
        return 1;
    shm_segment_info info;
    shm_segment_info_get(seg, &info);
    uint64_t rs = 0x9e3779b97f4a7c15ull * (id + 1);
    uint8_t buf[SHM_SLOT_MAX];
    uint64_t counter = 0;
    while (counter < PER_PRODUCER && atomic_load(&sh->err.count) == 0) {
        if (id == 0) {
            uint32_t len = stress_write(buf, info.slot_payload, id, counter, 0);
            rc = shm_put(p, buf, len, NULL);
            if (rc == 0)
                counter++;
            else if (rc == SHM_EFULL)
                sched_yield();
            else
                failf(sh, "producer %u: put: %s", id, shm_strerror(rc));
            continue;
        }
        uint32_t want = 1 + rnd(&rs) % 64;
        if (want > PER_PRODUCER - counter)
            want = (uint32_t)(PER_PRODUCER - counter);
        shm_slots c;
        int got = shm_claim(p, want, &c);
        if (got == SHM_EFULL) {
            sched_yield();
            continue;
        }
        if (got <= 0 || (uint32_t)got > want) {
            failf(sh, "producer %u: claim %u: %d (%s)", id, want, got, shm_strerror(got));
            break;
        }
        for (uint32_t i = 0; i < (uint32_t)got; i++)
            shm_slots_set_len(&c, i,
                              stress_write(shm_slots_buf(&c, i), c.payload, id, counter + i,
                                           c.first_seq + i));
        rc = shm_commit(p, &c);
        if (rc < 0 || (sh->policy == SHM_POLICY_BACKPRESSURE && rc != got))
            failf(sh, "producer %u: commit of %d: %d", id, got, rc);
        counter += (uint32_t)got;
    }
    shm_producer_close(&p);
    shm_segment_close(&seg);
    return atomic_load(&sh->err.count) ? 1 : 0;
}

static int group_finished(struct shared *sh, shm_segment *seg, uint32_t group)
{
    if (sh->policy == SHM_POLICY_BACKPRESSURE)
        return atomic_load(&sh->delivered[group]) >= TOTAL;
    if (atomic_load(&sh->producers_done) == 0)
        return 0;
    shm_ring_stats rs;
    shm_group_stats gs[SHM_MAX_GROUPS];
    shm_ring_stats_get(seg, &rs);
    int n = shm_group_stats_get(seg, gs, SHM_MAX_GROUPS);
    for (int i = 0; i < n; i++)
        if (strcmp(gs[i].name, group_names[group]) == 0)
            return gs[i].next_seq >= rs.head_seq;
    return 1;
}

/* Consumer process `id`: ids below CONSUMERS_A are in group "a". */
static int consumer_proc(void *arg)
{
    struct ctx *cx = arg;
    struct shared *sh = cx->sh;
    uint32_t id = cx->id;
    uint32_t group = id < CONSUMERS_A ? 0 : 1;
    int lone = group == 1 && CONSUMERS_B == 1;
    shm_segment *seg = attach(sh);
    shm_consumer *c = NULL;
    int rc = seg ? shm_consumer_open(seg, group_names[group], "stress-consumer", &c) : SHM_ENOENT;
    if (rc && seg)
        failf(sh, "consumer %u: open: %s", id, shm_strerror(rc));
    shmtest_barrier_wait(cx->start);
    if (rc)
        return 1;
    int64_t last_counter[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        last_counter[i] = -1;
    uint64_t last_seq = 0;
    char why[200];
    while (atomic_load(&sh->err.count) == 0) {
        shm_batch b;
        int n = shm_consume(c, 256, 10, &b);
        if (n < 0) {
            failf(sh, "consumer %u: consume: %s", id, shm_strerror(n));
            break;
        }
        if (n == 0) {
            if (group_finished(sh, seg, group))
                break;
            continue;
        }
        shm_record r;
        while (shm_batch_next(c, &b, &r) == 1) {
            struct stress_rec h;
            if (stress_check(r.data, r.len, r.seq, PRODUCERS, PER_PRODUCER, &h, why,
                             sizeof why)) {
                failf(sh, "consumer %u: %s", id, why);
                continue;
            }
            if ((int64_t)h.counter <= last_counter[h.producer] || r.seq <= last_seq ||
                (lone && sh->policy == SHM_POLICY_BACKPRESSURE &&
                 (int64_t)h.counter != last_counter[h.producer] + 1))
                failf(sh, "consumer %u: producer %u counter %llu after %lld (seq %llu after %llu)",
                      id, h.producer, (unsigned long long)h.counter,
                      (long long)last_counter[h.producer], (unsigned long long)r.seq,
                      (unsigned long long)last_seq);
            last_counter[h.producer] = (int64_t)h.counter;
            last_seq = r.seq;
            if (bitmap_set(cx->seen[group], (uint64_t)h.producer * PER_PRODUCER + h.counter))
                atomic_fetch_add(&sh->duplicates[group], 1);
        }
        if (b.delivered + b.lost + b.pads + b.invalid != b.count || b.pads || b.invalid ||
            b.redelivered || (sh->policy == SHM_POLICY_BACKPRESSURE && b.lost))
            failf(sh, "consumer %u: batch of %u: %u delivered, %u lost, %u pads, %u invalid, "
                      "redelivered %u",
                  id, b.count, b.delivered, b.lost, b.pads, b.invalid, b.redelivered);
        rc = shm_ack(c, &b);
        if (rc) {
            failf(sh, "consumer %u: ack: %s", id, shm_strerror(rc));
            break;
        }
        atomic_fetch_add(&sh->delivered[group], b.delivered);
        atomic_fetch_add(&sh->batches[id], 1);
    }
    shm_consumer_close(&c);
    shm_segment_close(&seg);
    return atomic_load(&sh->err.count) ? 1 : 0;
}

/* Children of the current run, killed before a failure is reported (cmocka
 * goes on with the next test). */
static pid_t children[PRODUCERS + CONSUMERS];

static void kill_children(void)
{
    for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
        if (children[i] > 0)
            shmtest_kill(children[i]);
}

static void fail_wedged(struct shared *sh, shm_segment *seg, const char *what)
{
    kill_children();
    shm_ring_stats rs;
    shm_group_stats gs[SHM_MAX_GROUPS];
    memset(gs, 0, sizeof gs);
    shm_ring_stats_get(seg, &rs);
    shm_group_stats_get(seg, gs, SHM_MAX_GROUPS);
    fail_msg("%s not done after %d ms: head %llu, put %llu, group %s next %llu tail %llu "
             "delivered %llu, group %s next %llu tail %llu delivered %llu; errors %u: %s",
             what, DEADLINE_MS, (unsigned long long)rs.head_seq,
             (unsigned long long)rs.records_put, gs[0].name, (unsigned long long)gs[0].next_seq,
             (unsigned long long)gs[0].tail_seq, (unsigned long long)sh->delivered[0],
             gs[1].name, (unsigned long long)gs[1].next_seq, (unsigned long long)gs[1].tail_seq,
             (unsigned long long)sh->delivered[1], atomic_load(&sh->err.count), sh->err.first);
}

/* Waits for every pid; fails with the ring's state past the deadline. */
static void wait_all(struct shared *sh, shm_segment *seg, pid_t *pids, int n, int64_t deadline,
                     const char *what)
{
    for (int i = 0; i < n; i++) {
        int64_t left = deadline - shmtest_now_ms();
        int st = shmtest_wait_pid(pids[i], left > 0 ? (int)left : 0);
        if (st == -1)
            fail_wedged(sh, seg, what);
        for (int k = 0; k < PRODUCERS + CONSUMERS; k++)
            if (children[k] == pids[i])
                children[k] = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            kill_children();
            fail_msg("%s %d: exit status 0x%x; errors %u, first: %s", what, i, st,
                     atomic_load(&sh->err.count), sh->err.first);
        }
    }
}

static void run_stress(uint32_t policy, uint32_t slots)
{
    struct shared *sh = shmtest_shared_alloc(sizeof *sh);
    shmtest_segment_name(sh->segment, sizeof sh->segment, "pstress");
    sh->policy = policy;
    shm_segment_options o = {.slot_count = slots, .slot_size = 128, .policy = policy};
    shm_segment *seg = NULL;
    int rc = shm_segment_open(sh->segment, &o, SHM_OPEN_CREATE, &seg);
    if (rc)
        fail_msg("create %s: %s (%s)", sh->segment, shm_strerror(rc), shm_last_error());
    shm_segment_set_log(seg, quiet_log, NULL);
    /* Groups in a known order (their index follows creation), both from
     * the first record on. */
    for (int g = 0; g < GROUPS; g++) {
        shm_consumer *c;
        assert_int_equal(shm_consumer_open(seg, group_names[g], "creator", &c), 0);
        shm_consumer_close(&c);
    }
    ctx_g.sh = sh;
    for (int g = 0; g < GROUPS; g++)
        ctx_g.seen[g] = shmtest_shared_alloc(bitmap_bytes(TOTAL));
    ctx_g.start = shmtest_barrier_new(PRODUCERS + CONSUMERS + 1);

    pid_t cons[CONSUMERS], prods[PRODUCERS];
    for (uint32_t i = 0; i < CONSUMERS; i++) {
        ctx_g.id = i;
        cons[i] = children[i] = shmtest_fork(consumer_proc, &ctx_g);
        assert_true(cons[i] > 0);
    }
    for (uint32_t i = 0; i < PRODUCERS; i++) {
        ctx_g.id = i;
        prods[i] = children[CONSUMERS + i] = shmtest_fork(producer_proc, &ctx_g);
        assert_true(prods[i] > 0);
    }
    shmtest_barrier_wait(ctx_g.start);
    int64_t t0 = shmtest_now_ms();
    int64_t deadline = t0 + DEADLINE_MS;
    wait_all(sh, seg, prods, PRODUCERS, deadline, "producer");
    int64_t t_put = shmtest_now_ms() - t0;
    atomic_store(&sh->producers_done, 1);
    wait_all(sh, seg, cons, CONSUMERS, deadline, "consumer");
    int64_t ms = shmtest_now_ms() - t0;
    if (atomic_load(&sh->err.count))
        fail_msg("%u errors; first: %s", atomic_load(&sh->err.count), sh->err.first);

    shm_ring_stats rs;
    shm_group_stats gs[SHM_MAX_GROUPS];
    assert_int_equal(shm_ring_stats_get(seg, &rs), 0);
    assert_int_equal(shm_group_stats_get(seg, gs, SHM_MAX_GROUPS), GROUPS);
    print_message("%s: %llu records from %d producer processes to %d groups in %lld ms (puts "
                  "done at %lld ms); full refusals %llu, lapped claims %llu; batches per "
                  "consumer",
                  policy == SHM_POLICY_BACKPRESSURE ? "backpressure" : "drop-oldest",
                  (unsigned long long)TOTAL, PRODUCERS, GROUPS, (long long)ms, (long long)t_put,
                  (unsigned long long)rs.full_rejections, (unsigned long long)rs.claims_lapped);
    for (int i = 0; i < CONSUMERS; i++)
        print_message(" %llu", (unsigned long long)atomic_load(&sh->batches[i]));
    print_message("\n");
    assert_int_equal(rs.records_put, TOTAL);
    assert_int_equal(rs.slots_reclaimed, 0);
    for (int g = 0; g < GROUPS; g++) {
        uint64_t distinct = bitmap_count(ctx_g.seen[g], TOTAL);
        uint64_t delivered = atomic_load(&sh->delivered[g]);
        print_message("  group %s: consumed %llu, lost %llu (%llu events), distinct %llu, "
                      "duplicates %llu\n",
                      gs[g].name, (unsigned long long)gs[g].consumed,
                      (unsigned long long)gs[g].lost, (unsigned long long)gs[g].lost_events,
                      (unsigned long long)distinct,
                      (unsigned long long)atomic_load(&sh->duplicates[g]));
        assert_string_equal(gs[g].name, group_names[g]);
        assert_int_equal(atomic_load(&sh->duplicates[g]), 0);
        assert_int_equal(distinct, delivered);
        assert_int_equal(gs[g].consumed, delivered);
        assert_int_equal(gs[g].consumed + gs[g].lost, rs.records_put);
        assert_int_equal(gs[g].padded, 0);
        assert_int_equal(gs[g].invalid, 0);
        assert_int_equal(gs[g].redelivered, 0);
        assert_int_equal(gs[g].next_seq, rs.head_seq);
        assert_int_equal(gs[g].tail_seq, rs.head_seq);
        if (policy == SHM_POLICY_BACKPRESSURE) {
            assert_int_equal(distinct, TOTAL);
            assert_int_equal(gs[g].lost, 0);
        }
    }
    /* Both competing consumers of "a" did part of the work. */
    for (int i = 0; i < CONSUMERS_A; i++)
        assert_true(atomic_load(&sh->batches[i]) > 0);
    shm_segment_close(&seg);
}

static void test_backpressure(void **state)
{
    (void)state;
    run_stress(SHM_POLICY_BACKPRESSURE, 16384);
}

static void test_drop_oldest(void **state)
{
    (void)state;
    run_stress(SHM_POLICY_DROP_OLDEST, 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_drop_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

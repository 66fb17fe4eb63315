/*
 * test_ring_races.c — deterministic replays of interleavings that the
 * concurrency tests (test_thread_stress.c, test_process_stress.c,
 * test_kill.c) found to break the ring. Each test drives the public API up
 * to the racy point, performs the other party's half of the race directly
 * on the segment (through the private layout, as the racing member would),
 * and checks that the ring stays correct and live.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <shmbus/shm.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "internal.h"
#include "shmtest.h"

static void quiet_log(void *ctx, int level, const char *message)
{
    (void)ctx;
    (void)level;
    (void)message;
}

static shm_segment *make(const char *prefix, uint32_t slots, uint32_t policy)
{
    char name[64];
    shmtest_segment_name(name, sizeof name, prefix);
    shm_segment_options o = {.slot_count = slots, .slot_size = 64, .policy = policy};
    shm_segment *seg = NULL;
    int rc = shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg);
    if (rc)
        fail_msg("open %s: %s (%s)", name, shm_strerror(rc), shm_last_error());
    shm_segment_set_log(seg, quiet_log, NULL);
    return seg;
}

/*
 * Found by test_thread_stress (backpressure, three competing consumers):
 * the ring stayed full for good although every batch had been acknowledged.
 *
 * Consumer Y reads next = n0, announces PENDING [n0, 1) and is about to CAS
 * next. Consumer X, which already took the whole ring from n0, acknowledges it; its
 * tail computations see Y's PENDING entry and stop the tail at n0. Y's CAS
 * fails (next moved), Y clears its entry and finds nothing more to take.
 * Nothing is held any more, but the tail stays at n0: producers are refused
 * (ring full), consumers have nothing to acknowledge, and nobody recomputes
 * the tail.
 */
static void test_tail_left_behind_by_transient_pending(void **state)
{
    (void)state;
    const uint32_t slots = 64;
    shm_segment *seg = make("race-tail", slots, SHM_POLICY_BACKPRESSURE);
    shm_consumer *x, *y;
    shm_producer *p;
    assert_int_equal(shm_consumer_open(seg, "g", "x", &x), 0);
    assert_int_equal(shm_consumer_open(seg, "g", "y", &y), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    uint64_t first = 0, seq;
    for (uint32_t i = 0; i < slots; i++) {
        assert_int_equal(shm_put(p, "r", 1, &seq), 0);
        if (i == 0)
            first = seq;
    }
    assert_int_equal(shm_put(p, "r", 1, NULL), SHM_EFULL);

    /* Y: n0 = next, one record counted, entry announced, CAS not yet done. */
    struct shm__batch_entry *ye = &y->me->batch[0];
    atomic_store(&ye->start, first);
    atomic_store(&ye->count, 1u);
    atomic_store(&ye->state, (uint32_t)SHM__BATCH_PENDING);

    /* X takes the whole ring (batches of at most half of it), reads it and
     * acknowledges it. */
    shm_batch b;
    shm_record r;
    for (uint32_t taken = 0; taken < slots; taken += b.count) {
        assert_int_equal(shm_consume(x, slots, 0, &b), (int)slots / 2);
        while (shm_batch_next(x, &b, &r) == 1) {
        }
        assert_int_equal(b.delivered, slots / 2);
        assert_int_equal(shm_ack(x, &b), 0);
    }

    /* Y: its CAS of next from n0 fails; it withdraws the announcement. */
    atomic_store(&ye->state, (uint32_t)SHM__BATCH_NONE);
    assert_int_equal(shm_consume(y, slots, 0, &b), 0);

    /* Nothing is held: the ring must take new records again. */
    int rc = SHM_EFULL;
    for (int i = 0; i < 1000 && rc == SHM_EFULL; i++)
        rc = shm_put(p, "r", 1, NULL);
    shm_group_stats gs;
    assert_int_equal(shm_group_stats_get(seg, &gs, 1), 1);
    if (rc != 0)
        fail_msg("ring wedged: put says %s after 1000 tries; group next %llu, tail %llu "
                 "(first %llu), nothing held",
                 shm_strerror(rc), (unsigned long long)gs.next_seq,
                 (unsigned long long)gs.tail_seq, (unsigned long long)first);
    assert_int_equal(gs.next_seq, first + slots);
    assert_true(gs.tail_seq >= first + slots);
    shm_producer_close(&p);
    shm_consumer_close(&x);
    shm_consumer_close(&y);
    shm_segment_close(&seg);
}

/*
 * The same interleaving when nothing else happens afterwards: no producer
 * needs room, so nobody on the producer side recomputes the tail. A group
 * with nothing held must still show tail == next once its consumers have
 * looked for work: otherwise shmstat and the controller see a full,
 * lagging ring that is in fact empty, and the utilization warnings fire.
 * (Consumers here poll with timeout 0.)
 */
static void test_quiescent_tail_after_withdrawn_pending(void **state)
{
    (void)state;
    shm_segment *seg = make("race-quiet", 64, SHM_POLICY_BACKPRESSURE);
    shm_consumer *x, *y;
    shm_producer *p;
    assert_int_equal(shm_consumer_open(seg, "g", "x", &x), 0);
    assert_int_equal(shm_consumer_open(seg, "g", "y", &y), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    uint64_t first = 0, seq;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(shm_put(p, "r", 1, &seq), 0);
        if (i == 0)
            first = seq;
    }
    struct shm__batch_entry *ye = &y->me->batch[0];
    atomic_store(&ye->start, first);
    atomic_store(&ye->count, 1u);
    atomic_store(&ye->state, (uint32_t)SHM__BATCH_PENDING);
    shm_batch b;
    shm_record r;
    assert_int_equal(shm_consume(x, 64, 0, &b), 8);
    while (shm_batch_next(x, &b, &r) == 1) {
    }
    assert_int_equal(shm_ack(x, &b), 0);
    atomic_store(&ye->state, (uint32_t)SHM__BATCH_NONE);
    assert_int_equal(shm_consume(y, 64, 0, &b), 0);
    assert_int_equal(shm_consume(x, 64, 0, &b), 0);
    shm_group_stats gs;
    assert_int_equal(shm_group_stats_get(seg, &gs, 1), 1);
    if (gs.tail_seq != first + 8)
        fail_msg("nothing is held, yet the tail stays %llu behind next (lag %llu)",
                 (unsigned long long)(gs.next_seq - gs.tail_seq), (unsigned long long)gs.lag);
    shm_producer_close(&p);
    shm_consumer_close(&x);
    shm_consumer_close(&y);
    shm_segment_close(&seg);
}

/* A child that joins nothing and exits: its pid is then dead (reaped). */
static int exit_at_once(void *arg)
{
    (void)arg;
    return 0;
}

struct take_arg {
    shm_segment *seg;
    const char *group;
};

/* Joins a group, takes one batch and dies holding it (no ack, no close). */
static int take_and_die(void *arg)
{
    struct take_arg *a = arg;
    shm_consumer *c;
    if (shm_consumer_open(a->seg, a->group, "doomed", &c) != 0)
        return 1;
    shm_batch b;
    return shm_consume(c, 4, 0, &b) == 4 ? 0 : 2;
}

static int first_free_member(shm_segment *seg)
{
    for (uint32_t i = 0; i < seg->hdr->max_members; i++)
        if (atomic_load(&seg->members[i].state) == SHM_MEMBER_FREE)
            return (int)i;
    return -1;
}

static void run_child(int (*fn)(void *), void *arg)
{
    pid_t pid = shmtest_fork(fn, arg);
    assert_true(pid > 0);
    int st = shmtest_wait_pid(pid, 10000);
    assert_true(st != -1 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/*
 * Found by reading shm__member_join while writing test_kill: a process
 * killed after it set its bit in its group's member_bits but before it
 * stored ACTIVE leaves the slot JOINING; reclaim frees the slot but leaves
 * the bit. When a member of ANOTHER group later takes that slot and dies
 * holding a batch, a consumer of the first group finds that batch through
 * the stale bit and takes it over: group "b"'s records are re-delivered to
 * (and acknowledged by) group "a", group "b" never gets them, and group
 * "a"'s own orphan is left behind with its orphan count spent.
 */
static void test_dead_joiner_leaves_member_bit(void **state)
{
    (void)state;
    shm_segment *seg = make("race-join", 64, SHM_POLICY_BACKPRESSURE);
    shm_consumer *x, *w;
    shm_producer *p;
    assert_int_equal(shm_consumer_open(seg, "a", "x", &x), 0);
    assert_int_equal(shm_consumer_open(seg, "b", "w", &w), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    for (int i = 0; i < 8; i++)
        assert_int_equal(shm_put(p, "r", 1, NULL), 0);

    /* A joiner of group "a" killed between its member_bits update and ACTIVE. */
    pid_t dead = shmtest_fork(exit_at_once, NULL);
    assert_true(dead > 0);
    assert_true(shmtest_wait_pid(dead, 10000) != -1);
    int slot = first_free_member(seg);
    assert_true(slot >= 0);
    struct shm__group *ga = &seg->groups[x->group_index];
    atomic_store(&seg->members[slot].state, SHM__MEMBER_JOINING | ((uint32_t)dead << 8));
    shm__max_u32(&seg->hdr->members_used, (uint32_t)slot + 1);
    atomic_fetch_or(&ga->member_bits[slot / 64], (uint64_t)1 << (slot % 64));
    shm_reclaim_report rep;
    shm_reclaim(seg, &rep);
    assert_int_equal(rep.members_freed, 1);

    /* A consumer of "b" takes that slot and dies holding a batch; so does
     * one of "a" (in a later slot). */
    struct take_arg tb = {seg, "b"}, ta = {seg, "a"};
    run_child(take_and_die, &tb);
    run_child(take_and_die, &ta);
    shm_reclaim(seg, &rep);
    assert_int_equal(rep.batches_orphaned, 2);

    /* Group "a" must get its own orphan back, not group "b"'s. */
    shm_batch b;
    shm_record r;
    assert_int_equal(shm_consume(x, 64, 0, &b), 4);
    assert_int_equal(b.redelivered, 1);
    if (b.holder_member == slot)
        fail_msg("group a was handed group b's orphaned batch (registry slot %d, whose "
                 "stale member bit group a kept)",
                 slot);
    while (shm_batch_next(x, &b, &r) == 1) {
    }
    assert_int_equal(shm_ack(x, &b), 0);
    assert_int_equal(shm_consume(w, 64, 0, &b), 4);
    assert_int_equal(b.redelivered, 1);
    assert_int_equal(b.holder_member, slot);
    while (shm_batch_next(w, &b, &r) == 1) {
    }
    assert_int_equal(shm_ack(w, &b), 0);
    shm_producer_close(&p);
    shm_consumer_close(&x);
    shm_consumer_close(&w);
    shm_segment_close(&seg);
}

/* Joins a group and exits at once, holding nothing. */
static int join_and_die(void *arg)
{
    struct take_arg *a = arg;
    shm_consumer *c;
    return shm_consumer_open(a->seg, a->group, "doomed", &c) == 0 ? 0 : 1;
}

/*
 * Found by reading orphan_batches while writing test_kill: consumer D reads
 * next = n0 and counts 8 records; meanwhile C takes [n0, n0 + 8),
 * acknowledges it and the tail passes n0. D announces PENDING [n0, 8) and is
 * killed before its CAS of next. Reclaim sees next != n0, assumes the CAS
 * may have happened and re-delivers [n0, 8): records every group already
 * acknowledged, from slots that producers have since reused (under
 * backpressure they are read in place, so they come out as "lost", or torn
 * if a producer is writing the slot at that moment).
 */
static void test_stale_pending_of_dead_consumer(void **state)
{
    (void)state;
    const uint32_t slots = 64;
    shm_segment *seg = make("race-pending", slots, SHM_POLICY_BACKPRESSURE);
    shm_consumer *c;
    shm_producer *p;
    assert_int_equal(shm_consumer_open(seg, "g", "c", &c), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    int slot = first_free_member(seg);
    struct take_arg tg = {seg, "g"};
    run_child(join_and_die, &tg); /* D: a member of "g" that is now dead */
    assert_int_equal(SHM__MEMBER_KIND(atomic_load(&seg->members[slot].state)), SHM_MEMBER_ACTIVE);

    uint64_t n0 = 0, seq;
    for (int i = 0; i < 8; i++) {
        assert_int_equal(shm_put(p, "r", 1, &seq), 0);
        if (i == 0)
            n0 = seq;
    }
    shm_batch b;
    shm_record r;
    assert_int_equal(shm_consume(c, 8, 0, &b), 8);
    while (shm_batch_next(c, &b, &r) == 1) {
    }
    assert_int_equal(shm_ack(c, &b), 0);

    /* D's last act: PENDING [n0, 8) announced after C's acknowledgement. */
    struct shm__batch_entry *e = &seg->members[slot].batch[0];
    atomic_store(&e->start, n0);
    atomic_store(&e->count, 8u);
    atomic_store(&e->state, (uint32_t)SHM__BATCH_PENDING);

    /* Producers reuse the slots of [n0, n0 + 8). */
    for (uint32_t i = 0; i < slots; i++)
        assert_int_equal(shm_put(p, "new", 3, NULL), 0);
    shm_reclaim(seg, NULL);

    /* C must get the new records, not [n0, 8) again. */
    int n = shm_consume(c, slots, 0, &b);
    assert_true(n > 0);
    if (b.redelivered)
        fail_msg("re-delivered %llu+%u, acknowledged before (tail past it) and overwritten since",
                 (unsigned long long)b.first_seq, b.count);
    assert_int_equal(b.first_seq, n0 + 8);
    shm_producer_close(&p);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
}

/*
 * Found by reading shm__member_leave while writing test_kill: a consumer
 * that closes while holding a batch it took over from a dead member (TAKEN,
 * kept in the dead member's registry slot) looked as if it held nothing:
 * its slot was freed and the TAKEN entry stayed behind, owned by nobody.
 * The batch was never delivered again and, under backpressure, the group's
 * tail stayed at its start for good. shm.h promises that batches not
 * acknowledged at close are handed to the rest of the group.
 */
static void test_close_while_holding_a_redelivered_batch(void **state)
{
    (void)state;
    shm_segment *seg = make("race-close", 64, SHM_POLICY_BACKPRESSURE);
    shm_consumer *x, *y;
    shm_producer *p;
    assert_int_equal(shm_consumer_open(seg, "g", "x", &x), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(shm_put(p, "r", 1, NULL), 0);
    struct take_arg tg = {seg, "g"};
    run_child(take_and_die, &tg);
    shm_reclaim(seg, NULL);
    shm_batch b;
    assert_int_equal(shm_consume(x, 64, 0, &b), 4);
    assert_int_equal(b.redelivered, 1);
    uint64_t first = b.first_seq;
    shm_consumer_close(&x); /* without acknowledging the re-delivered batch */

    assert_int_equal(shm_consumer_open(seg, "g", "y", &y), 0);
    shm_reclaim(seg, NULL);
    int n = shm_consume(y, 64, 0, &b);
    if (n != 4 || b.first_seq != first)
        fail_msg("the batch %llu+4 left unacknowledged at close was not delivered again "
                 "(consume: %d)",
                 (unsigned long long)first, n);
    shm_record r;
    while (shm_batch_next(y, &b, &r) == 1) {
    }
    assert_int_equal(shm_ack(y, &b), 0);
    shm_group_stats gs;
    assert_int_equal(shm_group_stats_get(seg, &gs, 1), 1);
    assert_int_equal(gs.tail_seq, first + 4);
    shm_producer_close(&p);
    shm_consumer_close(&y);
    shm_segment_close(&seg);
}

/* Registers a producer and exits: dead, holding nothing. */
static int producer_then_die(void *arg)
{
    shm_segment *seg = *(shm_segment **)arg;
    shm_producer *p;
    return shm_producer_open(seg, "lapped", &p) == 0 ? 0 : 1;
}

/*
 * Found by reading take_slot_drop_oldest while writing the stress tests:
 * under drop-oldest a producer stores its index in slot->owner before its
 * compare-exchange of the stamp. Producer P1 (claimed s, preempted) and P2
 * (claimed s + slot_count) race for the slot: P2 wins, P1 then overwrites
 * owner and finds itself lapped. If P1 later dies while P2 is still writing,
 * a consumer waiting on s + slot_count sees BUSY with a dead owner and pads
 * the live producer's slot: the consumer skips a pad, P2 then commits its
 * record on top of it, and the record is neither delivered nor counted lost.
 */
static void test_stale_owner_pads_live_producer(void **state)
{
    (void)state;
    const uint32_t slots = 64;
    shm_segment *seg = make("race-owner", slots, SHM_POLICY_DROP_OLDEST);
    shm_consumer *c;
    shm_producer *p2;
    assert_int_equal(shm_consumer_open(seg, "g", "c", &c), 0);
    assert_int_equal(shm_producer_open(seg, "p2", &p2), 0);
    int p1_slot = first_free_member(seg);
    run_child(producer_then_die, &seg); /* P1: its registry slot, then dead */
    shm_reclaim(seg, NULL);

    uint64_t first = 0, seq;
    for (uint32_t i = 0; i < slots; i++) {
        assert_int_equal(shm_put(p2, "old", 3, &seq), 0);
        if (i == 0)
            first = seq;
    }
    /* P2 takes the slot of `first` for first + slots and is still writing;
     * lapped P1 had stored its index in owner after P2's CAS. */
    shm_slots cl;
    assert_int_equal(shm_claim(p2, 1, &cl), 1);
    assert_int_equal(cl.first_seq, first + slots);
    atomic_store(&shm__slot(seg, first + slots)->owner, (uint16_t)p1_slot);

    /* The consumer reaches first + slots and waits there (long enough to
     * check whether the slot is stuck). */
    shm_batch b;
    shm_record r;
    uint64_t pads = 0, delivered = 0;
    int n;
    while ((n = shm_consume(c, slots, 50, &b)) > 0) {
        while (shm_batch_next(c, &b, &r) == 1) {
        }
        pads += b.pads;
        delivered += b.delivered;
        assert_int_equal(shm_ack(c, &b), 0);
    }
    assert_int_equal(n, 0);
    memcpy(shm_slots_buf(&cl, 0), "new", 3);
    assert_int_equal(shm_slots_set_len(&cl, 0, 3), 0);
    assert_int_equal(shm_commit(p2, &cl), 1);
    while ((n = shm_consume(c, slots, 0, &b)) > 0) {
        while (shm_batch_next(c, &b, &r) == 1) {
        }
        pads += b.pads;
        delivered += b.delivered;
        assert_int_equal(shm_ack(c, &b), 0);
    }
    shm_group_stats gs;
    shm_ring_stats rs;
    assert_int_equal(shm_group_stats_get(seg, &gs, 1), 1);
    assert_int_equal(shm_ring_stats_get(seg, &rs), 0);
    if (pads || rs.slots_reclaimed)
        fail_msg("a live producer's slot was padded (%llu pads seen, %llu slots reclaimed); "
                 "delivered %llu + lost %llu of %llu put",
                 (unsigned long long)pads, (unsigned long long)rs.slots_reclaimed,
                 (unsigned long long)gs.consumed, (unsigned long long)gs.lost,
                 (unsigned long long)rs.records_put);
    assert_int_equal(gs.consumed + gs.lost, rs.records_put);
    shm_producer_close(&p2);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
}

/* The reclaimer that meets a dead member logs "member ... died" right after
 * marking it DEAD and before cleaning up after it: a log sink is a hook at
 * that instant. This one lets another thread (another reclaimer, other
 * members) run to completion there, as if the first reclaimer had been
 * preempted for that long. */
struct preempt {
    shm_segment *seg;
    int armed;
    uint64_t first_new; /* first of the records put while "preempted" */
    int z_slot, d_slot;
    shm_consumer *z;    /* a member that joined meanwhile */
    shm_batch zb;       /* the batch it holds */
    int zn;
};

static void *meanwhile(void *arg)
{
    struct preempt *pr = arg;
    shm_segment *seg = pr->seg;
    shm_consumer *y;
    shm_producer *p;
    shm_batch b;
    shm_record r;
    /* Another reclaimer, and a consumer that takes over and acknowledges
     * the dead member's batch: the dead member's slot then holds nothing. */
    shm_reclaim(seg, NULL);
    if (shm_consumer_open(seg, "g", "y", &y) != 0)
        return NULL;
    if (shm_consume(y, 64, 0, &b) > 0) {
        while (shm_batch_next(y, &b, &r) == 1) {
        }
        shm_ack(y, &b);
    }
    shm_reclaim(seg, NULL); /* frees the slot if it may */
    /* A new consumer joins (the first free slot) and takes new records. */
    if (shm_producer_open(seg, "p2", &p) != 0)
        return NULL;
    uint64_t seq;
    for (int i = 0; i < 4; i++)
        if (shm_put(p, "n", 1, &seq) == 0 && i == 0)
            pr->first_new = seq;
    shm_producer_close(&p);
    pr->z_slot = first_free_member(seg);
    if (shm_consumer_open(seg, "g", "z", &pr->z) != 0)
        return NULL;
    pr->zn = shm_consume(pr->z, 64, 0, &pr->zb);
    shm_consumer_close(&y);
    return NULL;
}

static void preempting_log(void *ctx, int level, const char *message)
{
    (void)level;
    struct preempt *pr = ctx;
    if (!pr->armed || !strstr(message, "died"))
        return;
    pr->armed = 0;
    pthread_t t;
    if (pthread_create(&t, NULL, meanwhile, pr) == 0)
        pthread_join(t, NULL);
}

/*
 * Found by test_kill under load (a live consumer's shm_ack failed: "invalid
 * argument"); confirmed by instrumenting shm_reclaim, which logged
 * reclaimers padding and orphaning for a registry slot whose generation had
 * changed under them. A reclaimer marks a dead member DEAD, then cleans up
 * (pads its claim, orphans its batches). If it is preempted in between,
 * another reclaimer can finish the job and free the slot, and a new member
 * can join in it: the first reclaimer then resumes and "cleans up" the new,
 * live member — orphaning its batches (its ack fails, the batch is delivered
 * twice) or padding a live producer's claim (its records are lost).
 */
static void test_late_reclaimer_robs_new_member(void **state)
{
    (void)state;
    shm_segment *seg = make("race-late", 64, SHM_POLICY_BACKPRESSURE);
    struct preempt pr = {.seg = seg};
    shm_producer *p;
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    shm_consumer *anchor; /* keeps the group's members after the others leave */
    assert_int_equal(shm_consumer_open(seg, "g", "anchor", &anchor), 0);
    pr.d_slot = first_free_member(seg);
    for (int i = 0; i < 4; i++)
        assert_int_equal(shm_put(p, "r", 1, NULL), 0);
    struct take_arg tg = {seg, "g"};
    run_child(take_and_die, &tg); /* D: dies holding 4 records */

    shm_segment_set_log(seg, preempting_log, &pr);
    pr.armed = 1;
    shm_reclaim(seg, NULL); /* preempted after marking D dead */
    shm_segment_set_log(seg, quiet_log, NULL);
    assert_int_equal(pr.armed, 0);
    assert_non_null(pr.z);
    assert_int_equal(pr.zn, 4);
    assert_int_equal(pr.zb.first_seq, pr.first_new);

    /* Z, alive all along, acknowledges the batch it holds. */
    shm_record r;
    while (shm_batch_next(pr.z, &pr.zb, &r) == 1) {
    }
    int rc = shm_ack(pr.z, &pr.zb);
    if (rc != 0)
        fail_msg("live consumer in registry slot %d (dead member's was %d) lost its batch to a "
                 "late reclaimer: ack says %s",
                 pr.z_slot, pr.d_slot, shm_strerror(rc));
    /* Everything is delivered once the dead member's batch is re-delivered. */
    shm_batch b;
    for (int i = 0; i < 100; i++) {
        shm_reclaim(seg, NULL);
        if (shm_consume(pr.z, 64, 0, &b) > 0) {
            while (shm_batch_next(pr.z, &b, &r) == 1) {
            }
            assert_int_equal(shm_ack(pr.z, &b), 0);
        }
    }
    shm_group_stats gs;
    shm_ring_stats rs;
    assert_int_equal(shm_group_stats_get(seg, &gs, 1), 1);
    assert_int_equal(shm_ring_stats_get(seg, &rs), 0);
    assert_int_equal(gs.tail_seq, rs.head_seq);
    assert_int_equal(gs.consumed, 8);
    assert_int_equal(gs.redelivered, 4);
    shm_consumer_close(&pr.z);
    shm_consumer_close(&anchor);
    shm_producer_close(&p);
    shm_segment_close(&seg);
}

/*
 * Found by test_kill under load ("ring did not drain": every group stuck
 * one ring behind head, no producer left). A producer killed between its
 * claim of head and its HOLDING announcement leaves a sequence number that
 * reclaim cannot pad (the range is unknown); shm_consume pads it once it has
 * waited STUCK_AFTER_NS (10 ms) on it. But the wait was measured within one
 * call: consumers polling with timeouts of 10 ms or less never got there,
 * and the ring stayed wedged. The same held for the periodic reclaim in
 * shm_consume (every 100 ms, never reached by short calls).
 */
static void test_stuck_claim_with_short_consume_timeouts(void **state)
{
    (void)state;
    shm_segment *seg = make("race-stuck", 64, SHM_POLICY_BACKPRESSURE);
    shm_consumer *c;
    shm_producer *p;
    assert_int_equal(shm_consumer_open(seg, "g", "c", &c), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    int dead_slot = first_free_member(seg);
    run_child(producer_then_die, &seg);
    /* Its last act: CLAIMING announced, one sequence number taken from head. */
    struct shm__member *dm = &seg->members[dead_slot];
    atomic_store(&dm->claim_state, (atomic_load(&dm->claim_state) & ~0xffu) + 0x100u +
                                       SHM__CLAIM_CLAIMING);
    uint64_t stuck = atomic_fetch_add(&seg->hdr->head, 1);
    uint64_t after;
    assert_int_equal(shm_put(p, "after", 5, &after), 0);
    assert_int_equal(after, stuck + 1);

    /* Consumers poll with 5 ms timeouts for at most ~2 s in all. */
    shm_batch b;
    shm_record r;
    int got_after = 0;
    for (int i = 0; i < 400 && !got_after; i++) {
        if (shm_consume(c, 64, 5, &b) <= 0)
            continue;
        while (shm_batch_next(c, &b, &r) == 1)
            got_after |= r.seq == after;
        assert_int_equal(shm_ack(c, &b), 0);
    }
    shm_ring_stats rs;
    assert_int_equal(shm_ring_stats_get(seg, &rs), 0);
    if (!got_after)
        fail_msg("sequence %llu claimed by a dead producer was never padded (slots reclaimed "
                 "%llu): the record after it never arrived",
                 (unsigned long long)stuck, (unsigned long long)rs.slots_reclaimed);
    assert_int_equal(rs.slots_reclaimed, 1);
    shm_producer_close(&p);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
}

/*
 * Found by test_kill (drop-oldest storm, 1 run in 25: a dead member's batch
 * ORPHANED for good, the group's orphan count 0, its tail stuck behind it).
 * A reclaimer marks a batch ORPHANED with a CAS and then counts it in the
 * group's `orphans`; consumers look for orphans only while that count is
 * above zero. A reclaimer killed between the two leaves an orphan nobody
 * ever looks for: never re-delivered, and under backpressure the group's
 * tail, held at its start, wedges the ring.
 */
static void test_uncounted_orphan(void **state)
{
    (void)state;
    shm_segment *seg = make("race-orphan", 64, SHM_POLICY_BACKPRESSURE);
    shm_consumer *c;
    shm_producer *p;
    assert_int_equal(shm_consumer_open(seg, "g", "c", &c), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    uint64_t first = 0, seq;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(shm_put(p, "r", 1, &seq), 0);
        if (i == 0)
            first = seq;
    }
    int dead_slot = first_free_member(seg);
    struct take_arg tg = {seg, "g"};
    run_child(take_and_die, &tg); /* dies holding [first, 4) */
    pid_t reclaimer = shmtest_fork(exit_at_once, NULL);
    assert_true(reclaimer > 0);
    assert_true(shmtest_wait_pid(reclaimer, 10000) != -1);
    /* The reclaimer's last acts: member DEAD (its cleanup), batch ORPHANED;
     * killed before counting the orphan. */
    struct shm__member *dm = &seg->members[dead_slot];
    atomic_store(&dm->state, SHM__MEMBER_STATE(SHM_MEMBER_DEAD, (uint32_t)reclaimer));
    atomic_store(&dm->batch[0].state, (uint32_t)SHM__BATCH_ORPHANED);

    shm_batch b;
    shm_record r;
    int redelivered = 0;
    for (int i = 0; i < 400 && !redelivered; i++) {
        if (shm_consume(c, 64, 5, &b) <= 0)
            continue;
        redelivered = b.redelivered && b.first_seq == first;
        while (shm_batch_next(c, &b, &r) == 1) {
        }
        assert_int_equal(shm_ack(c, &b), 0);
    }
    if (!redelivered)
        fail_msg("the orphaned batch %llu+4 was never delivered again", (unsigned long long)first);
    shm_group_stats gs;
    assert_int_equal(shm_group_stats_get(seg, &gs, 1), 1);
    assert_int_equal(gs.tail_seq, first + 4);
    assert_int_equal(gs.orphans, 0);
    shm_producer_close(&p);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
}

/*
 * The other side of the same hint, found while fixing the above: a consumer
 * killed after taking an orphan (CAS to TAKEN) but before decrementing the
 * count leaves the count above zero with no orphan anywhere. Idle consumers
 * of the group then never sleep (their wake-up condition says "orphans
 * waiting") and scan the registry in a busy loop, for good.
 */
static void test_overcounted_orphans(void **state)
{
    (void)state;
    shm_segment *seg = make("race-overcount", 64, SHM_POLICY_BACKPRESSURE);
    shm_consumer *c;
    assert_int_equal(shm_consumer_open(seg, "g", "c", &c), 0);
    atomic_fetch_add(&c->group->orphans, 1u);
    shm_batch b;
    assert_int_equal(shm_consume(c, 64, 0, &b), 0);
    shm_group_stats gs;
    assert_int_equal(shm_group_stats_get(seg, &gs, 1), 1);
    if (gs.orphans != 0)
        fail_msg("orphan count stays %u with no orphan in the group: idle consumers busy-loop",
                 gs.orphans);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_left_behind_by_transient_pending),
        cmocka_unit_test(test_quiescent_tail_after_withdrawn_pending),
        cmocka_unit_test(test_dead_joiner_leaves_member_bit),
        cmocka_unit_test(test_stale_pending_of_dead_consumer),
        cmocka_unit_test(test_close_while_holding_a_redelivered_batch),
        cmocka_unit_test(test_stale_owner_pads_live_producer),
        cmocka_unit_test(test_late_reclaimer_robs_new_member),
        cmocka_unit_test(test_stuck_claim_with_short_consume_timeouts),
        cmocka_unit_test(test_uncounted_orphan),
        cmocka_unit_test(test_overcounted_orphans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

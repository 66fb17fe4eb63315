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

#include <stdio.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_left_behind_by_transient_pending),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

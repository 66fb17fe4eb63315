/*
 * test_ring_basic.c — single-process behaviour of the ring: put, claim and
 * commit, consume and ack, groups, both overflow policies, and the error
 * path of every public ring function.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <shmbus/shm.h>
#include <stdio.h>
#include <string.h>

#include "shmtest.h"

static shm_segment *make(const char *prefix, uint32_t slots, uint32_t slot_size, uint32_t policy)
{
    char name[64];
    shmtest_segment_name(name, sizeof name, prefix);
    shm_segment_options o = {.slot_count = slots, .slot_size = slot_size, .policy = policy};
    shm_segment *seg = NULL;
    int rc = shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg);
    if (rc)
        fail_msg("open %s: %s (%s)", name, shm_strerror(rc), shm_last_error());
    return seg;
}

static void test_put_consume_ack(void **state)
{
    (void)state;
    shm_segment *seg = make("basic", 64, 128, SHM_POLICY_BACKPRESSURE);
    shm_producer *p;
    shm_consumer *c;
    assert_int_equal(shm_consumer_open(seg, "writer", "w1", &c), 0);
    assert_int_equal(shm_producer_open(seg, "p1", &p), 0);
    uint64_t seq0 = 0, seq;
    for (int i = 0; i < 10; i++) {
        char rec[32];
        int n = snprintf(rec, sizeof rec, "record-%d", i);
        assert_int_equal(shm_put(p, rec, (uint32_t)n, &seq), 0);
        if (i == 0)
            seq0 = seq;
        assert_int_equal(seq, seq0 + (uint64_t)i);
    }
    shm_batch b;
    assert_int_equal(shm_consume(c, 100, 0, &b), 10);
    assert_int_equal(b.first_seq, seq0);
    shm_record r;
    for (int i = 0; i < 10; i++) {
        char want[32];
        int n = snprintf(want, sizeof want, "record-%d", i);
        assert_int_equal(shm_batch_next(c, &b, &r), 1);
        assert_int_equal(r.seq, seq0 + (uint64_t)i);
        assert_int_equal(r.len, (uint32_t)n);
        assert_memory_equal(r.data, want, (size_t)n);
    }
    assert_int_equal(shm_batch_next(c, &b, &r), 0);
    assert_int_equal(shm_ack(c, &b), 0);
    assert_int_equal(shm_ack(c, &b), SHM_EINVAL); /* twice */
    assert_int_equal(shm_consume(c, 100, 0, &b), 0); /* empty: no wait */
    shm_group_stats gs[SHM_MAX_GROUPS];
    assert_int_equal(shm_group_stats_get(seg, gs, SHM_MAX_GROUPS), 1);
    assert_string_equal(gs[0].name, "writer");
    assert_int_equal(gs[0].consumed, 10);
    assert_int_equal(gs[0].tail_seq, seq0 + 10);
    shm_ring_stats rs;
    assert_int_equal(shm_ring_stats_get(seg, &rs), 0);
    assert_int_equal(rs.records_put, 10);
    shm_producer_close(&p);
    shm_consumer_close(&c);
    assert_null(p);
    assert_null(c);
    shm_segment_close(&seg);
    assert_null(seg);
}

static void test_claim_in_place_and_pads(void **state)
{
    (void)state;
    shm_segment *seg = make("claim", 64, 64, SHM_POLICY_BACKPRESSURE);
    shm_producer *p;
    shm_consumer *c;
    assert_int_equal(shm_consumer_open(seg, "g", "c", &c), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    shm_slots s;
    assert_int_equal(shm_claim(p, 8, &s), 8);
    assert_int_equal(s.payload, 64 - SHM_SLOT_HEADER);
    for (uint32_t i = 0; i < 8; i++) {
        if (i == 3)
            continue; /* left as a pad */
        uint8_t *buf = shm_slots_buf(&s, i);
        assert_non_null(buf);
        memset(buf, (int)i, 48);
        assert_int_equal(shm_slots_set_len(&s, i, 48), 0);
    }
    assert_int_equal(shm_slots_set_len(&s, 0, 49), SHM_ETOOBIG);
    assert_null(shm_slots_buf(&s, 8));
    assert_int_equal(shm_commit(p, &s), 7);
    shm_batch b;
    assert_int_equal(shm_consume(c, 64, 0, &b), 8);
    shm_record r;
    int seen = 0;
    while (shm_batch_next(c, &b, &r) == 1) {
        uint8_t v = ((const uint8_t *)r.data)[0];
        assert_int_not_equal(v, 3);
        assert_int_equal(r.len, 48);
        seen++;
    }
    assert_int_equal(seen, 7);
    assert_int_equal(b.pads, 1);
    assert_int_equal(shm_ack(c, &b), 0);
    shm_producer_close(&p);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
}

static void test_backpressure_full(void **state)
{
    (void)state;
    shm_segment *seg = make("full", 16, 64, SHM_POLICY_BACKPRESSURE);
    shm_producer *p;
    shm_consumer *c;
    assert_int_equal(shm_consumer_open(seg, "g", "c", &c), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    for (int i = 0; i < 16; i++)
        assert_int_equal(shm_put(p, "x", 1, NULL), 0);
    assert_int_equal(shm_put(p, "x", 1, NULL), SHM_EFULL);
    shm_slots s;
    assert_int_equal(shm_claim(p, 4, &s), SHM_EFULL);
    shm_batch b;
    assert_int_equal(shm_consume(c, 4, 0, &b), 4);
    assert_int_equal(shm_put(p, "x", 1, NULL), SHM_EFULL); /* not acked yet */
    assert_int_equal(shm_ack(c, &b), 0);
    assert_int_equal(shm_claim(p, 8, &s), 4); /* partial claim: what is free */
    for (uint32_t i = 0; i < 4; i++)
        shm_slots_set_len(&s, i, 1);
    assert_int_equal(shm_commit(p, &s), 4);
    shm_ring_stats rs;
    shm_ring_stats_get(seg, &rs);
    assert_int_equal(rs.full_rejections, 3);
    assert_true(rs.util_high_water_permille >= 1000);
    assert_int_equal(rs.util_warnings, 1);
    shm_producer_close(&p);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
}

static void test_drop_oldest_counts_loss(void **state)
{
    (void)state;
    shm_segment *seg = make("drop", 16, 64, SHM_POLICY_DROP_OLDEST);
    shm_producer *p;
    shm_consumer *slow, *fast;
    assert_int_equal(shm_consumer_open(seg, "slow", "s", &slow), 0);
    assert_int_equal(shm_consumer_open(seg, "fast", "f", &fast), 0);
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    uint64_t delivered_fast = 0;
    for (int i = 0; i < 100; i++) {
        uint32_t v = (uint32_t)i;
        assert_int_equal(shm_put(p, &v, sizeof v, NULL), 0); /* never refused */
        shm_batch b;
        shm_record r;
        if (shm_consume(fast, 64, 0, &b) > 0) {
            while (shm_batch_next(fast, &b, &r) == 1)
                delivered_fast++;
            shm_ack(fast, &b);
        }
    }
    uint64_t delivered_slow = 0, last = 0;
    shm_batch b;
    shm_record r;
    while (shm_consume(slow, 64, 0, &b) > 0) {
        while (shm_batch_next(slow, &b, &r) == 1) {
            uint32_t v;
            memcpy(&v, r.data, sizeof v);
            assert_true(v >= last);
            last = v;
            delivered_slow++;
        }
        shm_ack(slow, &b);
    }
    shm_group_stats gs[2];
    assert_int_equal(shm_group_stats_get(seg, gs, 2), 2);
    assert_int_equal(delivered_fast, 100);
    assert_true(delivered_slow < 100);
    assert_int_equal(last, 99); /* the newest survived */
    for (int i = 0; i < 2; i++)
        assert_int_equal(gs[i].consumed + gs[i].lost, 100); /* exact per group */
    shm_producer_close(&p);
    shm_consumer_close(&slow);
    shm_consumer_close(&fast);
    shm_segment_close(&seg);
}

static void test_errors(void **state)
{
    (void)state;
    shm_segment *seg = make("err", 16, 64, SHM_POLICY_BACKPRESSURE);
    shm_producer *p;
    shm_consumer *c;
    assert_int_equal(shm_producer_open(seg, "p", &p), 0);
    char big[64] = {0};
    assert_int_equal(shm_put(p, big, 49, NULL), SHM_ETOOBIG);
    assert_int_equal(shm_put(p, big, 0, NULL), SHM_EEMPTY);
    assert_int_equal(shm_put(NULL, big, 1, NULL), SHM_EINVAL);
    shm_slots s;
    assert_int_equal(shm_claim(p, 0, &s), SHM_EINVAL);
    assert_int_equal(shm_claim(p, SHM_CLAIM_MAX + 1, &s), SHM_EINVAL);
    assert_int_equal(shm_consumer_open(seg, "", "c", &c), SHM_ETAKEN);
    assert_int_equal(shm_consumer_open(seg, "a-group-name-longer-than-31-chars", "c", &c),
                     SHM_ETAKEN);
    shm_consumer *cs[SHM_MAX_GROUPS];
    for (int i = 0; i < SHM_MAX_GROUPS; i++) {
        char g[16];
        snprintf(g, sizeof g, "g%d", i);
        assert_int_equal(shm_consumer_open(seg, g, "c", &cs[i]), 0);
    }
    assert_int_equal(shm_consumer_open(seg, "one-too-many", "c", &c), SHM_EGROUPS);
    assert_non_null(strstr(shm_last_error(), "16"));
    shm_batch b;
    assert_int_equal(shm_consume(cs[0], 0, 0, &b), SHM_EINVAL);
    memset(&b, 0, sizeof b);
    b.holder_member = -1;
    assert_int_equal(shm_ack(cs[0], &b), SHM_EINVAL);
    assert_int_equal(shm_set_paused(seg, 1), 0);
    assert_int_equal(shm_put(p, "x", 1, NULL), SHM_EPAUSED);
    assert_int_equal(shm_set_paused(seg, 0), 0);
    assert_int_equal(shm_put(p, "x", 1, NULL), 0);
    for (int i = 0; i < SHM_MAX_GROUPS; i++)
        shm_consumer_close(&cs[i]);
    shm_producer_close(&p);
    assert_string_equal(shm_strerror(SHM_EFULL), "ring is full");
    assert_string_equal(shm_strerror(12345), "unknown error");
    shm_segment_close(&seg);
}

static void test_counters_and_catalog(void **state)
{
    (void)state;
    shm_segment *seg = make("ctr", 16, 64, SHM_POLICY_BACKPRESSURE);
    shm_counter *a, *a2, *g;
    assert_int_equal(shm_counter_open(seg, "shmbus_test_total{device=\"plc1\"}", SHM_COUNTER, &a), 0);
    assert_int_equal(shm_counter_open(seg, "shmbus_level", SHM_GAUGE, &g), 0);
    shm_counter_add(a, 5);
    shm_counter_add(a, 2);
    shm_counter_set(g, 42);
    assert_int_equal(shm_counter_open(seg, "shmbus_test_total{device=\"plc1\"}", SHM_COUNTER, &a2), 0);
    assert_ptr_equal(a, a2);
    assert_int_equal(shm_counter_get(a2), 7);
    assert_int_equal(shm_counter_open(seg, "", SHM_COUNTER, &a2), SHM_EINVAL);
    assert_int_equal(shm_counter_open(seg, "x", 7, &a2), SHM_EINVAL);
    uint8_t rec[100], out[SHM_CATALOG_ENTRY_MAX];
    memset(rec, 0xab, sizeof rec);
    assert_int_equal(shm_catalog_put(seg, 7, rec, sizeof rec), 0);
    assert_int_equal(shm_catalog_get(seg, 7, out, sizeof out), (int)sizeof rec);
    assert_memory_equal(out, rec, sizeof rec);
    assert_int_equal(shm_catalog_get(seg, 8, out, sizeof out), 0);
    assert_int_equal(shm_catalog_get(seg, 7, out, 10), SHM_ETOOBIG);
    assert_int_equal(shm_catalog_put(seg, 1u << 30, rec, 1), SHM_EINVAL);
    assert_int_equal(shm_catalog_put(seg, 1, out, SHM_CATALOG_ENTRY_MAX + 1), SHM_ETOOBIG);
    shm_segment_close(&seg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_consume_ack),
        cmocka_unit_test(test_claim_in_place_and_pads),
        cmocka_unit_test(test_backpressure_full),
        cmocka_unit_test(test_drop_oldest_counts_loss),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_counters_and_catalog),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * test_kill.c — kill -9 at random instants while records flow
 * (backpressure). Three producer processes, three competing consumers in
 * group "a", two in group "b"; each process attaches by name. The parent
 * SIGKILLs a random child every few milliseconds (the sleeps only pick the
 * instants) and respawns it, at least KILLS times, then checks:
 *
 *  - the ring drains: once producers stop, every group's tail reaches head
 *    (re-delivered batches acknowledged, dead producers' claims padded);
 *  - it still flows: records put afterwards reach every group;
 *  - nothing acknowledged is missing: producers set a bit per sequence after
 *    shm_commit() returned, consumers set a bit per group after shm_ack()
 *    returned 0; every committed bit must be acknowledged in every group.
 *    A consumer killed between shm_ack() returning and setting its bits
 *    leaves a journal of the batch; its records are excused only if the
 *    batch entry shows the acknowledgement happened;
 *  - counters add up, per group: tail - start <= consumed + lost + padded <=
 *    tail - start + redelivered, nothing lost or invalid, and the slots the
 *    ring padded (slots_reclaimed) equal the sequence numbers that were not
 *    delivered as records; records_put lies between what producers saw
 *    committed and what consumers received; every dead member was reclaimed.
 *
 * Every wait is bounded; a wedge fails with the ring's state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <shmbus/shm.h>

#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "shmtest.h"
#include "stress_common.h"

#define PRODUCERS 3
#define GROUPS 2
#define CONSUMERS_A 3
#define CONSUMERS_B 2
#define CHILDREN (PRODUCERS + CONSUMERS_A + CONSUMERS_B)
#define KILLS 150
#define NSEQ ((uint64_t)1 << 26)      /* sequence numbers the bitmaps cover */
#define NSEQ_STOP (NSEQ - (1u << 20)) /* producers stop claiming past this */
#define JOURNAL_MAX 64
#define FLOW_RECORDS 1024
#define FLOW_CHUNK 32
#define PHASE_MS 60000

static const char *const group_names[GROUPS] = {"a", "b"};

/* What a consumer is about to acknowledge, kept until its bits are set. */
struct journal {
    _Atomic uint32_t state; /* 1 from before shm_ack() until the bits are set */
    uint32_t group;
    uint32_t n;
    int32_t holder_member;
    uint32_t entry, gen, redelivered, consumer_index;
    uint64_t first_seq;
    uint64_t seq[JOURNAL_MAX]; /* relative to base */
};

struct shared {
    char segment[64];
    uint32_t policy;
    uint64_t base; /* first sequence number of the segment */
    _Atomic uint32_t stop_producers;
    _Atomic uint32_t stop_consumers;
    _Atomic uint64_t delivered[GROUPS];
    _Atomic uint64_t duplicates[GROUPS];
    _Atomic uint64_t redelivered_batches[GROUPS];
    _Atomic uint64_t committed;
    struct journal journal[CHILDREN];
    struct stress_error err;
};

static struct shared *sh;
static _Atomic uint64_t *committed_bits;
static _Atomic uint64_t *acked_bits[GROUPS];
static _Atomic uint64_t *excused_bits[GROUPS];

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
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

static void nap_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Children report through sh->err; the library's warnings about the dead
 * members it reclaims while attaching would only flood the test log. */
static void silence_stderr(void)
{
    int fd = open("/dev/null", O_WRONLY);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
}

static shm_segment *attach(void)
{
    silence_stderr();
    shm_segment *seg = NULL;
    int rc = shm_segment_open(sh->segment, NULL, SHM_OPEN_ATTACH, &seg);
    if (rc) {
        failf("attach %s: %s (%s)", sh->segment, shm_strerror(rc), shm_last_error());
        return NULL;
    }
    shm_segment_set_log(seg, quiet_log, NULL);
    return seg;
}

static int child_group(int slot)
{
    return slot < PRODUCERS + CONSUMERS_A ? 0 : 1;
}

static int producer_proc(void *arg)
{
    int slot = (int)(intptr_t)arg;
    shm_segment *seg = attach();
    if (!seg)
        return 1;
    shm_producer *p = NULL;
    int rc = shm_producer_open(seg, "kill-producer", &p);
    if (rc) {
        failf("producer %d: open: %s", slot, shm_strerror(rc));
        return 1;
    }
    uint64_t rs = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
    while (!atomic_load(&sh->stop_producers)) {
        shm_slots c;
        int got = shm_claim(p, 1 + rnd(&rs) % 32, &c);
        if (got == SHM_EFULL) {
            sched_yield();
            continue;
        }
        if (got <= 0) {
            failf("producer %d: claim: %s", slot, shm_strerror(got));
            break;
        }
        if (c.first_seq - sh->base + (uint64_t)got > NSEQ_STOP) {
            /* The bitmaps are full: commit empty (pads) and idle. */
            shm_commit(p, &c);
            nap_us(1000);
            continue;
        }
        for (uint32_t i = 0; i < (uint32_t)got; i++) {
            uint64_t s = c.first_seq + i;
            shm_slots_set_len(&c, i,
                              stress_write(shm_slots_buf(&c, i), c.payload, (uint32_t)slot,
                                           s - sh->base, s));
        }
        rc = shm_commit(p, &c);
        if (sh->policy == SHM_POLICY_DROP_OLDEST) {
            /* Records of lapped slots are not committed; which ones is the
             * claim's business. Pace the producers so that the groups are
             * lapped now and then, not all the time. */
            if (rc < 0 || rc > got)
                failf("producer %d: commit of %d: %d", slot, got, rc);
            nap_us(20);
            continue;
        }
        if (rc != got) {
            failf("producer %d: commit of %d: %d", slot, got, rc);
            break;
        }
        for (uint32_t i = 0; i < (uint32_t)got; i++)
            bitmap_set(committed_bits, c.first_seq - sh->base + i);
        atomic_fetch_add(&sh->committed, (uint64_t)got);
    }
    shm_producer_close(&p);
    shm_segment_close(&seg);
    return 0;
}

static int consumer_proc(void *arg)
{
    int slot = (int)(intptr_t)arg;
    int group = child_group(slot);
    shm_segment *seg = attach();
    if (!seg)
        return 1;
    shm_consumer *c = NULL;
    int rc = shm_consumer_open(seg, group_names[group], "kill-consumer", &c);
    if (rc) {
        failf("consumer %d: open: %s", slot, shm_strerror(rc));
        return 1;
    }
    struct journal *j = &sh->journal[slot];
    uint64_t rs = (uint64_t)getpid() * 0x2545f4914f6cdd1dull | 1;
    uint64_t seqs[JOURNAL_MAX];
    char why[200];
    while (!atomic_load(&sh->stop_consumers)) {
        shm_batch b;
        int n = shm_consume(c, 1 + rnd(&rs) % JOURNAL_MAX, 10, &b);
        if (n < 0) {
            failf("consumer %d: consume: %s", slot, shm_strerror(n));
            break;
        }
        if (n == 0)
            continue;
        uint32_t k = 0;
        shm_record r;
        while (shm_batch_next(c, &b, &r) == 1) {
            struct stress_rec h;
            if (stress_check(r.data, r.len, r.seq, PRODUCERS, NSEQ, &h, why, sizeof why) ||
                h.seq != r.seq || h.counter != r.seq - sh->base) {
                failf("consumer %d: %s (or header names seq %llu)", slot, why,
                      (unsigned long long)h.seq);
                continue;
            }
            if (k < JOURNAL_MAX)
                seqs[k++] = r.seq - sh->base;
        }
        if ((b.lost && sh->policy == SHM_POLICY_BACKPRESSURE) || b.invalid ||
            b.delivered + b.pads + b.lost != b.count || k != b.delivered)
            failf("consumer %d: batch %llu+%u: %u delivered, %u pads, %u lost, %u invalid",
                  slot, (unsigned long long)b.first_seq, b.count, b.delivered, b.pads, b.lost,
                  b.invalid);
        /* Hold the batch a little, as a writer does while its data goes to
         * disk: kills then often find batches held (re-delivery). */
        if (rnd(&rs) % 2)
            nap_us(rnd(&rs) % 300);
        /* Journal first: the parent learns what a consumer killed inside
         * shm_ack() may have acknowledged without setting its bits. */
        j->group = (uint32_t)group;
        j->n = k;
        j->holder_member = b.holder_member;
        j->entry = b.entry;
        j->gen = b.gen;
        j->redelivered = b.redelivered;
        j->consumer_index = c->index;
        j->first_seq = b.first_seq;
        memcpy(j->seq, seqs, k * sizeof seqs[0]);
        atomic_store(&j->state, 1u);
        rc = shm_ack(c, &b);
        if (rc) {
            failf("consumer %d: ack of %llu+%u: %s", slot, (unsigned long long)b.first_seq,
                  b.count, shm_strerror(rc));
            break;
        }
        for (uint32_t i = 0; i < k; i++)
            if (bitmap_set(acked_bits[group], seqs[i]))
                atomic_fetch_add(&sh->duplicates[group], 1);
        atomic_store(&j->state, 0u);
        atomic_fetch_add(&sh->delivered[group], k);
        if (b.redelivered)
            atomic_fetch_add(&sh->redelivered_batches[group], 1);
    }
    shm_consumer_close(&c);
    shm_segment_close(&seg);
    return 0;
}

static pid_t spawn(int slot)
{
    int (*fn)(void *) = slot < PRODUCERS ? producer_proc : consumer_proc;
    pid_t pid = shmtest_fork(fn, (void *)(intptr_t)slot);
    if (pid <= 0)
        fail_msg("fork: child %d", slot);
    return pid;
}

/* A consumer was killed: if it died between shm_ack() and setting its bits,
 * excuse the journaled records, but only if the batch entry shows the
 * acknowledgement (the entry no longer held by the dead consumer). */
static uint64_t settle_journal(shm_segment *seg, int slot)
{
    struct journal *j = &sh->journal[slot];
    if (atomic_load(&j->state) == 0)
        return 0;
    atomic_store(&j->state, 0u);
    if (j->holder_member < 0 || (uint32_t)j->holder_member >= seg->hdr->max_members ||
        j->entry >= SHM_MEMBER_BATCHES)
        return 0;
    struct shm__batch_entry *e = &seg->members[j->holder_member].batch[j->entry];
    uint32_t held = j->redelivered ? SHM__BATCH_TAKEN_BY(j->consumer_index) : SHM__BATCH_HELD;
    if (atomic_load(&e->state) == held && atomic_load(&e->gen) == j->gen &&
        atomic_load(&e->start) == j->first_seq)
        return 0; /* not acknowledged: it will be delivered again */
    for (uint32_t i = 0; i < j->n; i++)
        bitmap_set(excused_bits[j->group], j->seq[i]);
    return j->n;
}

struct drain_arg {
    shm_segment *seg;
};

/* True once every group has acknowledged everything produced. Reclaims on
 * the way, as a controller would. */
static int drained(void *arg)
{
    shm_segment *seg = ((struct drain_arg *)arg)->seg;
    shm_reclaim(seg, NULL);
    shm_ring_stats rs;
    shm_group_stats gs[SHM_MAX_GROUPS];
    shm_ring_stats_get(seg, &rs);
    int n = shm_group_stats_get(seg, gs, SHM_MAX_GROUPS);
    for (int g = 0; g < n; g++)
        if (gs[g].tail_seq != rs.head_seq || gs[g].next_seq != rs.head_seq)
            return 0;
    return 1;
}

struct flow_arg {
    uint64_t first, n;
};

static int flowed(void *arg)
{
    struct flow_arg *f = arg;
    for (int g = 0; g < GROUPS; g++)
        for (uint64_t i = 0; i < f->n; i++)
            if (!bitmap_get(acked_bits[g], f->first + i))
                return 0;
    return 1;
}

static pid_t kids[CHILDREN];

static void fail_state(shm_segment *seg, const char *what)
{
    shm_ring_stats rs;
    shm_group_stats gs[SHM_MAX_GROUPS];
    memset(gs, 0, sizeof gs);
    shm_ring_stats_get(seg, &rs);
    shm_group_stats_get(seg, gs, SHM_MAX_GROUPS);
    for (int i = 0; i < CHILDREN; i++)
        if (kids[i] > 0)
            shmtest_kill(kids[i]);
    /* What is still held, for the diagnosis. */
    for (uint32_t i = 0; i < seg->hdr->max_members; i++) {
        struct shm__member *m = &seg->members[i];
        uint32_t st = atomic_load(&m->state);
        for (int e = 0; e < SHM_MEMBER_BATCHES; e++) {
            uint32_t bs = atomic_load(&m->batch[e].state);
            if (bs != SHM__BATCH_NONE)
                print_message("member %u (state %u tag %u, pid %d, group %u): entry %d state %u "
                              "taker %d start %llu count %u\n",
                              i, SHM__MEMBER_KIND(st), SHM__MEMBER_TAG(st), m->pid, m->group, e,
                              SHM__BATCH_KIND(bs), SHM__BATCH_TAKER(bs),
                              (unsigned long long)atomic_load(&m->batch[e].start),
                              atomic_load(&m->batch[e].count));
        }
    }
    fail_msg("%s: head %llu; a: next %llu tail %llu orphans %u; b: next %llu tail %llu "
             "orphans %u; errors %u: %s",
             what, (unsigned long long)rs.head_seq, (unsigned long long)gs[0].next_seq,
             (unsigned long long)gs[0].tail_seq, gs[0].orphans,
             (unsigned long long)gs[1].next_seq, (unsigned long long)gs[1].tail_seq,
             gs[1].orphans, atomic_load(&sh->err.count), sh->err.first);
}

static void wait_children(shm_segment *seg, int from, int to, const char *what)
{
    for (int i = from; i < to; i++) {
        int st = shmtest_wait_pid(kids[i], PHASE_MS);
        if (st == -1)
            fail_state(seg, what);
        kids[i] = 0;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            fail_state(seg, "a child failed");
    }
}

static uint64_t count_union(_Atomic uint64_t *a, _Atomic uint64_t *b, uint64_t nbits)
{
    uint64_t n = 0;
    for (uint64_t w = 0; w < (nbits + 63) / 64; w++)
        n += (uint64_t)__builtin_popcountll(atomic_load(&a[w]) | atomic_load(&b[w]));
    return n;
}

static void kill_storm(uint32_t policy)
{
    sh = shmtest_shared_alloc(sizeof *sh);
    sh->policy = policy;
    committed_bits = shmtest_shared_alloc(bitmap_bytes(NSEQ));
    for (int g = 0; g < GROUPS; g++) {
        acked_bits[g] = shmtest_shared_alloc(bitmap_bytes(NSEQ));
        excused_bits[g] = shmtest_shared_alloc(bitmap_bytes(NSEQ));
    }
    shmtest_segment_name(sh->segment, sizeof sh->segment, "kill");
    /* Under drop-oldest a small ring, so that the groups are lapped. */
    shm_segment_options o = {.slot_count = policy == SHM_POLICY_DROP_OLDEST ? 256 : 4096,
                             .slot_size = 64, .policy = policy};
    shm_segment *seg = NULL;
    int rc = shm_segment_open(sh->segment, &o, SHM_OPEN_CREATE, &seg);
    if (rc)
        fail_msg("create: %s (%s)", shm_strerror(rc), shm_last_error());
    shm_segment_set_log(seg, quiet_log, NULL);
    shm_segment_info info;
    assert_int_equal(shm_segment_info_get(seg, &info), 0);
    sh->base = info.initial_seq;
    for (int g = 0; g < GROUPS; g++) { /* both groups start at the first record */
        shm_consumer *c;
        assert_int_equal(shm_consumer_open(seg, group_names[g], "creator", &c), 0);
        shm_consumer_close(&c);
    }

    for (int i = 0; i < CHILDREN; i++)
        kids[i] = spawn(i);
    int64_t t0 = shmtest_now_ms();
    uint64_t rs_ = (uint64_t)getpid() * 0x5851f42d4c957f2dull | 1;
    int kills = 0, producer_kills = 0;
    uint64_t excused = 0;
    while (kills < KILLS) {
        nap_us(500 + rnd(&rs_) % 15000);
        if (atomic_load(&sh->err.count))
            fail_state(seg, "a child reported an error");
        int victim = (int)(rnd(&rs_) % CHILDREN);
        shmtest_kill(kids[victim]);
        kids[victim] = 0;
        kills++;
        if (victim < PRODUCERS)
            producer_kills++;
        else
            excused += settle_journal(seg, victim);
        kids[victim] = spawn(victim);
    }
    int64_t t_kills = shmtest_now_ms() - t0;

    atomic_store(&sh->stop_producers, 1u);
    wait_children(seg, 0, PRODUCERS, "producers did not stop");
    struct drain_arg da = {seg};
    if (!shmtest_wait_until(drained, &da, PHASE_MS))
        fail_state(seg, "ring did not drain after the kills");
    int64_t t_drained = shmtest_now_ms() - t0;

    /* It still flows: new records reach every group. They go in chunks
     * well below the ring's size, each awaited, so that under drop-oldest
     * no group can be lapped. */
    shm_producer *p;
    assert_int_equal(shm_producer_open(seg, "flow", &p), 0);
    struct flow_arg fa = {0, FLOW_CHUNK};
    uint8_t buf[SHM_SLOT_MAX];
    for (uint64_t i = 0; i < FLOW_RECORDS; i++) {
        shm_ring_stats rs;
        shm_ring_stats_get(seg, &rs);
        uint64_t s = rs.head_seq; /* the only producer now: put() takes this one */
        uint32_t len = stress_write(buf, info.slot_payload, 0, s - sh->base, s);
        uint64_t got;
        int64_t until = shmtest_now_ms() + PHASE_MS;
        while ((rc = shm_put(p, buf, len, &got)) == SHM_EFULL && shmtest_now_ms() < until)
            sched_yield();
        if (rc || got != s)
            fail_state(seg, "put after the kills failed");
        if (i % FLOW_CHUNK == 0)
            fa.first = s - sh->base;
        bitmap_set(committed_bits, s - sh->base);
        if (i % FLOW_CHUNK == FLOW_CHUNK - 1 && !shmtest_wait_until(flowed, &fa, PHASE_MS))
            fail_state(seg, "records put after the kills did not reach every group");
    }
    shm_producer_close(&p);
    if (!shmtest_wait_until(drained, &da, PHASE_MS))
        fail_state(seg, "ring did not drain after the flow check");

    atomic_store(&sh->stop_consumers, 1u);
    wait_children(seg, PRODUCERS, CHILDREN, "consumers did not stop");
    int64_t ms = shmtest_now_ms() - t0;
    if (atomic_load(&sh->err.count))
        fail_msg("%u errors; first: %s", atomic_load(&sh->err.count), sh->err.first);

    shm_reclaim_report rep;
    assert_true(shm_reclaim(seg, &rep) >= 0);
    shm_ring_stats rs;
    shm_group_stats gs[SHM_MAX_GROUPS];
    shm_member_stats ms_[8];
    assert_int_equal(shm_ring_stats_get(seg, &rs), 0);
    assert_int_equal(shm_group_stats_get(seg, gs, SHM_MAX_GROUPS), GROUPS);
    uint64_t span = rs.head_seq - sh->base;
    assert_true(span < NSEQ);
    uint64_t committed = bitmap_count(committed_bits, span);
    print_message("%d kills (%d producers, %d consumers) in %lld ms; drained at %lld ms; "
                  "done in %lld ms\n",
                  kills, producer_kills, kills - producer_kills, (long long)t_kills,
                  (long long)t_drained, (long long)ms);
    print_message("  %llu sequence numbers, %llu committed (seen by producers), records_put "
                  "%llu, slots_reclaimed %llu, members_reclaimed %llu, excused %llu\n",
                  (unsigned long long)span, (unsigned long long)committed,
                  (unsigned long long)rs.records_put, (unsigned long long)rs.slots_reclaimed,
                  (unsigned long long)rs.members_reclaimed, (unsigned long long)excused);

    for (int g = 0; g < GROUPS; g++) {
        uint64_t missing = 0, first_missing = 0;
        for (uint64_t s = 0; s < span && policy == SHM_POLICY_BACKPRESSURE; s++) {
            if (bitmap_get(committed_bits, s) && !bitmap_get(acked_bits[g], s) &&
                !bitmap_get(excused_bits[g], s)) {
                if (missing++ == 0)
                    first_missing = s;
            }
        }
        uint64_t distinct = count_union(acked_bits[g], excused_bits[g], NSEQ);
        uint64_t sum = gs[g].consumed + gs[g].lost + gs[g].padded + gs[g].invalid;
        print_message("  group %s: consumed %llu, lost %llu, padded %llu, redelivered %llu (%llu "
                      "batches), duplicates %llu, distinct records %llu, missing %llu\n",
                      gs[g].name, (unsigned long long)gs[g].consumed,
                      (unsigned long long)gs[g].lost, (unsigned long long)gs[g].padded,
                      (unsigned long long)gs[g].redelivered,
                      (unsigned long long)sh->redelivered_batches[g],
                      (unsigned long long)sh->duplicates[g], (unsigned long long)distinct,
                      (unsigned long long)missing);
        if (missing)
            fail_msg("group %s: %llu committed records never acknowledged, first seq base+%llu",
                     gs[g].name, (unsigned long long)missing, (unsigned long long)first_missing);
        assert_int_equal(gs[g].tail_seq, rs.head_seq);
        assert_int_equal(gs[g].invalid, 0);
        assert_true(sum >= span);
        assert_true(sum <= span + gs[g].redelivered);
        assert_true(distinct <= span);
        if (policy == SHM_POLICY_BACKPRESSURE) {
            /* Every sequence number is a record or a pad; the pads are
             * exactly the slots the ring reclaimed. */
            assert_int_equal(gs[g].lost, 0);
            assert_int_equal(rs.slots_reclaimed, span - distinct);
            assert_true(rs.records_put <= distinct);
        } else {
            /* Lapped records, pads included, are lost; the rest are
             * records or pads. */
            assert_true(rs.slots_reclaimed + distinct + gs[g].lost >= span);
        }
    }
    assert_true(committed <= rs.records_put);
    assert_true(rs.members_reclaimed <= (uint64_t)kills);
    /* Everyone is gone and everything they held was cleaned up. */
    int members = shm_member_stats_get(seg, ms_, 8);
    if (members != 0)
        fail_msg("%d members left in the registry after everyone exited (first: pid %d, state "
                 "%u, alive %d)",
                 members, ms_[0].pid, ms_[0].state, ms_[0].alive);
    shm_segment_close(&seg);
}

static void test_kill_storm_backpressure(void **state)
{
    (void)state;
    kill_storm(SHM_POLICY_BACKPRESSURE);
}

/* Drop-oldest adds laps (producers overwriting slots that consumers read or
 * that dead producers held) to the same storm. What must hold: the ring
 * drains and flows, no record is torn or invalid, and per group
 * tail - start <= consumed + lost + padded <= tail - start + redelivered. */
static void test_kill_storm_drop_oldest(void **state)
{
    (void)state;
    kill_storm(SHM_POLICY_DROP_OLDEST);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_storm_backpressure),
        cmocka_unit_test(test_kill_storm_drop_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

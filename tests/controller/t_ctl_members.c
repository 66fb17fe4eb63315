/*
 * t_ctl_members.c — the controller as the group's supervisor, with real
 * processes:
 *  - a consumer SIGKILLed while it holds a batch: the controller notices
 *    within 1 s (its log, its counter) and the batch is re-delivered to the
 *    surviving member of the group, which only polls (shm_consume with
 *    timeout 0 never reclaims by itself, so the re-delivery is the
 *    controller's doing);
 *  - a producer SIGKILLed between claim and commit, left a zombie (not
 *    reaped, so its pid still exists): the controller pads its claimed slots
 *    within 1 s, so the records committed behind them reach the consumer;
 *  - the controller SIGKILLed and restarted: it re-attaches, nothing
 *    published is lost, the groups keep their positions;
 *  - a second controller for the same segment is refused;
 *  - an operator pause survives a controller restart.
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "ctlharness.h"
#include "shmtest.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIED_COUNTER "controller_member_departures_total{how=\"died\"}"

static void put_records(shm_segment *seg, int n)
{
    shm_producer *p;
    assert_int_equal(shm_producer_open(seg, "t-producer", &p), 0);
    for (int i = 0; i < n; i++) {
        uint8_t buf[SHM_TAG_VALUE_MAX];
        shm_tag_value v = {.tag_id = (uint32_t)i, .device_id = 0, .value = i, .timestamp_ns = 1};
        int len = shm_tag_value_encode(&v, buf, sizeof buf);
        assert_true(len > 0);
        assert_int_equal(shm_put(p, buf, (uint32_t)len, NULL), 0);
    }
    shm_producer_close(&p);
}

/* What a child holds when it is killed (a batch, a claim), in memory shared
 * with the test. */
struct held_share {
    volatile uint64_t first_seq;
    volatile uint32_t count;
    volatile int ready;
};

struct child_arg {
    const char *segment;
    struct held_share *share;
};

/* Child's last step: tells the test what it holds, then holds it until
 * SIGKILL. */
static _Noreturn void hold_until_killed(struct child_arg *a, uint64_t first_seq, uint32_t count)
{
    a->share->first_seq = first_seq;
    a->share->count = count;
    __atomic_store_n(&a->share->ready, 1, __ATOMIC_RELEASE);
    for (;;)
        pause();
}

/* Child: takes one batch of the writer group and hangs on to it. */
static int victim(void *arg)
{
    struct child_arg *a = arg;
    shm_segment *seg;
    shm_consumer *c;
    shm_batch b;
    if (shm_segment_open(a->segment, NULL, SHM_OPEN_ATTACH, &seg) != 0 ||
        shm_consumer_open(seg, "writer", "victim", &c) != 0 || shm_consume(c, 10, 5000, &b) <= 0)
        return 1;
    hold_until_killed(a, b.first_seq, b.count);
}

static int share_ready(void *arg)
{
    return __atomic_load_n(&((struct held_share *)arg)->ready, __ATOMIC_ACQUIRE);
}

static int victim_joined(void *arg)
{
    return ctlh_log_has(arg, "'victim' (consumer of group writer");
}

struct died_wait {
    shm_segment *seg;
    uint64_t want;
};

static int controller_counted_death(void *arg)
{
    struct died_wait *d = arg;
    return ctlh_counter(d->seg, DIED_COUNTER) >= d->want;
}

static void test_killed_consumer_batch_is_redelivered(void **state)
{
    ctlh h;
    ctlh_init(&h, "ctlkill", "  slot_count: 1024\n", "  check_interval_ms: 100\n");
    assert_true(ctlh_start(&h, NULL) > 0);
    shm_segment *seg;
    assert_int_equal(shm_segment_open(h.segment, NULL, SHM_OPEN_ATTACH, &seg), 0);
    put_records(seg, 100);

    struct held_share *share = shmtest_shared_alloc(sizeof *share);
    struct child_arg va = {.segment = h.segment, .share = share};
    pid_t v = shmtest_fork(victim, &va);
    assert_true(shmtest_wait_until(share_ready, share, 5000));
    assert_int_equal(share->count, 10);

    /* Let the controller see the victim alive first (a join, logged). */
    assert_true(shmtest_wait_until(victim_joined, &h, 5000));
    uint64_t died_before = ctlh_counter(seg, DIED_COUNTER);

    shm_consumer *survivor;
    assert_int_equal(shm_consumer_open(seg, "writer", "survivor", &survivor), 0);
    shmtest_kill(v); /* SIGKILL mid-batch, reaped: not even a zombie is left */
    int64_t killed_at = shmtest_now_ms();
    /* The controller must be the one that notices: the survivor does not
     * consume until then (an idle shm_consume() reclaims dead members too,
     * every 100 ms, and would race the controller for it). */
    struct died_wait dw = {seg, died_before + 1};
    assert_true(shmtest_wait_until(controller_counted_death, &dw, 5000));
    int64_t noticed_at = shmtest_now_ms();
    assert_true(noticed_at - killed_at < 1000);

    bool redelivered = false;
    int64_t redelivered_at = 0;
    uint64_t seen = 0;
    while (!redelivered && shmtest_now_ms() - killed_at < 5000) {
        shm_batch b;
        int n = shm_consume(survivor, 10, 0, &b);
        assert_true(n >= 0);
        if (n == 0) {
            usleep(2000);
            continue;
        }
        shm_record r;
        while (shm_batch_next(survivor, &b, &r) == 1)
            seen++;
        if (b.redelivered) {
            assert_int_equal(b.first_seq, share->first_seq);
            assert_int_equal(b.count, share->count);
            redelivered = true;
            redelivered_at = shmtest_now_ms();
        }
        assert_int_equal(shm_ack(survivor, &b), 0);
    }
    assert_true(redelivered);
    /* Re-delivered once the controller had reclaimed it (the 1 s bound of
     * the issue is checked above, on the controller's count). */
    assert_true(redelivered_at >= noticed_at);
    assert_int_equal(ctlh_counter(seg, DIED_COUNTER), died_before + 1);
    assert_true(ctlh_log_has(&h, "'victim' (consumer of group writer"));
    assert_true(ctlh_log_has(&h, "died; what it held goes back to its group"));

    /* Every one of the 100 records reached the group exactly once more
     * (the 90 the victim never took, plus its 10 re-delivered). */
    shm_batch b;
    while (shm_consume(survivor, 64, 0, &b) > 0) {
        shm_record r;
        while (shm_batch_next(survivor, &b, &r) == 1)
            seen++;
        shm_ack(survivor, &b);
    }
    assert_int_equal(seen, 100);
    shm_consumer_close(&survivor);
    shm_segment_close(&seg);
    int st = ctlh_stop(&h);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Child: claims 5 slots, writes them, never commits. */
static int stuck_producer(void *arg)
{
    struct child_arg *a = arg;
    shm_segment *seg;
    shm_producer *p;
    shm_slots sl;
    if (shm_segment_open(a->segment, NULL, SHM_OPEN_ATTACH, &seg) != 0 ||
        shm_producer_open(seg, "stuck-producer", &p) != 0 || shm_claim(p, 5, &sl) != 5)
        return 1;
    for (uint32_t i = 0; i < sl.count; i++) {
        shm_tag_value v = {.tag_id = 1000 + i, .value = i, .timestamp_ns = 1};
        int len = shm_tag_value_encode(&v, shm_slots_buf(&sl, i), sl.payload);
        if (len <= 0 || shm_slots_set_len(&sl, i, (uint32_t)len) != 0)
            return 1;
    }
    hold_until_killed(a, sl.first_seq, sl.count); /* the claim stays open */
}

static int stuck_joined(void *arg)
{
    return ctlh_log_has(arg, "'stuck-producer' (producer");
}

struct zombie_arg {
    pid_t pid;
    uint64_t start_time;
};

/* The pid still exists (signals reach it) but libshm no longer counts the
 * process alive: killed and not reaped. */
static int is_zombie(void *arg)
{
    struct zombie_arg *z = arg;
    return kill(z->pid, 0) == 0 && !shm_process_alive(z->pid, z->start_time);
}

static int padded_by_controller(void *arg)
{
    return ctlh_log_has(arg, "reclaimed 1 dead member(s): 5 claimed slots padded, 0 batches");
}

/* Drains what the consumer can get now (timeout 0: it never reclaims by
 * itself); returns records delivered and adds pads to *pads. */
static uint64_t drain_now(shm_consumer *c, uint64_t *pads)
{
    uint64_t got = 0;
    shm_batch b;
    while (shm_consume(c, 64, 0, &b) > 0) {
        shm_record r;
        while (shm_batch_next(c, &b, &r) == 1)
            got++;
        *pads += b.pads;
        assert_int_equal(shm_ack(c, &b), 0);
    }
    return got;
}

static void test_killed_producer_claim_is_padded(void **state)
{
    ctlh h;
    ctlh_init(&h, "ctlpad", "  slot_count: 1024\n", "  check_interval_ms: 100\n");
    assert_true(ctlh_start(&h, NULL) > 0);
    shm_segment *seg;
    assert_int_equal(shm_segment_open(h.segment, NULL, SHM_OPEN_ATTACH, &seg), 0);
    shm_consumer *c;
    assert_int_equal(shm_consumer_open(seg, "writer", "t-reader", &c), 0);
    put_records(seg, 10);

    struct held_share *share = shmtest_shared_alloc(sizeof *share);
    struct child_arg sa = {.segment = h.segment, .share = share};
    pid_t v = shmtest_fork(stuck_producer, &sa);
    assert_true(shmtest_wait_until(share_ready, share, 5000));
    struct zombie_arg z = {.pid = v, .start_time = shm_process_start_time(v)};
    assert_true(z.start_time != 0 && shm_process_alive(v, z.start_time));
    assert_true(shmtest_wait_until(stuck_joined, &h, 5000));
    put_records(seg, 20); /* committed behind the open claim */

    uint64_t pads = 0;
    assert_int_equal(drain_now(c, &pads), 10); /* the open claim stops the group */
    assert_int_equal(drain_now(c, &pads), 0);

    kill(v, SIGKILL); /* not reaped: a zombie keeps the pid */
    assert_true(shmtest_wait_until(is_zombie, &z, 5000));
    /* Nobody else touches the ring now (a consumer that meets the stuck
     * slot may reclaim by itself): the padding is the controller's doing,
     * and the bound is 1 s. */
    int64_t killed_at = shmtest_now_ms();
    assert_true(shmtest_wait_until(padded_by_controller, &h, 1000));
    assert_true(shmtest_now_ms() - killed_at < 1000);
    assert_true(is_zombie(&z)); /* it did not wait for the reap */
    assert_true(ctlh_log_has(&h, "'stuck-producer' (producer, pid"));
    assert_true(ctlh_log_has(&h, ") died; what it held goes back to its group"));
    assert_int_equal(drain_now(c, &pads), 20);
    assert_int_equal(pads, share->count);
    shmtest_kill(v); /* reaps */
    shm_consumer_close(&c);
    shm_segment_close(&seg);
    int st = ctlh_stop(&h);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_restart_reattaches_and_loses_nothing(void **state)
{
    ctlh h;
    ctlh_init(&h, "ctlrestart", "  slot_count: 1024\n", NULL);
    pid_t first = ctlh_start(&h, NULL);
    assert_true(first > 0);
    shm_segment *seg;
    assert_int_equal(shm_segment_open(h.segment, NULL, SHM_OPEN_ATTACH, &seg), 0);
    put_records(seg, 300);
    shm_consumer *live; /* a member that lives through the restart */
    assert_int_equal(shm_consumer_open(seg, "stats", "t-live", &live), 0);
    shm_ring_stats before;
    shm_ring_stats_get(seg, &before);

    /* A second controller for the same segment is refused while one runs. */
    ctlh second = h;
    snprintf(second.log, sizeof second.log, "%s/second.log", h.dir);
    char bin[PATH_MAX];
    shmtest_bin(bin, sizeof bin, "shmbus-controller");
    char *argv[] = {bin, "--config", h.config, NULL};
    pid_t p2 = shmtest_spawn(argv, second.log);
    int st2 = shmtest_wait_pid(p2, 10000);
    assert_true(WIFEXITED(st2) && WEXITSTATUS(st2) == 1);
    assert_true(ctlh_log_has(&second, "another controller holds"));

    kill(first, SIGKILL);
    shmtest_wait_pid(first, 5000);
    pid_t again = ctlh_start(&h, NULL); /* stale socket and lock file are taken over */
    assert_true(again > 0);
    assert_true(ctlh_log_has_from(&h, again, "attached (created if missing)"));
    /* It carries on: the member it finds is logged as joined, with its slot. */
    char joined[128];
    snprintf(joined, sizeof joined, "'t-live' (consumer of group stats, pid %d) joined", getpid());
    assert_true(ctlh_log_has_from(&h, again, joined));

    shm_ring_stats after;
    shm_ring_stats_get(seg, &after);
    assert_int_equal(after.head_seq, before.head_seq);
    assert_int_equal(after.records_put, before.records_put);
    shm_group_stats gs[SHM_MAX_GROUPS];
    int ng = shm_group_stats_get(seg, gs, SHM_MAX_GROUPS);
    assert_int_equal(ng, 2);
    for (int g = 0; g < ng; g++)
        assert_int_equal(gs[g].lag, 300);

    /* The writer group still gets all 300, in order. */
    shm_consumer *c;
    assert_int_equal(shm_consumer_open(seg, "writer", "t-drain", &c), 0);
    uint64_t expect = gs[0].tail_seq, got = 0;
    shm_batch b;
    while (shm_consume(c, 64, 0, &b) > 0) {
        shm_record r;
        while (shm_batch_next(c, &b, &r) == 1) {
            assert_int_equal(r.seq, expect);
            expect++;
            got++;
        }
        shm_ack(c, &b);
    }
    assert_int_equal(got, 300);
    shm_consumer_close(&c);
    shm_consumer_close(&live);
    shm_segment_close(&seg);
    int st = ctlh_stop(&h);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

struct paused_arg {
    const char *segment;
    uint32_t want;
};

static int paused_is(void *arg)
{
    struct paused_arg *p = arg;
    shm_segment *seg;
    if (shm_segment_open(p->segment, NULL, SHM_OPEN_ATTACH | SHM_OPEN_READONLY, &seg) != 0)
        return 0;
    shm_ring_stats rs;
    shm_ring_stats_get(seg, &rs);
    shm_segment_close(&seg);
    return rs.paused == p->want;
}

/* Sends one control request with nngcat; returns its exit status. */
static int nngcat_request(const ctlh *h, const char *json)
{
    char url[PATH_MAX + 32], out[PATH_MAX];
    snprintf(url, sizeof url, "ipc://%s/run/%s.control", h->dir, h->segment);
    snprintf(out, sizeof out, "%s/nngcat.out", h->dir);
    char *argv[] = {"/usr/bin/nngcat", "--req",    "--dial",         url, "--data",
                    (char *)json,      "--quoted", "--recv-timeout", "5", NULL};
    pid_t p = shmtest_spawn(argv, out);
    return shmtest_wait_pid(p, 10000);
}

static void test_operator_pause_survives_restart(void **state)
{
    if (access("/usr/bin/nngcat", X_OK) != 0)
        skip();
    ctlh h;
    ctlh_init(&h, "ctlpause", "  slot_count: 1024\n", NULL);
    pid_t first = ctlh_start(&h, NULL);
    assert_true(first > 0);
    int st = nngcat_request(&h, "{\"cmd\":\"pause\"}");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct paused_arg pa = {.segment = h.segment, .want = 1};
    assert_true(shmtest_wait_until(paused_is, &pa, 5000));

    kill(first, SIGKILL);
    shmtest_wait_pid(first, 5000);
    pid_t again = ctlh_start(&h, NULL);
    assert_true(again > 0);
    /* Still paused after the restart: the reason was kept in the segment. */
    usleep(300 * 1000);
    assert_true(paused_is(&pa));
    assert_true(ctlh_log_has_from(
        &h, again, "segment state adopted: pressure none, producers paused (by the operator)"));

    st = nngcat_request(&h, "{\"cmd\":\"resume\"}");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    pa.want = 0;
    assert_true(shmtest_wait_until(paused_is, &pa, 5000));
    st = ctlh_stop(&h);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_consumer_batch_is_redelivered),
        cmocka_unit_test(test_killed_producer_claim_is_padded),
        cmocka_unit_test(test_restart_reattaches_and_loses_nothing),
        cmocka_unit_test(test_operator_pause_survives_restart),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

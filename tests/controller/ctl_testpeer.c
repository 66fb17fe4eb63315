/*
 * ctl_testpeer.c — a small real member process for the controller's script
 * tests (it uses only the public libshm API, like any service would).
 *
 *   ctl_testpeer counters SEGMENT
 *       opens named counters with awkward names (invalid characters, broken
 *       and duplicate labels, invalid UTF-8, a clash with a built-in metric,
 *       one name as both counter and gauge) and exits: /metrics must still
 *       parse.
 *   ctl_testpeer grow SEGMENT MB_PER_S SECONDS [GROUP]
 *       joins GROUP (default "stats") as consumer "testpeer-grow", allocates
 *       and touches MB_PER_S MiB of private memory per second for SECONDS,
 *       then holds it until killed (the leak watch and the RSS limit).
 *   ctl_testpeer drain SEGMENT RECORDS_PER_S GROUP...
 *       joins each GROUP as consumer "testpeer-drain" and consumes at most
 *       RECORDS_PER_S records per second from each (a token bucket with a
 *       small burst, so a SIGSTOP/SIGCONT pause is not made up in one
 *       gulp): a slow consumer whose pace the test chooses. SIGTERM ends it;
 *       it prints {"drained":N}.
 */
#include <shmbus/shm.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int open_segment(const char *name, shm_segment **seg)
{
    if (shm_segment_open(name, NULL, SHM_OPEN_ATTACH, seg) != 0) {
        fprintf(stderr, "ctl_testpeer: %s\n", shm_last_error());
        return -1;
    }
    return 0;
}

static int set_counter(shm_segment *seg, const char *name, int kind, uint64_t v)
{
    shm_counter *k;
    if (shm_counter_open(seg, name, kind, &k) != 0) {
        fprintf(stderr, "ctl_testpeer: counter '%s': %s\n", name, shm_last_error());
        return -1;
    }
    shm_counter_set(k, v);
    return 0;
}

static int cmd_counters(const char *segname)
{
    shm_segment *seg;
    if (open_segment(segname, &seg) != 0)
        return 1;
    static const struct {
        const char *name;
        int kind;
        uint64_t value;
    } list[] = {
        {"poller_requests_total{device=\"plc1\"}", SHM_COUNTER, 5},
        {"poller_requests_total{device=\"plc\\\"2\\\\x\"}", SHM_COUNTER, 6},
        {"poller_requests_total{device=\"plc1\"} ", SHM_COUNTER, 7}, /* text after labels */
        {"poller_rtt_seconds{device=\"plc1\",unit=\"1\",}", SHM_GAUGE, 1},
        {"weird name!-x", SHM_GAUGE, 8},
        {"bad_labels{device=plc1}", SHM_COUNTER, 9},
        {"dup_labels_total{a=\"1\",a=\"2\"}", SHM_COUNTER, 10},
        {"shmbus_ring_slots", SHM_GAUGE, 11}, /* clashes with a built-in family */
        {"9starts_with_digit_total", SHM_COUNTER, 12},
        {"utf8_\xc3\xa9_total{name=\"caf\xc3\xa9 \xff\"}", SHM_COUNTER, 13},
        {"reserved{__x=\"y\",1a=\"z\"}", SHM_GAUGE, 14},
        {"mixed_kind", SHM_COUNTER, 15},
        {"mixed_kind_total", SHM_GAUGE, 16}, /* same family as the counter above */
        {"{lonely=\"labels\"}", SHM_GAUGE, 17},
        {"unterminated{a=\"b", SHM_GAUGE, 18},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        rc |= set_counter(seg, list[i].name, list[i].kind, list[i].value);
    shm_segment_close(&seg);
    return rc ? 1 : 0;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static int cmd_grow(const char *segname, double mb_per_s, double seconds, const char *group)
{
    shm_segment *seg;
    shm_consumer *c;
    if (open_segment(segname, &seg) != 0)
        return 1;
    if (shm_consumer_open(seg, group, "testpeer-grow", &c) != 0) {
        fprintf(stderr, "ctl_testpeer: %s\n", shm_last_error());
        return 1;
    }
    signal(SIGTERM, on_term);
    size_t step = (size_t)(mb_per_s * 1024 * 1024 / 20); /* every 50 ms */
    size_t steps = (size_t)(seconds * 20), held = 0;
    char **blocks = calloc(steps + 1, sizeof *blocks);
    if (!blocks)
        return 1;
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 50 * 1000000};
    for (size_t i = 0; i < steps && !stop; i++) {
        blocks[i] = malloc(step);
        if (!blocks[i])
            break;
        memset(blocks[i], (int)(i & 0x7f) + 1, step); /* touched: resident, private */
        held++;
        shm_consumer_heartbeat(c);
        nanosleep(&tick, NULL);
    }
    printf("grown %zu MiB\n", held * step >> 20);
    fflush(stdout);
    while (!stop) {
        shm_consumer_heartbeat(c);
        nanosleep(&tick, NULL);
    }
    for (size_t i = 0; i < held; i++)
        free(blocks[i]);
    free(blocks);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
    return 0;
}

#define DRAIN_MAX_GROUPS 8
#define DRAIN_BURST 16.0 /* records a group may take at once */

static int cmd_drain(const char *segname, double rate, char **groups, int n)
{
    shm_segment *seg;
    shm_consumer *c[DRAIN_MAX_GROUPS] = {0};
    double tokens[DRAIN_MAX_GROUPS] = {0};
    uint64_t drained = 0;
    int rc = 1;
    if (n > DRAIN_MAX_GROUPS || rate <= 0) {
        fprintf(stderr, "ctl_testpeer: drain: 1..%d groups, a positive rate\n", DRAIN_MAX_GROUPS);
        return 2;
    }
    if (open_segment(segname, &seg) != 0)
        return 1;
    for (int g = 0; g < n; g++) {
        if (shm_consumer_open(seg, groups[g], "testpeer-drain", &c[g]) != 0) {
            fprintf(stderr, "ctl_testpeer: group %s: %s\n", groups[g], shm_last_error());
            goto out;
        }
    }
    signal(SIGTERM, on_term);
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 5 * 1000000}, last, now;
    clock_gettime(CLOCK_MONOTONIC, &last);
    while (!stop) {
        nanosleep(&tick, NULL);
        clock_gettime(CLOCK_MONOTONIC, &now);
        double dt = (double)(now.tv_sec - last.tv_sec) + (double)(now.tv_nsec - last.tv_nsec) / 1e9;
        last = now;
        for (int g = 0; g < n; g++) {
            tokens[g] += dt * rate;
            if (tokens[g] > DRAIN_BURST)
                tokens[g] = DRAIN_BURST; /* time spent stopped is not credit */
            shm_consumer_heartbeat(c[g]);
            if (tokens[g] < 1.0)
                continue;
            shm_batch b;
            if (shm_consume(c[g], (uint32_t)tokens[g], 0, &b) <= 0)
                continue;
            shm_record r;
            while (shm_batch_next(c[g], &b, &r) == 1)
                ;
            tokens[g] -= b.count;
            drained += b.delivered;
            shm_ack(c[g], &b);
        }
    }
    printf("{\"drained\":%llu}\n", (unsigned long long)drained);
    rc = 0;
out:
    for (int g = 0; g < n; g++)
        shm_consumer_close(&c[g]);
    shm_segment_close(&seg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "counters") == 0)
        return cmd_counters(argv[2]);
    if ((argc == 5 || argc == 6) && strcmp(argv[1], "grow") == 0)
        return cmd_grow(argv[2], atof(argv[3]), atof(argv[4]), argc == 6 ? argv[5] : "stats");
    if (argc >= 5 && strcmp(argv[1], "drain") == 0)
        return cmd_drain(argv[2], atof(argv[3]), argv + 4, argc - 4);
    fprintf(stderr, "usage: ctl_testpeer counters SEGMENT\n"
                    "       ctl_testpeer grow SEGMENT MB_PER_S SECONDS [GROUP]\n"
                    "       ctl_testpeer drain SEGMENT RECORDS_PER_S GROUP...\n");
    return 2;
}

/*
 * export_feed.c — the export tests' producer and probe, on the public
 * libshm API only.
 *
 *   export_feed put --name SEG [--policy backpressure|drop-oldest] [--slots N]
 *                   [--count N] [--rate R] [--tags T] [--group G]...
 *       Creates the segment (or attaches), fills the tag catalog, creates the
 *       groups (so they see every record), then puts N TagValue records at R
 *       per second (0: as fast as the ring takes them; under backpressure a
 *       full ring is waited out, so exactly N go in). Every field is a
 *       function of the record's sequence number, so a reader can check each
 *       row on its own (see expected values below). Prints one JSON line:
 *       {"first_seq":..,"last_seq":..,"put":N,"full_waits":..}.
 *   export_feed stats --name SEG
 *       Prints one JSON line per named counter {"counter":name,"value":v}
 *       and per group {"group":name,"next":..,"tail":..,"lag":..,"lost":..,
 *       "members":..,"redelivered":..}, and per consumer member
 *       {"member":name,"in_group":group,"pid":..,"held":batches held}.
 *
 * Shmbus-load does not fill the catalog and derives values from wall time;
 * this feeder exists so that tests can compare every exported field.
 *
 * Expected values for sequence number s (tag count T):
 *   tag_id = s % T, device_id = tag_id % 2, time_ns = s (a plausible time:
 *   sequence numbers start at the segment's creation time in ns),
 *   value = (s % 100000) * 0.25, raw = s % 1000003,
 *   quality = DEVICE_EXCEPTION with exception_code 2 when s % 10 == 7,
 *   STALE when s % 10 == 3, else GOOD.
 * Catalog: tag i is "t<i>" on device "plc<i%2>" with unit "u<i%3>" and
 * data type FLOAT32; tag 1 is "flow/rate+#" (a name that needs escaping in
 * MQTT topics).
 */
#include <shmbus/shm.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_GROUPS 8

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fill_value(uint64_t s, uint32_t tags, shm_tag_value *v)
{
    uint32_t tag = (uint32_t)(s % tags);
    memset(v, 0, sizeof *v);
    v->sequence = s;
    v->timestamp_ns = (int64_t)s;
    v->tag_id = tag;
    v->device_id = tag % 2;
    v->value = (double)(s % 100000) * 0.25;
    v->raw = (int64_t)(s % 1000003);
    v->quality = s % 10 == 7 ? SHM_Q_DEVICE_EXCEPTION : s % 10 == 3 ? SHM_Q_STALE : SHM_Q_GOOD;
    v->exception_code = s % 10 == 7 ? 2 : 0;
}

static int fill_catalog(shm_segment *seg, uint32_t tags)
{
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
    for (uint32_t i = 0; i < tags; i++) {
        char name[32], device[16], unit[8];
        if (i == 1)
            snprintf(name, sizeof name, "flow/rate+#");
        else
            snprintf(name, sizeof name, "t%u", i);
        snprintf(device, sizeof device, "plc%u", i % 2);
        snprintf(unit, sizeof unit, "u%u", i % 3);
        shm_tag_meta m = {.id = i,
                          .device_id = i % 2,
                          .name = name,
                          .device = device,
                          .unit = unit,
                          .data_type = SHM_DT_FLOAT32,
                          .scale = 1};
        int len = shm_tag_meta_encode(&m, buf, sizeof buf);
        if (len < 0 || shm_catalog_put(seg, i, buf, (uint32_t)len) != 0) {
            fprintf(stderr, "export_feed: catalog entry %u: %s\n", i, shm_last_error());
            return -1;
        }
    }
    return 0;
}

static int cmd_put(const char *name, int argc, char **argv)
{
    uint32_t policy = SHM_POLICY_BACKPRESSURE, slots = 65536, tags = 10;
    uint64_t count = 10000;
    double rate = 0;
    const char *groups[MAX_GROUPS];
    int ngroups = 0;
    for (int i = 0; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--policy") == 0)
            policy = strcmp(v, "drop-oldest") == 0 ? SHM_POLICY_DROP_OLDEST : SHM_POLICY_BACKPRESSURE;
        else if (strcmp(a, "--slots") == 0)
            slots = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--count") == 0)
            count = strtoull(v, NULL, 10);
        else if (strcmp(a, "--rate") == 0)
            rate = atof(v);
        else if (strcmp(a, "--tags") == 0)
            tags = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--group") == 0 && ngroups < MAX_GROUPS)
            groups[ngroups++] = v;
        else if (strcmp(a, "--name") != 0) {
            fprintf(stderr, "export_feed put: unknown option %s\n", a);
            return 2;
        }
    }
    if (tags == 0)
        tags = 1;
    shm_segment_options o = {.policy = policy, .slot_count = slots};
    shm_segment *seg;
    if (shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg) != 0) {
        fprintf(stderr, "export_feed: %s\n", shm_last_error());
        return 2;
    }
    if (fill_catalog(seg, tags) != 0)
        return 2;
    for (int g = 0; g < ngroups; g++) {
        shm_consumer *c;
        if (shm_consumer_open(seg, groups[g], "feed-setup", &c) != 0) {
            fprintf(stderr, "export_feed: group %s: %s\n", groups[g], shm_last_error());
            return 2;
        }
        shm_consumer_close(&c);
    }
    shm_producer *p;
    if (shm_producer_open(seg, "export-feed", &p) != 0) {
        fprintf(stderr, "export_feed: %s\n", shm_last_error());
        return 2;
    }
    uint64_t put = 0, full_waits = 0, first = 0, last = 0;
    int64_t t0 = mono_ns();
    while (put < count && !stop) {
        uint64_t due = rate > 0 ? (uint64_t)((double)(mono_ns() - t0) / 1e9 * rate) + 1 : count;
        if (due > count)
            due = count;
        if (put >= due) {
            usleep(1000);
            continue;
        }
        uint32_t n = due - put > 256 ? 256 : (uint32_t)(due - put);
        shm_slots s;
        int got = shm_claim(p, n, &s);
        if (got == SHM_EFULL || got == SHM_EPAUSED) {
            full_waits++;
            usleep(1000);
            continue;
        }
        if (got < 0) {
            fprintf(stderr, "export_feed: claim: %s\n", shm_last_error());
            return 1;
        }
        for (int i = 0; i < got; i++) {
            shm_tag_value v;
            fill_value(s.first_seq + (uint64_t)i, tags, &v);
            int len = shm_tag_value_encode(&v, shm_slots_buf(&s, (uint32_t)i), s.payload);
            if (len > 0)
                shm_slots_set_len(&s, (uint32_t)i, (uint32_t)len);
        }
        shm_commit(p, &s);
        if (put == 0)
            first = s.first_seq;
        last = s.first_seq + (uint64_t)got - 1;
        put += (uint64_t)got;
    }
    printf("{\"first_seq\":%llu,\"last_seq\":%llu,\"put\":%llu,\"full_waits\":%llu}\n",
           (unsigned long long)first, (unsigned long long)last, (unsigned long long)put,
           (unsigned long long)full_waits);
    fflush(stdout);
    shm_producer_close(&p);
    shm_segment_close(&seg);
    return 0;
}

static int print_counter(void *ctx, const char *name, int kind, uint64_t value)
{
    (void)ctx;
    (void)kind;
    printf("{\"counter\":\"");
    for (const char *c = name; *c; c++) {
        if (*c == '"' || *c == '\\')
            putchar('\\');
        putchar(*c);
    }
    printf("\",\"value\":%llu}\n", (unsigned long long)value);
    return 0;
}

static int cmd_stats(const char *name)
{
    shm_segment *seg;
    if (shm_segment_open(name, NULL, SHM_OPEN_READONLY, &seg) != 0) {
        fprintf(stderr, "export_feed: %s\n", shm_last_error());
        return 2;
    }
    shm_counter_foreach(seg, print_counter, NULL);
    shm_group_stats gs[SHM_MAX_GROUPS];
    int n = shm_group_stats_get(seg, gs, SHM_MAX_GROUPS);
    for (int i = 0; i < n && i < SHM_MAX_GROUPS; i++)
        printf("{\"group\":\"%s\",\"next\":%llu,\"tail\":%llu,\"lag\":%llu,\"lost\":%llu,"
               "\"members\":%u,\"redelivered\":%llu,\"orphans\":%u}\n",
               gs[i].name, (unsigned long long)gs[i].next_seq, (unsigned long long)gs[i].tail_seq,
               (unsigned long long)gs[i].lag, (unsigned long long)gs[i].lost, gs[i].members,
               (unsigned long long)gs[i].redelivered, gs[i].orphans);
    static shm_member_stats ms[256];
    n = shm_member_stats_get(seg, ms, 256);
    for (int i = 0; i < n && i < 256; i++)
        if (ms[i].role == SHM_ROLE_CONSUMER)
            printf("{\"member\":\"%s\",\"in_group\":\"%s\",\"pid\":%d,\"held\":%u}\n",
                   ms[i].name, ms[i].group, (int)ms[i].pid, ms[i].batches_held);
    shm_segment_close(&seg);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    const char *name = NULL;
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], "--name") == 0)
            name = argv[i + 1];
    if (argc < 2 || !name) {
        fprintf(stderr, "usage: export_feed put|stats --name SEG [options]\n");
        return 2;
    }
    if (strcmp(argv[1], "put") == 0)
        return cmd_put(name, argc - 2, argv + 2);
    if (strcmp(argv[1], "stats") == 0)
        return cmd_stats(name);
    fprintf(stderr, "export_feed: unknown command %s\n", argv[1]);
    return 2;
}

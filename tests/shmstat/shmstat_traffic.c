/*
 * shmstat_traffic.c — test helper for tests/shmstat: creates a segment with
 * known content and traffic, and reports exactly what it did, so the test
 * can compare shmstat's output with the truth.
 *
 *   shmstat_traffic NAME
 *
 * At start it creates /shmbus.NAME (1024 slots of 128 bytes, drop-oldest),
 * names tags 0..3 in the catalog, opens three named counters, joins group
 * "writer" (member "w1"), group "stats" ("s1") and a producer ("p1"), and
 * puts 100 TagValue records, one record that is not a FlatBuffer, then 4
 * more TagValues. "writer" consumes and acknowledges everything, "stats"
 * the first 50. Then it prints one JSON line {"event":"ready",...} with the
 * figures and the last 5 records, and obeys commands on stdin, one a line:
 *
 *   run     put a TagValue every ~2 ms (both groups consume and ack it)
 *   pause   stop touching the segment; prints {"event":"paused",...}
 *   quit    close members and exit 0 (also at end of input)
 *
 * While paused (and after "ready") the helper does not write to the
 * segment at all, so its bytes may be hashed. Exit status 1 on any error.
 */
#include <shmbus/shm.h>

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TAGS 4
static const char *const tag_names[TAGS] = {"boiler1.temperature", "boiler1.pressure", "pump2.flow",
                                            "tank3.level"};
static const char *const tag_units[TAGS] = {"degC", "bar", "m3/h", "%"};
static const char raw_record[] = "not-a-flatbuffer";

struct traffic {
    shm_segment *seg;
    shm_producer *prod;
    shm_consumer *writer, *stats;
    shm_counter *puts, *level, *requests;
    uint64_t put, writer_consumed, stats_consumed, n;
};

static int die(const char *what, int rc)
{
    fprintf(stderr, "shmstat_traffic: %s: %s (%s)\n", what, shm_strerror(rc), shm_last_error());
    exit(1);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Puts TagValue number t->n through claim/commit, with the ring sequence
 * written into the record. */
static void put_value(struct traffic *t, uint64_t *seq_out, shm_tag_value *v_out)
{
    shm_slots s;
    int rc = shm_claim(t->prod, 1, &s);
    if (rc != 1)
        die("claim", rc);
    shm_tag_value v = {
        .sequence = s.first_seq,
        .timestamp_ns = now_ns(),
        .device_id = 1,
        .tag_id = (uint32_t)(t->n % TAGS),
        .value = (double)t->n * 1.5,
        .raw = (int64_t)t->n * 15,
        .quality = (uint8_t)(t->n % 7 == 3 ? SHM_Q_STALE : SHM_Q_GOOD),
    };
    int len = shm_tag_value_encode(&v, shm_slots_buf(&s, 0), s.payload);
    if (len <= 0)
        die("encode", len);
    if ((rc = shm_slots_set_len(&s, 0, (uint32_t)len)) != 0)
        die("set_len", rc);
    if ((rc = shm_commit(t->prod, &s)) != 1)
        die("commit", rc);
    shm_counter_add(t->puts, 1);
    t->put++;
    t->n++;
    if (seq_out)
        *seq_out = s.first_seq;
    if (v_out)
        *v_out = v;
}

/* Consumes and acknowledges up to max records of one group. */
static uint64_t drain(shm_consumer *c, uint32_t max)
{
    uint64_t got = 0;
    while (got < max) {
        shm_batch b;
        int rc = shm_consume(c, max - (uint32_t)got, 0, &b);
        if (rc < 0)
            die("consume", rc);
        if (rc == 0)
            break;
        shm_record r;
        while (shm_batch_next(c, &b, &r) == 1)
            got++;
        if ((rc = shm_ack(c, &b)) != 0)
            die("ack", rc);
    }
    return got;
}

static void setup(struct traffic *t, const char *name)
{
    shm_segment_options o = {
        .slot_count = 1024, .slot_size = 128, .policy = SHM_POLICY_DROP_OLDEST};
    int rc = shm_segment_open(name, &o, SHM_OPEN_CREATE, &t->seg);
    if (rc)
        die("segment", rc);
    for (uint32_t i = 0; i < TAGS; i++) {
        uint8_t buf[SHM_CATALOG_ENTRY_MAX];
        shm_tag_meta m = {.id = i,
                          .device_id = 1,
                          .name = tag_names[i],
                          .device = "plc1",
                          .unit = tag_units[i],
                          .data_type = SHM_DT_FLOAT32,
                          .scale = 1.0};
        int len = shm_tag_meta_encode(&m, buf, sizeof buf);
        if (len <= 0)
            die("meta encode", len);
        if ((rc = shm_catalog_put(t->seg, i, buf, (uint32_t)len)) != 0)
            die("catalog", rc);
    }
    if ((rc = shm_counter_open(t->seg, "traffic_puts_total", SHM_COUNTER, &t->puts)) ||
        (rc = shm_counter_open(t->seg, "traffic_level", SHM_GAUGE, &t->level)) ||
        (rc = shm_counter_open(t->seg, "traffic_requests_total{device=\"plc1\"}", SHM_COUNTER,
                               &t->requests)))
        die("counter", rc);
    shm_counter_set(t->level, 42);
    shm_counter_add(t->requests, 7);
    if ((rc = shm_consumer_open(t->seg, "writer", "w1", &t->writer)) ||
        (rc = shm_consumer_open(t->seg, "stats", "s1", &t->stats)) ||
        (rc = shm_producer_open(t->seg, "p1", &t->prod)))
        die("join", rc);
}

static void print_ready(struct traffic *t)
{
    uint64_t seq[5];
    shm_tag_value v[5];
    for (int i = 0; i < 100; i++)
        put_value(t, NULL, NULL);
    if (shm_put(t->prod, raw_record, (uint32_t)strlen(raw_record), &seq[0]) != 0)
        die("put raw", SHM_EINVAL);
    shm_counter_add(t->puts, 1);
    t->put++;
    for (int i = 1; i < 5; i++)
        put_value(t, &seq[i], &v[i]);
    t->writer_consumed += drain(t->writer, 1000);
    t->stats_consumed += drain(t->stats, 50);

    printf("{\"event\":\"ready\",\"records_put\":%" PRIu64 ",\"groups\":[\"writer\",\"stats\"],"
           "\"members\":3,\"pid\":%d,\"writer_consumed\":%" PRIu64 ",\"stats_consumed\":%" PRIu64
           ",\"raw_hex\":\"",
           t->put, (int)getpid(), t->writer_consumed, t->stats_consumed);
    for (size_t i = 0; i < strlen(raw_record); i++)
        printf("%02x", (unsigned char)raw_record[i]);
    printf("\",\"tail\":[{\"seq\":%" PRIu64 ",\"raw\":true}", seq[0]);
    for (int i = 1; i < 5; i++)
        printf(",{\"seq\":%" PRIu64 ",\"tag_id\":%u,\"tag\":\"%s\",\"value\":%.17g,\"raw\":%" PRId64
               ",\"quality\":\"%s\",\"timestamp_ns\":%" PRId64 "}",
               seq[i], v[i].tag_id, tag_names[v[i].tag_id], v[i].value, v[i].raw,
               shm_quality_name(v[i].quality), v[i].timestamp_ns);
    printf("]}\n");
    fflush(stdout);
}

static void print_paused(struct traffic *t)
{
    printf("{\"event\":\"paused\",\"records_put\":%" PRIu64 ",\"writer_consumed\":%" PRIu64
           ",\"stats_consumed\":%" PRIu64 "}\n",
           t->put, t->writer_consumed, t->stats_consumed);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: shmstat_traffic NAME\n");
        return 2;
    }
    setvbuf(stdin, NULL, _IONBF, 0); /* poll() sees every byte not yet read */
    struct traffic t = {0};
    setup(&t, argv[1]);
    print_ready(&t);

    int running = 0;
    char line[64];
    for (;;) {
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int ready = poll(&pfd, 1, running ? 2 : -1);
        if (ready > 0) {
            if (!fgets(line, sizeof line, stdin))
                break; /* end of input: quit */
            if (strncmp(line, "run", 3) == 0) {
                running = 1;
                printf("{\"event\":\"running\"}\n");
                fflush(stdout);
            } else if (strncmp(line, "pause", 5) == 0) {
                running = 0;
                print_paused(&t);
            } else if (strncmp(line, "quit", 4) == 0) {
                break;
            }
            continue;
        }
        if (running) {
            put_value(&t, NULL, NULL);
            t.writer_consumed += drain(t.writer, 100);
            t.stats_consumed += drain(t.stats, 100);
        }
    }
    shm_producer_close(&t.prod);
    shm_consumer_close(&t.writer);
    shm_consumer_close(&t.stats);
    shm_segment_close(&t.seg);
    return 0;
}

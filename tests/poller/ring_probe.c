/*
 * ring_probe.c — test helper: joins a consumer group of a segment and
 * prints every TagValue record as one JSON line, so the Python tests of the
 * poller can compare what the poller published with what a device served.
 *
 *   ring_probe --segment NAME [--slots N] [--group G] [--seconds S] [--max N]
 *              [--ready FILE] [--catalog] [--counters PREFIX]
 *
 * The segment is attached, or created (drop-oldest, N slots of 128 bytes)
 * when missing, and the group joined before anything else happens, so that
 * no record published afterwards is missed; --ready FILE is created once
 * the group exists. Records: {"seq":..,"ts":..,"device":..,"tag":..,
 * "value":..,"value_bits":"hex","raw":..,"quality":..,"exception":..,"flags":..}
 * (value null when NaN; recv_ns: when the probe read it, CLOCK_REALTIME).
 * At the end --catalog prints {"catalog":id,"name":..,...}
 * lines and --counters every counter whose name starts with PREFIX as
 * {"counter":name,"value":v}. A record that fails verification prints
 * {"invalid":seq} and counts; the exit status is 0, or 1 on any invalid record.
 */
#include <shmbus/shm.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            printf("\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            printf("\\u%04x", *s);
        else
            putchar(*s);
    }
    putchar('"');
}

static int print_counter(void *ctx, const char *name, int kind, uint64_t value)
{
    (void)kind;
    const char *prefix = ctx;
    if (strncmp(name, prefix, strlen(prefix)) == 0) {
        printf("{\"counter\":");
        print_json_string(name);
        printf(",\"value\":%" PRIu64 "}\n", value);
    }
    return 0;
}

static void print_catalog(shm_segment *seg)
{
    shm_segment_info info;
    shm_segment_info_get(seg, &info);
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
    for (uint32_t id = 0; id < info.catalog_capacity; id++) {
        int len = shm_catalog_get(seg, id, buf, sizeof buf);
        if (len <= 0)
            continue;
        shm_tag_meta m;
        if (shm_tag_meta_decode(buf, (size_t)len, &m) < 0) {
            printf("{\"catalog\":%u,\"invalid\":true}\n", id);
            continue;
        }
        printf("{\"catalog\":%u,\"device_id\":%u,\"name\":", id, m.device_id);
        print_json_string(m.name);
        printf(",\"device\":");
        print_json_string(m.device);
        printf(",\"unit\":");
        print_json_string(m.unit);
        printf(",\"data_type\":%u,\"priority\":%u,\"scale\":%.17g,\"offset\":%.17g}\n",
               m.data_type, m.priority, m.scale, m.offset);
    }
}

int main(int argc, char **argv)
{
    const char *name = NULL, *group = "probe", *ready = NULL, *counters = NULL;
    double seconds = 5;
    long max = -1;
    uint32_t slots = 65536;
    int catalog = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--catalog") == 0) {
            catalog = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "ring_probe: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--segment") == 0)
            name = v;
        else if (strcmp(a, "--group") == 0)
            group = v;
        else if (strcmp(a, "--seconds") == 0)
            seconds = atof(v);
        else if (strcmp(a, "--max") == 0)
            max = atol(v);
        else if (strcmp(a, "--slots") == 0)
            slots = (uint32_t)atol(v);
        else if (strcmp(a, "--ready") == 0)
            ready = v;
        else if (strcmp(a, "--counters") == 0)
            counters = v;
        else {
            fprintf(stderr, "ring_probe: unknown option %s\n", a);
            return 2;
        }
    }
    if (!name) {
        fprintf(stderr, "usage: ring_probe --segment NAME [--group G] [--seconds S] [--max N]\n");
        return 2;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    shm_segment *seg = NULL;
    int rc = shm_segment_open(name, NULL, SHM_OPEN_ATTACH, &seg);
    if (rc == SHM_ENOENT) {
        shm_segment_options o = {.slot_size = 128, .slot_count = slots,
                                 .policy = SHM_POLICY_DROP_OLDEST};
        rc = shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg);
    }
    if (rc < 0) {
        fprintf(stderr, "ring_probe: %s\n", shm_last_error());
        return 2;
    }
    shm_consumer *c = NULL;
    if ((rc = shm_consumer_open(seg, group, "probe", &c)) < 0) {
        fprintf(stderr, "ring_probe: %s\n", shm_last_error());
        return 2;
    }
    if (ready) {
        int fd = open(ready, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd >= 0)
            close(fd);
    }
    long seen = 0, invalid = 0;
    int64_t end = mono_ms() + (int64_t)(seconds * 1000);
    while (!stop && mono_ms() < end && (max < 0 || seen < max)) {
        shm_batch b;
        int n = shm_consume(c, 256, 50, &b);
        if (n <= 0)
            continue;
        shm_record r;
        while (shm_batch_next(c, &b, &r)) {
            shm_tag_value v;
            if (shm_tag_value_decode(r.data, r.len, &v) < 0) {
                shm_batch_mark_invalid(&b);
                printf("{\"invalid\":%" PRIu64 "}\n", r.seq);
                invalid++;
                continue;
            }
            uint64_t bits;
            memcpy(&bits, &v.value, sizeof bits);
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            printf("{\"seq\":%" PRIu64 ",\"ring_seq\":%" PRIu64 ",\"ts\":%" PRId64
                   ",\"recv_ns\":%" PRId64 ",\"device\":%u,\"tag\":%u,\"value\":",
                   v.sequence, r.seq, v.timestamp_ns,
                   (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, v.device_id, v.tag_id);
            if (isfinite(v.value))
                printf("%.17g", v.value);
            else
                printf("null");
            printf(",\"value_bits\":\"%016" PRIx64 "\",\"raw\":%" PRId64
                   ",\"quality\":%u,\"exception\":%u,\"flags\":%u}\n",
                   bits, v.raw, v.quality, v.exception_code, v.flags);
            seen++;
        }
        shm_ack(c, &b);
        fflush(stdout);
    }
    if (catalog)
        print_catalog(seg);
    if (counters)
        shm_counter_foreach(seg, print_counter, (void *)counters);
    fflush(stdout);
    shm_consumer_close(&c);
    shm_segment_close(&seg);
    return invalid ? 1 : 0;
}

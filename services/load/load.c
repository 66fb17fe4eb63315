/*
 * load.c — shmbus-load: puts synthetic TagValue records into a segment, and
 * optionally drains consumer groups, for demos, tests and soak runs. It uses
 * only the public libshm API, like any other producer would.
 *
 *   shmbus-load [--name NAME] [--seconds S] [--rate N] [--tags T]
 *               [--group G]... [--drain G]... [--policy drop-oldest|backpressure]
 *
 * --group creates a consumer group before producing (so it sees every
 * record); --drain also consumes and acknowledges that group in this process.
 * It prints one JSON line at the end with what it put and drained.
 */
#include <shmbus/shm.h>

#include <math.h>
#include <signal.h>
#include <stdbool.h>
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

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: shmbus-load [--name NAME] [--seconds S] [--rate RECORDS_PER_S] [--tags T]\n"
               "                   [--group G]... [--drain G]... [--policy drop-oldest|backpressure]\n"
               "Puts synthetic TagValue records (sine, ramp, counter, toggle) into segment\n"
               "/shmbus.NAME (created if missing), optionally draining groups. --rate 0 = as fast\n"
               "as possible. Prints one JSON line with what it did.\n");
}

int main(int argc, char **argv)
{
    const char *name = getenv("SHMBUS_SEGMENT") ? getenv("SHMBUS_SEGMENT") : "shmbus";
    double seconds = 5, rate = 10000;
    uint32_t tags = 100, policy = SHM_POLICY_BACKPRESSURE;
    const char *groups[MAX_GROUPS], *drains[MAX_GROUPS];
    int ngroups = 0, ndrains = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (!v) {
            usage(stderr);
            return 2;
        } else if (strcmp(a, "--name") == 0) {
            name = v;
        } else if (strcmp(a, "--seconds") == 0) {
            seconds = atof(v);
        } else if (strcmp(a, "--rate") == 0) {
            rate = atof(v);
        } else if (strcmp(a, "--tags") == 0) {
            tags = (uint32_t)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--group") == 0 || strcmp(a, "--drain") == 0) {
            bool drain = a[2] == 'd';
            int *n = drain ? &ndrains : &ngroups;
            if (*n == MAX_GROUPS) {
                fprintf(stderr, "shmbus-load: at most %d %s options\n", MAX_GROUPS, a);
                return 2;
            }
            (drain ? drains : groups)[(*n)++] = v;
        } else if (strcmp(a, "--policy") == 0) {
            if (strcmp(v, "drop-oldest") == 0)
                policy = SHM_POLICY_DROP_OLDEST;
            else if (strcmp(v, "backpressure") == 0)
                policy = SHM_POLICY_BACKPRESSURE;
            else {
                fprintf(stderr, "shmbus-load: --policy '%s': drop-oldest or backpressure\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "shmbus-load: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (tags == 0 || seconds <= 0 || rate < 0) {
        fprintf(stderr, "shmbus-load: --tags and --seconds must be positive, --rate >= 0\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    shm_segment_options o = {.policy = policy};
    shm_segment *seg;
    int rc = shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg);
    if (rc) {
        fprintf(stderr, "shmbus-load: %s\n", shm_last_error());
        return 2;
    }
    shm_consumer *drain[MAX_GROUPS] = {0};
    shm_producer *p = NULL;
    for (int g = 0; g < ngroups; g++) {
        shm_consumer *c;
        if (shm_consumer_open(seg, groups[g], "load-setup", &c) != 0) {
            fprintf(stderr, "shmbus-load: group '%s': %s\n", groups[g], shm_last_error());
            goto refused;
        }
        shm_consumer_close(&c);
    }
    for (int g = 0; g < ndrains; g++) {
        if (shm_consumer_open(seg, drains[g], "load-drain", &drain[g]) != 0) {
            fprintf(stderr, "shmbus-load: %s\n", shm_last_error());
            goto refused;
        }
    }
    if (shm_producer_open(seg, "shmbus-load", &p) != 0) {
        fprintf(stderr, "shmbus-load: %s\n", shm_last_error());
        goto refused;
    }
    int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9);
    uint64_t put = 0, full = 0, drained = 0;
    uint32_t tag = 0;
    while (!stop) {
        int64_t t = now_ns();
        if (t >= end)
            break;
        uint64_t due = rate > 0 ? (uint64_t)((double)(t - t0) / 1e9 * rate) : put + 256;
        while (put < due && !stop) {
            uint32_t n = due - put > 256 ? 256 : (uint32_t)(due - put);
            shm_slots s;
            int got = shm_claim(p, n, &s);
            if (got < 0) {
                full++;
                break;
            }
            for (int i = 0; i < got; i++, tag = (tag + 1) % tags) {
                double x = (double)(t - t0) / 1e9;
                double value;
                switch (tag % 4) {
                case 0: value = 50 + 10 * sin(x + tag); break;
                case 1: value = fmod(x * 10, 100); break;
                case 2: value = (double)(put + (uint64_t)i); break;
                default: value = ((int64_t)x + tag) % 2; break;
                }
                shm_tag_value v = {.sequence = s.first_seq + (uint64_t)i,
                                   .timestamp_ns = t,
                                   .device_id = tag / 25,
                                   .tag_id = tag,
                                   .value = value,
                                   .raw = (int64_t)value,
                                   .quality = SHM_Q_GOOD};
                int len = shm_tag_value_encode(&v, shm_slots_buf(&s, (uint32_t)i), s.payload);
                if (len > 0)
                    shm_slots_set_len(&s, (uint32_t)i, (uint32_t)len);
            }
            shm_commit(p, &s);
            put += (uint64_t)got;
        }
        for (int g = 0; g < ndrains; g++) {
            shm_batch b;
            while (shm_consume(drain[g], 512, 0, &b) > 0) {
                shm_record r;
                while (shm_batch_next(drain[g], &b, &r) == 1) {
                    shm_tag_value v;
                    if (shm_tag_value_decode(r.data, r.len, &v) != 0)
                        shm_batch_mark_invalid(&b);
                }
                drained += b.delivered;
                shm_ack(drain[g], &b);
            }
        }
        if (rate > 0)
            usleep(1000);
    }
    printf("{\"put\":%llu,\"full\":%llu,\"drained\":%llu,\"seconds\":%.3f}\n",
           (unsigned long long)put, (unsigned long long)full, (unsigned long long)drained,
           (double)(now_ns() - t0) / 1e9);
    shm_producer_close(&p);
    for (int g = 0; g < ndrains; g++)
        shm_consumer_close(&drain[g]);
    shm_segment_close(&seg);
    return 0;

refused:
    for (int g = 0; g < ndrains; g++)
        shm_consumer_close(&drain[g]);
    shm_segment_close(&seg);
    return 2;
}

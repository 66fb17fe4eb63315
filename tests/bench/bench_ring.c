/*
 * bench_ring.c — `shmbus-bench ring`: throughput and latency of the libshm
 * ring between processes, with the baselines a user would otherwise pick
 * measured in the same run: a minimal single-producer single-consumer
 * shared-memory ring (the floor), a Unix-domain socket pair, and nng
 * push/pull over ipc.
 *
 * Every case forks real processes (producers and consumers never share an
 * address space), repeats a few times and reports the median. With --check
 * the benchmark also verifies that every record arrived (used as a smoke
 * test in ctest; no speed is asserted anywhere).
 */
#include "bench.h"

#include <shmbus/shm.h>

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/supplemental/util/platform.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define RECORD_BYTES 48 /* a 64-byte slot minus its 16-byte header */
#define SLOT_BYTES 64
#define RING_SLOTS 65536
#define CLAIM_BATCH 32
#define CONSUME_BATCH 256

struct shared {
    _Atomic int go;
    _Atomic int failed;
    _Atomic uint64_t consumed;  /* by all consumers of the measured group */
    _Atomic int64_t t_start;
    _Atomic int64_t t_end;
    uint64_t lat_count;
    double lat_ns[]; /* latency samples */
};

static struct shared *shared_new(size_t lat_samples)
{
    size_t len = sizeof(struct shared) + lat_samples * sizeof(double);
    struct shared *s = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return s;
}

static void shared_free(struct shared *s, size_t lat_samples)
{
    munmap(s, sizeof(struct shared) + lat_samples * sizeof(double));
}

static void wait_go(struct shared *sh)
{
    while (!atomic_load_explicit(&sh->go, memory_order_acquire))
        ;
}

static int wait_children(pid_t *pids, int n)
{
    int bad = 0;
    for (int i = 0; i < n; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
    }
    return bad;
}

/* ------------------------------------------------------------ shmbus cases */

/* A benchmark keeps its ring near full on purpose: the utilization warnings
 * that would tell an operator so are noise here. */
static void quiet_log(void *ctx, int level, const char *message)
{
    (void)ctx;
    (void)level;
    (void)message;
}

struct ring_case {
    const char *name;
    int producers;
    int groups;
    int consumers_per_group;
    int flatbuffers; /* encode TagValue in place / verify + decode */
    int single_put;  /* shm_put per record instead of batch claims */
    uint32_t slot_size;
};

static int produce(shm_segment *seg, const struct ring_case *rc, uint64_t n, int id)
{
    shm_producer *p;
    char name[32];
    snprintf(name, sizeof name, "bench-p%d", id);
    if (shm_producer_open(seg, name, &p) != 0)
        return 1;
    uint64_t done = 0;
    uint8_t rec[RECORD_BYTES];
    memset(rec, 0x5a, sizeof rec);
    while (done < n) {
        if (rc->single_put) {
            memcpy(rec, &done, sizeof done);
            int r = shm_put(p, rec, RECORD_BYTES, NULL);
            if (r == SHM_EFULL)
                continue;
            if (r != 0)
                return 1;
            done++;
            continue;
        }
        uint32_t want = n - done < CLAIM_BATCH ? (uint32_t)(n - done) : CLAIM_BATCH;
        shm_slots s;
        int got = shm_claim(p, want, &s);
        if (got == SHM_EFULL) {
            for (int i = 0; i < 16; i++)
                __builtin_ia32_pause();
            continue;
        }
        if (got < 0)
            return 1;
        for (int i = 0; i < got; i++) {
            uint8_t *buf = shm_slots_buf(&s, (uint32_t)i);
            if (rc->flatbuffers) {
                shm_tag_value v = {.sequence = s.first_seq + (uint64_t)i,
                                   .timestamp_ns = (int64_t)done,
                                   .device_id = 1,
                                   .tag_id = (uint32_t)(done & 1023),
                                   .value = (double)done * 0.5,
                                   .raw = (int64_t)done,
                                   .quality = SHM_Q_GOOD};
                int len = shm_tag_value_encode(&v, buf, s.payload);
                if (len < 0)
                    return 1;
                shm_slots_set_len(&s, (uint32_t)i, (uint32_t)len);
            } else {
                memcpy(buf, &done, sizeof done);
                memset(buf + 8, 0x5a, RECORD_BYTES - 8);
                shm_slots_set_len(&s, (uint32_t)i, RECORD_BYTES);
            }
            done++;
        }
        shm_commit(p, &s);
    }
    shm_producer_close(&p);
    return 0;
}

static int consume(shm_segment *seg, const struct ring_case *rc, struct shared *sh, const char *group,
                   uint64_t total, int measured, int id)
{
    shm_consumer *c;
    char name[32];
    snprintf(name, sizeof name, "bench-c%d", id);
    if (shm_consumer_open(seg, group, name, &c) != 0)
        return 1;
    uint64_t mine = 0, checksum = 0;
    _Atomic uint64_t local_done = 0;
    _Atomic uint64_t *done = measured ? &sh->consumed : &local_done;
    for (;;) {
        if (atomic_load_explicit(done, memory_order_relaxed) >= total)
            break;
        shm_batch b;
        int n = shm_consume(c, CONSUME_BATCH, 5, &b);
        if (n < 0)
            return 1;
        if (n == 0)
            continue;
        shm_record r;
        uint32_t got = 0;
        while (shm_batch_next(c, &b, &r) == 1) {
            if (rc->flatbuffers) {
                shm_tag_value v;
                if (shm_tag_value_decode(r.data, r.len, &v) != 0) {
                    shm_batch_mark_invalid(&b);
                    atomic_store(&sh->failed, 1);
                    continue;
                }
                checksum += (uint64_t)v.raw;
            } else {
                uint64_t x;
                memcpy(&x, r.data, sizeof x);
                checksum += x;
            }
            got++;
        }
        shm_ack(c, &b);
        mine += got;
        uint64_t now = atomic_fetch_add_explicit(done, got, memory_order_relaxed) + got;
        if (now >= total && measured)
            atomic_store(&sh->t_end, bench_now_ns());
    }
    (void)checksum;
    (void)mine;
    shm_consumer_close(&c);
    return 0;
}

/* Runs one case once; returns records/s (records put per second, each
 * delivered to every group), or a negative value on failure. */
static double run_ring_case(const struct ring_case *rc, uint64_t n, int check)
{
    char segname[64];
    snprintf(segname, sizeof segname, "bench-%d-%s", (int)getpid(), rc->name);
    shm_segment_options o = {.slot_size = rc->slot_size,
                             .slot_count = RING_SLOTS,
                             .policy = SHM_POLICY_BACKPRESSURE};
    shm_segment *seg;
    shm_segment_unlink(segname);
    if (shm_segment_open(segname, &o, SHM_OPEN_CREATE, &seg) != 0) {
        fprintf(stderr, "bench ring: %s\n", shm_last_error());
        return -1;
    }
    shm_segment_set_log(seg, quiet_log, NULL);
    /* Groups exist before anyone produces, so each sees every record. */
    for (int g = 0; g < rc->groups; g++) {
        char gname[16];
        snprintf(gname, sizeof gname, "g%d", g);
        shm_consumer *c;
        shm_consumer_open(seg, gname, "setup", &c);
        shm_consumer_close(&c);
    }
    struct shared *sh = shared_new(0);
    pid_t pids[16];
    int np = 0;
    /* Group 0's consumers are measured (their shared count); the other
     * groups count privately, each until it has every record. */
    for (int g = 0; g < rc->groups; g++) {
        for (int k = 0; k < rc->consumers_per_group; k++) {
            pid_t pid = fork();
            if (pid == 0) {
                char gname[16];
                snprintf(gname, sizeof gname, "g%d", g);
                wait_go(sh);
                int r = consume(seg, rc, sh, gname, n, g == 0, g * 8 + k);
                _exit(r);
            }
            pids[np++] = pid;
        }
    }
    for (int k = 0; k < rc->producers; k++) {
        uint64_t share = n / (uint64_t)rc->producers + (k == 0 ? n % (uint64_t)rc->producers : 0);
        pid_t pid = fork();
        if (pid == 0) {
            wait_go(sh);
            _exit(produce(seg, rc, share, k));
        }
        pids[np++] = pid;
    }
    usleep(20000); /* let every child reach the start line */
    atomic_store(&sh->t_start, bench_now_ns());
    atomic_store_explicit(&sh->go, 1, memory_order_release);
    int bad = wait_children(pids, np);
    double secs = (double)(atomic_load(&sh->t_end) - atomic_load(&sh->t_start)) / 1e9;
    double rate = secs > 0 ? (double)n / secs : 0;
    if (check) {
        shm_group_stats gs[SHM_MAX_GROUPS];
        int ng = shm_group_stats_get(seg, gs, SHM_MAX_GROUPS);
        for (int g = 0; g < ng; g++) {
            if (gs[g].consumed != n || gs[g].lost != 0) {
                fprintf(stderr, "bench ring %s: group %s consumed %llu lost %llu of %llu\n",
                        rc->name, gs[g].name, (unsigned long long)gs[g].consumed,
                        (unsigned long long)gs[g].lost, (unsigned long long)n);
                bad = 1;
            }
        }
        if (atomic_load(&sh->failed))
            bad = 1;
    }
    shared_free(sh, 0);
    shm_segment_close(&seg);
    shm_segment_unlink(segname);
    return bad ? -1 : rate;
}

/* --------------------------------------------------------------- latency */

/* One-way latency: the producer stamps each record with the time just before
 * it puts it, and the busy consumer takes the difference on arrival. The
 * producer sleeps between records (as a poller does between polls) rather
 * than spinning, so that the two processes do not occupy both cores and
 * every other process on the machine does not have to preempt one of them:
 * that would measure the scheduler. Its timer slack is 1 ns, so it sleeps
 * tens of microseconds, not the default 50 us slack.
 *
 * The same measurement runs on the minimal SPSC ring (the baseline). */
#define LAT_GAP_NS 20000

static void pace_sleep(void)
{
    struct timespec ts = {0, LAT_GAP_NS};
    nanosleep(&ts, NULL);
}

/* latency_spin: the producer busy-waits the gap instead (both sides spin),
 * as a producer that polls a device in a tight loop would. */
static int lat_producer_spins;

static void pace(void)
{
    if (!lat_producer_spins) {
        pace_sleep();
        return;
    }
    int64_t until = bench_now_ns() + LAT_GAP_NS;
    while (bench_now_ns() < until)
        __builtin_ia32_pause();
}

static void lat_record_sample(struct shared *sh, uint64_t *got, const void *data)
{
    int64_t now = bench_now_ns(), sent;
    memcpy(&sent, data, sizeof sent);
    sh->lat_ns[(*got)++] = (double)(now - sent);
}

static double lat_finish(struct shared *sh, uint64_t samples, pid_t cons, pid_t prod, double *p50,
                         double *p99, int check)
{
    pid_t pids[2] = {cons, prod};
    int bad = wait_children(pids, 2);
    uint64_t n = sh->lat_count;
    if (n == 0)
        bad = 1;
    else {
        bench_median(sh->lat_ns, n); /* sorts */
        *p50 = bench_percentile(sh->lat_ns, n, 50);
        *p99 = bench_percentile(sh->lat_ns, n, 99);
    }
    if (check && n != samples)
        bad = 1;
    shared_free(sh, samples);
    return bad ? -1 : (double)n;
}

static double run_latency(uint64_t samples, double *p50, double *p99, int check)
{
    char segname[64];
    snprintf(segname, sizeof segname, "bench-%d-lat", (int)getpid());
    shm_segment_options o = {.slot_size = SLOT_BYTES, .slot_count = 4096,
                             .policy = SHM_POLICY_BACKPRESSURE};
    shm_segment *seg;
    shm_segment_unlink(segname);
    if (shm_segment_open(segname, &o, SHM_OPEN_CREATE, &seg) != 0)
        return -1;
    shm_segment_set_log(seg, quiet_log, NULL);
    shm_consumer *setup;
    shm_consumer_open(seg, "lat", "setup", &setup);
    shm_consumer_close(&setup);
    struct shared *sh = shared_new(samples);
    pid_t cons = fork();
    if (cons == 0) {
        shm_consumer *c;
        if (shm_consumer_open(seg, "lat", "lat-c", &c) != 0)
            _exit(1);
        atomic_store(&sh->go, 1);
        uint64_t got = 0;
        while (got < samples) {
            shm_batch b;
            /* Busy consumer: poll without sleeping. */
            if (shm_consume(c, 64, 0, &b) <= 0)
                continue;
            shm_record r;
            while (shm_batch_next(c, &b, &r) == 1)
                if (got < samples)
                    lat_record_sample(sh, &got, r.data);
            shm_ack(c, &b);
        }
        sh->lat_count = got;
        shm_consumer_close(&c);
        _exit(0);
    }
    pid_t prod = fork();
    if (prod == 0) {
        prctl(PR_SET_TIMERSLACK, 1UL);
        wait_go(sh);
        shm_producer *p;
        if (shm_producer_open(seg, "lat-p", &p) != 0)
            _exit(1);
        uint8_t rec[RECORD_BYTES] = {0};
        for (uint64_t i = 0; i < samples;) {
            pace();
            int64_t t = bench_now_ns();
            memcpy(rec, &t, sizeof t);
            if (shm_put(p, rec, RECORD_BYTES, NULL) == 0)
                i++;
        }
        shm_producer_close(&p);
        _exit(0);
    }
    double rc = lat_finish(sh, samples, cons, prod, p50, p99, check);
    shm_segment_close(&seg);
    shm_segment_unlink(segname);
    return rc;
}

/* The same on a minimal SPSC ring: a stamp per slot, no consumer position
 * (the ring is far larger than the records in flight). */
static double run_latency_spsc(uint64_t samples, double *p50, double *p99, int check)
{
    struct lat_ring {
        struct {
            _Atomic uint64_t stamp;
            uint8_t data[RECORD_BYTES + 8];
        } slot[4096];
    } *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        return -1;
    struct shared *sh = shared_new(samples);
    pid_t cons = fork();
    if (cons == 0) {
        atomic_store(&sh->go, 1);
        uint64_t got = 0;
        for (uint64_t i = 0; i < samples; i++) {
            while (atomic_load_explicit(&r->slot[i % 4096].stamp, memory_order_acquire) != i + 1)
                ;
            lat_record_sample(sh, &got, r->slot[i % 4096].data);
        }
        sh->lat_count = got;
        _exit(0);
    }
    pid_t prod = fork();
    if (prod == 0) {
        prctl(PR_SET_TIMERSLACK, 1UL);
        wait_go(sh);
        for (uint64_t i = 0; i < samples; i++) {
            pace();
            int64_t t = bench_now_ns();
            memcpy(r->slot[i % 4096].data, &t, sizeof t);
            memset(r->slot[i % 4096].data + 8, 0, RECORD_BYTES - 8);
            atomic_store_explicit(&r->slot[i % 4096].stamp, i + 1, memory_order_release);
        }
        _exit(0);
    }
    double rc = lat_finish(sh, samples, cons, prod, p50, p99, check);
    munmap(r, sizeof *r);
    return rc;
}

/* ------------------------------------------------------------- baselines */

/* The floor: a minimal SPSC ring in shared memory, 64-byte slots with a
 * sequence stamp each; the consumer publishes its position every 32
 * records and the producer re-reads it only when the ring looks full. */
struct spsc {
    _Atomic uint64_t consumer_pos;
    uint8_t pad[56];
    struct {
        _Atomic uint64_t stamp;
        uint8_t data[RECORD_BYTES + 8];
    } slot[RING_SLOTS];
};

static double run_baseline_spsc(uint64_t n, int check)
{
    struct spsc *r = mmap(NULL, sizeof *r, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    struct shared *sh = shared_new(0);
    pid_t cons = fork();
    if (cons == 0) {
        wait_go(sh);
        uint64_t sum = 0;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t want = i + 1;
            while (atomic_load_explicit(&r->slot[i % RING_SLOTS].stamp, memory_order_acquire) != want)
                ;
            uint64_t x;
            memcpy(&x, r->slot[i % RING_SLOTS].data, sizeof x);
            sum += x;
            if ((i & 31) == 31)
                atomic_store_explicit(&r->consumer_pos, i + 1, memory_order_release);
        }
        atomic_store(&sh->t_end, bench_now_ns());
        _exit(check && sum != n * (n - 1) / 2);
    }
    pid_t prod = fork();
    if (prod == 0) {
        wait_go(sh);
        uint64_t cached = 0;
        for (uint64_t i = 0; i < n; i++) {
            while (i - cached >= RING_SLOTS)
                cached = atomic_load_explicit(&r->consumer_pos, memory_order_acquire);
            memcpy(r->slot[i % RING_SLOTS].data, &i, sizeof i);
            memset(r->slot[i % RING_SLOTS].data + 8, 0x5a, RECORD_BYTES - 8);
            atomic_store_explicit(&r->slot[i % RING_SLOTS].stamp, i + 1, memory_order_release);
        }
        _exit(0);
    }
    usleep(20000);
    atomic_store(&sh->t_start, bench_now_ns());
    atomic_store_explicit(&sh->go, 1, memory_order_release);
    pid_t pids[2] = {cons, prod};
    int bad = wait_children(pids, 2);
    double secs = (double)(atomic_load(&sh->t_end) - atomic_load(&sh->t_start)) / 1e9;
    munmap(r, sizeof *r);
    shared_free(sh, 0);
    return bad ? -1 : (double)n / secs;
}

/* A Unix-domain stream socket pair, 64 records per write. */
static double run_baseline_unix(uint64_t n, int check)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    struct shared *sh = shared_new(0);
    pid_t cons = fork();
    if (cons == 0) {
        close(sv[0]);
        wait_go(sh);
        static uint8_t buf[1 << 16];
        uint64_t bytes = 0, want = n * RECORD_BYTES;
        while (bytes < want) {
            ssize_t k = read(sv[1], buf, sizeof buf);
            if (k <= 0)
                _exit(1);
            bytes += (uint64_t)k;
        }
        atomic_store(&sh->t_end, bench_now_ns());
        _exit(check && bytes != want);
    }
    pid_t prod = fork();
    if (prod == 0) {
        close(sv[1]);
        wait_go(sh);
        uint8_t buf[64 * RECORD_BYTES];
        memset(buf, 0x5a, sizeof buf);
        for (uint64_t i = 0; i < n; i += 64) {
            size_t recs = n - i < 64 ? (size_t)(n - i) : 64;
            size_t len = recs * RECORD_BYTES, off = 0;
            while (off < len) {
                ssize_t k = write(sv[0], buf + off, len - off);
                if (k <= 0)
                    _exit(1);
                off += (size_t)k;
            }
        }
        _exit(0);
    }
    close(sv[0]);
    close(sv[1]);
    usleep(20000);
    atomic_store(&sh->t_start, bench_now_ns());
    atomic_store_explicit(&sh->go, 1, memory_order_release);
    pid_t pids[2] = {cons, prod};
    int bad = wait_children(pids, 2);
    double secs = (double)(atomic_load(&sh->t_end) - atomic_load(&sh->t_start)) / 1e9;
    shared_free(sh, 0);
    return bad ? -1 : (double)n / secs;
}

/* nng push/pull over ipc, one message per record. */
static double run_baseline_nng(uint64_t n, int check)
{
    char url[128];
    snprintf(url, sizeof url, "ipc:///tmp/shmbus-bench-%d.ipc", (int)getpid());
    struct shared *sh = shared_new(0);
    pid_t cons = fork();
    if (cons == 0) {
        nng_socket s;
        if (nng_pull0_open(&s) != 0 || nng_listen(s, url, NULL, 0) != 0)
            _exit(1);
        atomic_store(&sh->go, 1);
        for (uint64_t i = 0; i < n; i++) {
            void *buf;
            size_t sz;
            if (nng_recv(s, &buf, &sz, NNG_FLAG_ALLOC) != 0)
                _exit(1);
            if (i == 0)
                atomic_store(&sh->t_start, bench_now_ns());
            nng_free(buf, sz);
        }
        atomic_store(&sh->t_end, bench_now_ns());
        nng_close(s);
        _exit(0);
    }
    pid_t prod = fork();
    if (prod == 0) {
        while (!atomic_load(&sh->go))
            usleep(1000);
        nng_socket s;
        if (nng_push0_open(&s) != 0 || nng_dial(s, url, NULL, 0) != 0)
            _exit(1);
        uint8_t rec[RECORD_BYTES] = {0};
        for (uint64_t i = 0; i < n; i++)
            if (nng_send(s, rec, sizeof rec, 0) != 0)
                _exit(1);
        nng_msleep(100); /* let the last messages leave before closing */
        nng_close(s);
        _exit(0);
    }
    pid_t pids[2] = {cons, prod};
    int bad = wait_children(pids, 2);
    double secs = (double)(atomic_load(&sh->t_end) - atomic_load(&sh->t_start)) / 1e9;
    shared_free(sh, 0);
    char path[128];
    snprintf(path, sizeof path, "/tmp/shmbus-bench-%d.ipc", (int)getpid());
    unlink(path);
    (void)check;
    return bad || secs <= 0 ? -1 : (double)(n - 1) / secs;
}

/* ------------------------------------------------------------- cpu gaps */

/* The floor under every latency figure: one process spins on the clock and
 * adds up the time it did not run (gaps between two readings longer than
 * 10 us: interrupts, preemption, the hypervisor taking the vCPU). A record
 * that arrives while the consumer is away waits that long, so when more than
 * 1 % of the time is spent in such gaps, no ring can have a p99 under 10 us
 * on that machine. */
static void measure_cpu_gaps(double seconds, double *away_share, double *gaps_per_s, double *max_us)
{
    int64_t start = bench_now_ns(), prev = start, end = start + (int64_t)(seconds * 1e9);
    int64_t away = 0, count = 0, longest = 0;
    for (;;) {
        int64_t t = bench_now_ns(), d = t - prev;
        if (d > 10000) {
            away += d;
            count++;
        }
        if (d > longest)
            longest = d;
        prev = t;
        if (t >= end)
            break;
    }
    double total = (double)(prev - start);
    *away_share = (double)away / total;
    *gaps_per_s = (double)count / (total / 1e9);
    *max_us = (double)longest / 1e3;
}

/* ----------------------------------------------------------------- main */

/* --case A,B,... runs those cases, plus 1p1c and baseline_spsc (the
 * reference every ratio needs and the floor the target is set against). */
static const char *only_case;

static int wanted(const char *name)
{
    if (!only_case || strcmp(name, "1p1c") == 0 || strcmp(name, "baseline_spsc") == 0)
        return 1;
    size_t len = strlen(name);
    for (const char *p = only_case; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == len && strncmp(p, name, n) == 0)
            return 1;
        p += n + (end ? 1 : 0);
    }
    return 0;
}

/* Median of the per-run ratios a[r] / b[r]: on a machine whose speed drifts
 * between runs, the runs are interleaved and each ratio compares two
 * measurements taken seconds apart. */
static double paired_ratio(const double *a, const double *b, int runs)
{
    double q[16];
    for (int r = 0; r < runs; r++)
        q[r] = b[r] > 0 ? a[r] / b[r] : 0;
    return bench_median(q, (size_t)runs);
}

static int any_failed(const double *v, int runs)
{
    for (int r = 0; r < runs; r++)
        if (v[r] < 0)
            return 1;
    return 0;
}

static void print_rate(const char *name, uint32_t record_bytes, uint32_t slot_bytes,
                       const double *v, int runs, double ratio, const char *vs)
{
    double sorted[16];
    memcpy(sorted, v, sizeof(double) * (size_t)runs);
    bench_json j;
    bench_json_begin(&j, "ring", name);
    bench_json_int(&j, "record_bytes", record_bytes);
    if (slot_bytes)
        bench_json_int(&j, "slot_bytes", slot_bytes);
    bench_json_num(&j, "records_per_s", bench_median(sorted, (size_t)runs));
    bench_json_int(&j, "runs", runs);
    if (vs) {
        bench_json_num(&j, "ratio", ratio);
        bench_json_str(&j, "ratio_of", vs);
    }
    bench_json_end(&j);
}

enum { NCASES = 5, NBASE = 2 };

int bench_ring(int argc, char **argv)
{
    int quick = bench_has_flag(argc, argv, "--quick");
    int check = bench_has_flag(argc, argv, "--check");
    int runs = quick ? 3 : 7;
    uint64_t n = quick ? 2000000 : 20000000;
    signal(SIGPIPE, SIG_IGN);
    only_case = bench_flag_value(argc, argv, "--case");

    static const struct ring_case cases[NCASES] = {
        {"1p1c", 1, 1, 1, 0, 0, SLOT_BYTES},
        {"1p1c_put", 1, 1, 1, 0, 1, SLOT_BYTES},
        {"2p2g", 2, 2, 1, 0, 0, SLOT_BYTES},
        {"1p1g2c", 1, 1, 2, 0, 0, SLOT_BYTES},
        {"1p1c_flatbuffers", 1, 1, 1, 1, 0, 128},
    };
    static const char *const base_names[NBASE] = {"baseline_spsc", "baseline_unix"};
    double (*const base_run[NBASE])(uint64_t, int) = {run_baseline_spsc, run_baseline_unix};
    double rate[NCASES][16], base[NBASE][16];

    /* Round-robin: run r of every case, then run r of every baseline. */
    for (int r = 0; r < runs; r++) {
        for (int c = 0; c < NCASES; c++) {
            if (!wanted(cases[c].name))
                continue;
            rate[c][r] = run_ring_case(&cases[c], cases[c].single_put ? n / 2 : n, check);
            if (rate[c][r] < 0) {
                fprintf(stderr, "bench ring: case %s failed\n", cases[c].name);
                return 1;
            }
        }
        for (int b = 0; b < NBASE; b++) {
            if (!wanted(base_names[b]))
                continue;
            base[b][r] = base_run[b](n, check);
            if (base[b][r] < 0) {
                fprintf(stderr, "bench ring: %s failed\n", base_names[b]);
                return 1;
            }
        }
    }
    for (int c = 0; c < NCASES; c++)
        if (wanted(cases[c].name))
            print_rate(cases[c].name, cases[c].flatbuffers ? 0 : RECORD_BYTES, cases[c].slot_size,
                       rate[c], runs, c ? paired_ratio(rate[c], rate[0], runs) : 0,
                       c ? "1p1c" : NULL);

    for (int spin = 0; spin < 2; spin++) {
        const char *name = spin ? "latency_spin" : "latency";
        if (!wanted(name))
            continue;
        lat_producer_spins = spin;
        uint64_t samples = quick ? 10000 : 100000;
        double p50[16], p99[16], b50[16], b99[16];
        for (int r = 0; r < runs; r++) {
            if (run_latency(samples, &p50[r], &p99[r], check) < 0 ||
                run_latency_spsc(samples, &b50[r], &b99[r], check) < 0) {
                fprintf(stderr, "bench ring: %s failed\n", name);
                return 1;
            }
        }
        bench_json j;
        bench_json_begin(&j, "ring", name);
        bench_json_int(&j, "record_bytes", RECORD_BYTES);
        bench_json_int(&j, "samples", (int64_t)samples);
        bench_json_int(&j, "gap_ns", LAT_GAP_NS);
        bench_json_str(&j, "consumer", "busy");
        bench_json_str(&j, "producer", spin ? "spins" : "sleeps");
        bench_json_num(&j, "p50_ns", bench_median(p50, (size_t)runs));
        bench_json_num(&j, "p99_ns", bench_median(p99, (size_t)runs));
        bench_json_num(&j, "baseline_spsc_p50_ns", bench_median(b50, (size_t)runs));
        bench_json_num(&j, "baseline_spsc_p99_ns", bench_median(b99, (size_t)runs));
        bench_json_num(&j, "ratio_p50", paired_ratio(p50, b50, runs));
        bench_json_num(&j, "ratio_p99", paired_ratio(p99, b99, runs));
        bench_json_int(&j, "runs", runs);
        bench_json_end(&j);
    }

    /* Baseline lines carry ratio = shmbus 1p1c / baseline. */
    for (int b = 0; b < NBASE; b++)
        if (wanted(base_names[b]))
            print_rate(base_names[b], RECORD_BYTES, 0, base[b], runs,
                       paired_ratio(rate[0], base[b], runs), "1p1c");
    if (wanted("baseline_nng")) {
        /* nng moves about 20 k messages/s: a few runs of its own. */
        int nng_runs = quick ? 1 : 3;
        uint64_t nng_n = quick ? 5000 : 20000;
        double v[16], ref[16];
        memcpy(ref, rate[0], sizeof(double) * (size_t)runs);
        for (int r = 0; r < nng_runs; r++)
            v[r] = run_baseline_nng(nng_n, check);
        if (any_failed(v, nng_runs)) {
            fprintf(stderr, "bench ring: baseline_nng failed\n");
            return 1;
        }
        double ref_median = bench_median(ref, (size_t)runs);
        double sorted[16];
        memcpy(sorted, v, sizeof(double) * (size_t)nng_runs);
        print_rate("baseline_nng", RECORD_BYTES, 0, v, nng_runs,
                   ref_median / bench_median(sorted, (size_t)nng_runs), "1p1c");
    }
    if (wanted("cpu_gaps")) {
        double share, per_s, max_us;
        measure_cpu_gaps(quick ? 1.0 : 3.0, &share, &per_s, &max_us);
        bench_json j;
        bench_json_begin(&j, "ring", "cpu_gaps");
        bench_json_num(&j, "gap_over_ns", 10000);
        bench_json_num(&j, "time_away_share", share);
        bench_json_num(&j, "gaps_per_s", per_s);
        bench_json_num(&j, "max_gap_us", max_us);
        bench_json_end(&j);
    }
    return 0;
}

/*
 * bench_e2e.c — `shmbus-bench e2e [--quick] [--check] [--levels MS,MS,...]`:
 * the whole process group end to end, as real processes from build/bin.
 *
 * shmbus-sim serves DEVICES devices of 250 holding registers each (188 tags:
 * 125 uint16, 62 float32, one more uint16; 3,760 tags in all) on loopback;
 * shmbus-controller owns a backpressure segment; shmbus-writer (one) and
 * shmbus-stats consume every record; shmbus-poller reads the devices. The
 * offered rate is set through the controller's control plane
 * ({"cmd":"set_interval"} for every device's poll group): 3,760 tags every
 * interval. Levels go up (intervals down) until one fails; each level
 * settles, then is measured over a window. A level passes when, over its
 * window, nothing was lost anywhere: no poller request failed (timeouts,
 * exceptions, bad frames), no record was dropped by the poller (a full ring
 * for 20 ms), no group lost a record, every sampled record became durable
 * within 5 s, and both consumer groups keep up: their lag grew by less than
 * a quarter of the ring over the window (a disk stall the ring absorbs is
 * allowed; consumers slower for good are not).
 *
 * Poll-to-durable latency is sampled from outside the services, every
 * millisecond: the newest record on the ring is peeked (its timestamp is the
 * poll instant, taken just before the request was sent); it is durable once
 * the writer group's tail (every sequence below it acknowledged, and the
 * writer acknowledges only after fdatasync) has passed its sequence number.
 * The figure includes the Modbus round trip, decoding, the ring, the
 * writer's batching, encoding, write and fdatasync; the sampler's period and
 * scheduling delay add at most about a millisecond (it never reads early).
 * Samples still waiting at the end of a window are followed for up to 5 s.
 *
 * Memory: each process's own resident pages (RssAnon + RssFile), the
 * highest of samples taken every 50 ms of each window; the ring (the
 * segment, shared by all) is reported apart.
 * At the end the poller stops, both groups drain, writer and stats stop, and
 * shmbus-query counts the points stored: they must equal the records put
 * (nothing lost between ring and disk) and stats must have counted each once.
 *
 * Baseline, measured in the same run before the group starts: a bare
 * libmodbus loop reading 125 registers per request on one connection from
 * the same simulator (what bench_poller calls baseline_libmodbus_loop),
 * converted to the tags those registers carry (188 per 250).
 */
#include "bench.h"

#include <shmbus/shm.h>

#include <errno.h>
#include <limits.h>
#include <modbus/modbus.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEVICES 20
#define TAGS_PER_DEVICE 188 /* in 250 registers */
#define REGS_PER_DEVICE 250
#define TAGS (DEVICES * TAGS_PER_DEVICE)
#define SLOT_COUNT 524288 /* x 128 B = 64 MiB of ring: about a second at 500,000/s */
#define MAX_LEVELS 16

enum proc_id { P_SIM, P_CONTROLLER, P_WRITER, P_STATS, P_POLLER, P_COUNT };
static const char *const proc_name[P_COUNT] = {"sim", "controller", "writer", "stats", "poller"};
static const char *const proc_exe[P_COUNT] = {"shmbus-sim", "shmbus-controller", "shmbus-writer",
                                              "shmbus-stats", "shmbus-poller"};

typedef struct e2e {
    char dir[256], cfg[320], data[320], control_url[400];
    char segment[64];
    char exe[P_COUNT][PATH_MAX];
    pid_t pid[P_COUNT];
    int sim_port;
    double settle_s, window_s;
    int check;
    shm_segment *seg; /* read-only view */
} e2e;

/* Counters, ring and groups at one instant. */
typedef struct snapshot {
    int64_t t_ns;
    uint64_t requests, records, dropped, errors, overruns, control_msgs;
    uint64_t stats_records;
    shm_ring_stats ring;
    shm_group_stats writer, stats;
    bench_usage use[P_COUNT];
} snapshot;

/* ------------------------------------------------------------ set-up */

static int write_config(const e2e *x, int http_port, int interval_ms)
{
    FILE *f = fopen(x->cfg, "w");
    if (!f)
        return -1;
    fprintf(f,
            "segment: {name: %s, slot_count: %d, policy: backpressure, catalog_capacity: 8192}\n"
            "paths: {run_dir: %s, data_dir: %s}\n"
            "controller: {http: '127.0.0.1:%d', required_roles: [poller, writer, stats]}\n"
            "stats: {window: 100, history_s: 60, history_capacity: 64}\n"
            "devices:\n",
            x->segment, SLOT_COUNT, x->dir, x->data, http_port);
    for (int d = 0; d < DEVICES; d++) {
        fprintf(f, "  - name: d%d\n    host: 127.0.0.1\n    port: %d\n    address_base: 0\n"
                   "    response_timeout_ms: 2000\n"
                   "    poll_groups: [{name: g, interval_ms: %d}]\n    tags:\n",
                d, x->sim_port + d, interval_ms);
        int a = 0;
        for (int i = 0; i < 125; i++, a++)
            fprintf(f, "      - {name: d%d.u%d, register: holding, address: %d, "
                       "sim: {kind: counter, max: 65535, step: %d}}\n", d, a, a, i + 1);
        for (int i = 0; i < 62; i++, a += 2)
            fprintf(f, "      - {name: d%d.f%d, register: holding, address: %d, type: float32, "
                       "order: CDAB, sim: {kind: sine, period_s: %d}}\n", d, a, a, 10 + i);
        fprintf(f, "      - {name: d%d.u%d, register: holding, address: %d}\n", d, a, a);
    }
    return fclose(f);
}

static int start(e2e *x, int id, char *const extra[])
{
    char log[400];
    snprintf(log, sizeof log, "%s/%s.log", x->dir, proc_name[id]);
    char *argv[8] = {x->exe[id], "--config", x->cfg};
    int n = 3;
    for (int i = 0; extra && extra[i] && n < 7; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    x->pid[id] = bench_spawn(argv, log);
    return x->pid[id] > 0 ? 0 : -1;
}

static int alive(const e2e *x, int id)
{
    return x->pid[id] > 0 && waitpid(x->pid[id], NULL, WNOHANG) == 0;
}

static void stop_all(e2e *x)
{
    for (int id = P_COUNT - 1; id >= 0; id--) {
        bench_stop(x->pid[id]);
        x->pid[id] = -1;
    }
}

static int group_get(const e2e *x, const char *name, shm_group_stats *out)
{
    shm_group_stats g[8];
    int n = shm_group_stats_get(x->seg, g, 8);
    for (int i = 0; i < n && i < 8; i++)
        if (strcmp(g[i].name, name) == 0) {
            *out = g[i];
            return 0;
        }
    memset(out, 0, sizeof *out);
    return -1;
}

/* Waits until cond(x) holds, the processes started so far staying alive. */
static int wait_for(e2e *x, int (*cond)(e2e *), double seconds, const char *what)
{
    int64_t end = bench_now_ns() + (int64_t)(seconds * 1e9);
    while (bench_now_ns() < end) {
        if (cond(x))
            return 0;
        for (int id = 0; id < P_COUNT; id++)
            if (x->pid[id] > 0 && !alive(x, id)) {
                fprintf(stderr, "bench e2e: %s exited while waiting for %s (log %s/%s.log)\n",
                        proc_name[id], what, x->dir, proc_name[id]);
                x->pid[id] = -1;
                return -1;
            }
        bench_sleep_s(0.02);
    }
    fprintf(stderr, "bench e2e: timed out waiting for %s (logs in %s)\n", what, x->dir);
    return -1;
}

static int segment_ready(e2e *x)
{
    if (!x->seg && shm_segment_open(x->segment, NULL, SHM_OPEN_ATTACH | SHM_OPEN_READONLY,
                                    &x->seg) < 0)
        return 0;
    shm_group_stats g;
    return group_get(x, "writer", &g) == 0 && group_get(x, "stats", &g) == 0 &&
           access(x->control_url + strlen("ipc://"), F_OK) == 0;
}

static int consumers_joined(e2e *x)
{
    shm_group_stats w, s;
    return group_get(x, "writer", &w) == 0 && group_get(x, "stats", &s) == 0 && w.members >= 1 &&
           s.members >= 1;
}

static int ring_flowing(e2e *x)
{
    shm_ring_stats r;
    return shm_ring_stats_get(x->seg, &r) == 0 && r.records_put > 0;
}

/* ------------------------------------------------------------ readings */

static int add_counter(void *ctx, const char *name, int kind, uint64_t value)
{
    (void)kind;
    snapshot *s = ctx;
    static const struct {
        const char *prefix;
        size_t off;
    } map[] = {
        {"shmbus_poller_requests_total{", offsetof(snapshot, requests)},
        {"shmbus_poller_records_total{", offsetof(snapshot, records)},
        {"shmbus_poller_records_dropped_total{", offsetof(snapshot, dropped)},
        {"shmbus_poller_errors_total{", offsetof(snapshot, errors)},
        {"shmbus_poller_overruns_total{", offsetof(snapshot, overruns)},
        {"shmbus_poller_control_messages_total", offsetof(snapshot, control_msgs)},
        {"stats_records_total{", offsetof(snapshot, stats_records)},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strncmp(name, map[i].prefix, strlen(map[i].prefix)) == 0)
            *(uint64_t *)((char *)s + map[i].off) += value;
    return 0;
}

static void take(const e2e *x, snapshot *s)
{
    memset(s, 0, sizeof *s);
    s->t_ns = bench_now_ns();
    shm_counter_foreach(x->seg, add_counter, s);
    shm_ring_stats_get(x->seg, &s->ring);
    group_get(x, "writer", &s->writer);
    group_get(x, "stats", &s->stats);
    for (int id = 0; id < P_COUNT; id++)
        if (x->pid[id] > 0)
            bench_proc_usage(x->pid[id], &s->use[id]);
}

static double load_average(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &l) != 1)
        l = -1;
    if (f)
        fclose(f);
    return l;
}

/* ------------------------------------------------------------ latency sampler */

typedef struct pending {
    uint64_t seq;
    int64_t poll_ns;
} pending;

typedef struct sampler {
    const e2e *x;
    atomic_int phase; /* 1 sampling, 2 only resolving what is pending, 0 stop */
    pending *fifo;
    size_t head, tail, cap;
    double *lat_ms;
    size_t n, lat_cap;
    uint64_t unresolved;
    pthread_t thread;
} sampler;

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *sampler_main(void *arg)
{
    sampler *s = arg;
    unsigned char buf[4096];
    uint64_t last_seq = 0;
    int phase;
    while ((phase = atomic_load(&s->phase)) != 0) {
        shm_group_stats w;
        if (group_get(s->x, "writer", &w) == 0) {
            int64_t now = real_ns(); /* after reading the tail: never early */
            while (s->head != s->tail && s->fifo[s->head % s->cap].seq < w.tail_seq) {
                pending *p = &s->fifo[s->head++ % s->cap];
                if (s->n < s->lat_cap)
                    s->lat_ms[s->n++] = (double)(now - p->poll_ns) / 1e6;
            }
        }
        if (phase == 2 && s->head == s->tail)
            break;
        shm_record r;
        shm_tag_value v;
        if (phase == 1 && s->tail - s->head < s->cap &&
            shm_ring_peek(s->x->seg, 1, &r, buf, sizeof buf) == 1 && r.seq != last_seq &&
            shm_tag_value_decode(r.data, r.len, &v) == 0) {
            last_seq = r.seq;
            s->fifo[s->tail++ % s->cap] = (pending){r.seq, v.timestamp_ns};
        }
        bench_sleep_s(0.001);
    }
    return NULL;
}

static int sampler_start(sampler *s, const e2e *x, double window_s)
{
    memset(s, 0, sizeof *s);
    s->x = x;
    s->cap = 1u << 16;
    s->lat_cap = (size_t)(window_s * 2000) + 1024;
    s->fifo = calloc(s->cap, sizeof *s->fifo);
    s->lat_ms = calloc(s->lat_cap, sizeof *s->lat_ms);
    atomic_store(&s->phase, 1);
    if (!s->fifo || !s->lat_ms || pthread_create(&s->thread, NULL, sampler_main, s) != 0) {
        free(s->fifo);
        free(s->lat_ms);
        return -1;
    }
    return 0;
}

/* Stops sampling, follows what is pending for up to 5 s (what is still
 * pending then counts as unresolved), sorts the latencies. */
static void sampler_finish(sampler *s)
{
    atomic_store(&s->phase, 2);
    int64_t end = bench_now_ns() + 5 * (int64_t)1000000000;
    while (pthread_tryjoin_np(s->thread, NULL) != 0) {
        if (bench_now_ns() > end) {
            atomic_store(&s->phase, 0);
            pthread_join(s->thread, NULL);
            break;
        }
        bench_sleep_s(0.01);
    }
    s->unresolved = s->tail - s->head;
    bench_median(s->lat_ms, s->n); /* sorts them, for the percentiles */
    free(s->fifo);
    s->fifo = NULL;
}

/* ------------------------------------------------------------ control plane */

static int set_interval_all(const e2e *x, int interval_ms)
{
    nng_socket sock;
    int rc = nng_req0_open(&sock);
    if (rc != 0)
        return -1;
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 3000);
    nng_socket_set_ms(sock, NNG_OPT_SENDTIMEO, 3000);
    if (nng_dial(sock, x->control_url, NULL, 0) != 0) {
        nng_close(sock);
        return -1;
    }
    int failed = 0;
    for (int d = 0; d < DEVICES && !failed; d++) {
        char msg[160];
        int len = snprintf(msg, sizeof msg,
                           "{\"cmd\":\"set_interval\",\"device\":\"d%d\",\"group\":\"g\","
                           "\"interval_ms\":%d}", d, interval_ms);
        char *answer = NULL;
        size_t alen = 0;
        failed = nng_send(sock, msg, (size_t)len, 0) != 0 ||
                 nng_recv(sock, &answer, &alen, NNG_FLAG_ALLOC) != 0;
        if (!failed) {
            failed = memmem(answer, alen, "\"ok\":true", 9) == NULL;
            if (failed)
                fprintf(stderr, "bench e2e: set_interval answered %.*s\n", (int)alen, answer);
            nng_free(answer, alen);
        }
    }
    nng_close(sock);
    return failed ? -1 : 0;
}

/* The controller publishes set_interval on PUB; a message the poller's SUB
 * missed (still connecting) is sent again until the poller counted all. */
static int steer(const e2e *x, int interval_ms)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        snapshot a, b;
        take(x, &a);
        if (set_interval_all(x, interval_ms) < 0)
            return -1;
        for (int i = 0; i < 50; i++) {
            bench_sleep_s(0.02);
            take(x, &b);
            if (b.control_msgs - a.control_msgs >= DEVICES)
                return 0;
        }
    }
    fprintf(stderr, "bench e2e: the poller did not receive set_interval %d ms\n", interval_ms);
    return -1;
}

/* ------------------------------------------------------------ cases */

static double baseline(const e2e *x, double window_s)
{
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", x->sim_port);
    double regs_per_s = 0;
    if (!ctx || modbus_set_slave(ctx, 1) < 0 || modbus_connect(ctx) < 0)
        goto out;
    uint16_t regs[125];
    uint64_t ok = 0, failures = 0;
    int64_t t0 = bench_now_ns(), warm = t0 + (int64_t)(0.3e9);
    while (bench_now_ns() < warm)
        modbus_read_registers(ctx, 0, 125, regs);
    t0 = bench_now_ns();
    int64_t end = t0 + (int64_t)(window_s * 1e9);
    while (bench_now_ns() < end) {
        if (modbus_read_registers(ctx, (int)(ok % 2) * 125, 125, regs) == 125)
            ok++;
        else
            failures++;
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    regs_per_s = (double)ok * 125 / secs;
    bench_json j;
    bench_json_begin(&j, "e2e", "baseline_libmodbus_loop");
    bench_json_num(&j, "registers_per_s", regs_per_s);
    bench_json_num(&j, "tags_per_s", regs_per_s * TAGS_PER_DEVICE / REGS_PER_DEVICE);
    bench_json_num(&j, "requests_per_s", (double)ok / secs);
    bench_json_int(&j, "registers_per_request", 125);
    bench_json_int(&j, "failures", (int64_t)failures);
    bench_json_num(&j, "ratio", 1.0);
    bench_json_end(&j);
out:
    if (ctx) {
        modbus_close(ctx);
        modbus_free(ctx);
    }
    return regs_per_s * TAGS_PER_DEVICE / REGS_PER_DEVICE;
}

typedef struct level_result {
    int interval_ms, passed;
    double offered, tags_per_s, p50_ms, p99_ms, max_ms;
    size_t samples;
    uint64_t unresolved;
    double rss_mb[P_COUNT], anon_mb[P_COUNT], cpu[P_COUNT];
    const char *why; /* the first reason a level failed */
} level_result;

/* Peak resident memory of each process (own pages, and of them the
 * anonymous ones), the largest of the services (the simulator aside), and
 * the cores each used. */
static void usage_fields(bench_json *j, const level_result *r)
{
    char key[48];
    double worst = 0;
    for (int id = 0; id < P_COUNT; id++) {
        snprintf(key, sizeof key, "rss_mb_%s", proc_name[id]);
        bench_json_num(j, key, r->rss_mb[id]);
        snprintf(key, sizeof key, "anon_mb_%s", proc_name[id]);
        bench_json_num(j, key, r->anon_mb[id]);
        snprintf(key, sizeof key, "cpu_%s", proc_name[id]);
        bench_json_num(j, key, r->cpu[id]);
        if (id != P_SIM && r->rss_mb[id] > worst)
            worst = r->rss_mb[id];
    }
    bench_json_num(j, "rss_mb_max_service", worst);
}

static int run_level(e2e *x, int interval_ms, double baseline_tags, level_result *res)
{
    memset(res, 0, sizeof *res);
    res->interval_ms = interval_ms;
    res->offered = (double)TAGS * 1000.0 / interval_ms;
    if (steer(x, interval_ms) < 0)
        return -1;
    bench_sleep_s(x->settle_s);
    snapshot a, b;
    sampler s;
    if (sampler_start(&s, x, x->window_s) < 0)
        return -1;
    take(x, &a);
    uint32_t max_level = a.ring.pressure_level;
    double peak[P_COUNT] = {0}, peak_anon[P_COUNT] = {0};
    int64_t end = a.t_ns + (int64_t)(x->window_s * 1e9);
    while (bench_now_ns() < end) {
        bench_sleep_s(0.05);
        shm_ring_stats r;
        if (shm_ring_stats_get(x->seg, &r) == 0 && r.pressure_level > max_level)
            max_level = r.pressure_level;
        for (int id = 0; id < P_COUNT; id++) {
            bench_usage u;
            bench_proc_usage(x->pid[id], &u);
            if (u.own_mb > peak[id])
                peak[id] = u.own_mb;
            if (u.anon_mb > peak_anon[id])
                peak_anon[id] = u.anon_mb;
        }
    }
    take(x, &b);
    for (int id = 0; id < P_COUNT; id++) {
        if (b.use[id].own_mb > peak[id])
            peak[id] = b.use[id].own_mb;
        if (b.use[id].anon_mb > peak_anon[id])
            peak_anon[id] = b.use[id].anon_mb;
    }
    sampler_finish(&s);
    double secs = (double)(b.t_ns - a.t_ns) / 1e9;
    uint64_t put = b.ring.records_put - a.ring.records_put;
    uint64_t errors = b.errors - a.errors, dropped = b.dropped - a.dropped;
    uint64_t lost = (b.writer.lost - a.writer.lost) + (b.stats.lost - a.stats.lost);
    uint64_t w_cons = b.writer.consumed - a.writer.consumed;
    uint64_t s_cons = b.stats.consumed - a.stats.consumed;
    /* A disk stall may leave the consumers behind for a moment (the ring is
     * there to absorb it); consumers that are slower for good let the lag
     * grow by a quarter of the ring within one window. */
    int keeps_up = b.writer.lag < a.writer.lag + SLOT_COUNT / 4 &&
                   b.stats.lag < a.stats.lag + SLOT_COUNT / 4;
    res->tags_per_s = (double)put / secs;
    res->samples = s.n;
    res->unresolved = s.unresolved;
    res->p50_ms = bench_percentile(s.lat_ms, s.n, 50);
    res->p99_ms = bench_percentile(s.lat_ms, s.n, 99);
    res->max_ms = s.n ? s.lat_ms[s.n - 1] : 0;
    free(s.lat_ms);
    res->why = put == 0                ? "nothing put"
               : errors                ? "poller errors"
               : dropped               ? "poller dropped records (ring full)"
               : lost                  ? "a group lost records"
               : !keeps_up             ? "consumers fell behind"
               : s.unresolved          ? "records not durable within 5 s"
               : !alive(x, P_POLLER) || !alive(x, P_WRITER) || !alive(x, P_STATS)
                   ? "a service exited"
                   : NULL;
    res->passed = res->why == NULL;
    for (int id = 0; id < P_COUNT; id++) {
        res->rss_mb[id] = peak[id];
        res->anon_mb[id] = peak_anon[id];
        res->cpu[id] = (b.use[id].cpu_s - a.use[id].cpu_s) / secs;
    }
    bench_json j;
    bench_json_begin(&j, "e2e", "level");
    bench_json_int(&j, "tags", TAGS);
    bench_json_int(&j, "devices", DEVICES);
    bench_json_int(&j, "interval_ms", interval_ms);
    bench_json_num(&j, "offered_tags_per_s", res->offered);
    bench_json_num(&j, "tags_per_s", res->tags_per_s);
    bench_json_num(&j, "requests_per_s", (double)(b.requests - a.requests) / secs);
    bench_json_num(&j, "writer_per_s", (double)w_cons / secs);
    bench_json_num(&j, "stats_per_s", (double)s_cons / secs);
    bench_json_num(&j, "p50_ms", res->p50_ms);
    bench_json_num(&j, "p99_ms", res->p99_ms);
    bench_json_num(&j, "max_ms", res->max_ms);
    bench_json_int(&j, "latency_samples", (int64_t)s.n);
    bench_json_int(&j, "errors", (int64_t)errors);
    bench_json_int(&j, "dropped", (int64_t)dropped);
    bench_json_int(&j, "lost", (int64_t)lost);
    bench_json_int(&j, "full_rejections", (int64_t)(b.ring.full_rejections - a.ring.full_rejections));
    bench_json_int(&j, "overruns", (int64_t)(b.overruns - a.overruns));
    int64_t wg = (int64_t)b.writer.lag - (int64_t)a.writer.lag;
    int64_t sg = (int64_t)b.stats.lag - (int64_t)a.stats.lag;
    bench_json_int(&j, "lag_end", (int64_t)(b.writer.lag > b.stats.lag ? b.writer.lag : b.stats.lag));
    bench_json_int(&j, "lag_growth", wg > sg ? wg : sg);
    bench_json_int(&j, "max_pressure_level", max_level);
    usage_fields(&j, res);
    bench_json_num(&j, "ring_mb", (double)SLOT_COUNT * 128 / 1048576.0);
    bench_json_num(&j, "baseline_tags_per_s", baseline_tags);
    bench_json_num(&j, "ratio", baseline_tags > 0 ? res->tags_per_s / baseline_tags : 0);
    bench_json_str(&j, "result", res->passed ? "pass" : res->why);
    bench_json_end(&j);
    return 0;
}

/* Stops the poller, lets both groups drain, stops writer and stats, and
 * counts what shmbus-query finds: every record put, stored once. */
static int final_check(e2e *x, uint64_t *put, uint64_t *stored, uint64_t *stats_records,
                       uint64_t *redelivered)
{
    bench_stop(x->pid[P_POLLER]);
    x->pid[P_POLLER] = -1;
    snapshot s;
    int64_t end = bench_now_ns() + 30 * (int64_t)1000000000;
    do {
        bench_sleep_s(0.05);
        take(x, &s);
    } while ((s.writer.lag > 0 || s.stats.lag > 0) && bench_now_ns() < end);
    *put = s.ring.records_put;
    *stats_records = s.stats_records;
    *redelivered = s.writer.redelivered;
    bench_stop(x->pid[P_WRITER]);
    bench_stop(x->pid[P_STATS]);
    x->pid[P_WRITER] = x->pid[P_STATS] = -1;
    char out[400], query[PATH_MAX];
    snprintf(out, sizeof out, "%s/query-info.json", x->dir);
    bench_bin_path(query, sizeof query, "shmbus-query");
    char *argv[] = {query, "--data", x->data, "--info", "--format", "json", NULL};
    pid_t q = bench_spawn(argv, out);
    int status = 0;
    if (q < 0 || waitpid(q, &status, 0) != q || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return -1;
    FILE *f = fopen(out, "r");
    char text[65536];
    size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = '\0';
    const char *total = strstr(text, "\"total\":");
    const char *points = total ? strstr(total, "\"points\":") : NULL;
    if (!points)
        return -1;
    *stored = strtoull(points + 9, NULL, 10);
    return 0;
}

static int parse_levels(const char *spec, int *levels)
{
    int n = 0;
    while (spec && *spec && n < MAX_LEVELS) {
        char *end;
        long v = strtol(spec, &end, 10);
        if (end == spec || v < 1 || v > 100000)
            return -1;
        levels[n++] = (int)v;
        spec = *end == ',' ? end + 1 : end;
    }
    return n;
}

static int run(e2e *x, const int *levels, int n_levels)
{
    x->sim_port = bench_free_port_range(DEVICES + 1); /* the last one: HTTP */
    if (x->sim_port < 0 || write_config(x, x->sim_port + DEVICES, levels[0]) < 0)
        return -1;
    double load0 = load_average();
    char *sim_extra[] = {"--threads", "2", NULL};
    int rc = -1;
    if (start(x, P_SIM, sim_extra) < 0 || bench_wait_port(x->sim_port + DEVICES - 1, 20) < 0)
        goto out;
    double base = baseline(x, x->window_s);
    char *writer_extra[] = {"--name", "writer-1", NULL};
    if (start(x, P_CONTROLLER, NULL) < 0 || wait_for(x, segment_ready, 20, "the controller") < 0)
        goto out;
    if (start(x, P_WRITER, writer_extra) < 0 || start(x, P_STATS, NULL) < 0 ||
        wait_for(x, consumers_joined, 20, "writer and stats") < 0)
        goto out;
    if (start(x, P_POLLER, NULL) < 0 || wait_for(x, ring_flowing, 30, "records") < 0)
        goto out;
    bench_sleep_s(0.5); /* the poller's SUB connects to the controller's PUB */

    level_result best = {0}, r;
    int any = 0;
    for (int i = 0; i < n_levels; i++) {
        if (run_level(x, levels[i], base, &r) < 0)
            goto out;
        if (!r.passed)
            break;
        if (!any || r.tags_per_s > best.tags_per_s)
            best = r;
        any = 1;
    }
    uint64_t put = 0, stored = 0, stats_records = 0, redelivered = 0;
    int checked = final_check(x, &put, &stored, &stats_records, &redelivered);
    int stored_all = checked == 0 && stored == put && stats_records == put;

    bench_json j;
    bench_json_begin(&j, "e2e", "sustained");
    bench_json_int(&j, "tags", TAGS);
    bench_json_int(&j, "devices", DEVICES);
    bench_json_int(&j, "interval_ms", any ? best.interval_ms : 0);
    bench_json_num(&j, "offered_tags_per_s", best.offered);
    bench_json_num(&j, "tags_per_s", best.tags_per_s);
    bench_json_num(&j, "p50_ms", best.p50_ms);
    bench_json_num(&j, "p99_ms", best.p99_ms);
    bench_json_num(&j, "max_ms", best.max_ms);
    bench_json_int(&j, "latency_samples", (int64_t)best.samples);
    usage_fields(&j, &best);
    bench_json_num(&j, "ring_mb", (double)SLOT_COUNT * 128 / 1048576.0);
    bench_json_int(&j, "records_put", (int64_t)put);
    bench_json_int(&j, "points_stored", (int64_t)stored);
    bench_json_int(&j, "stats_records", (int64_t)stats_records);
    bench_json_int(&j, "redelivered", (int64_t)redelivered);
    bench_json_int(&j, "stored_all", stored_all);
    bench_json_num(&j, "load_avg_start", load0);
    bench_json_num(&j, "load_avg_end", load_average());
    bench_json_num(&j, "baseline_tags_per_s", base);
    bench_json_num(&j, "ratio", base > 0 ? best.tags_per_s / base : 0);
    bench_json_end(&j);
    rc = put > 0 && (!x->check || stored_all) ? 0 : -1;
    if (!stored_all)
        fprintf(stderr, "bench e2e: records put %llu, points stored %llu, stats counted %llu\n",
                (unsigned long long)put, (unsigned long long)stored,
                (unsigned long long)stats_records);
out:
    stop_all(x);
    return rc;
}

int bench_e2e(int argc, char **argv)
{
    static const int full[] = {20, 10, 7, 6, 5, 4, 3, 2, 1};
    static const int quick[] = {10, 7};
    int levels[MAX_LEVELS], n_levels;
    int is_quick = bench_has_flag(argc, argv, "--quick");
    const char *spec = bench_flag_value(argc, argv, "--levels");
    if (spec) {
        n_levels = parse_levels(spec, levels);
        if (n_levels <= 0) {
            fprintf(stderr, "bench e2e: --levels wants poll intervals in ms, e.g. 10,5,2\n");
            return 2;
        }
    } else {
        const int *l = is_quick ? quick : full;
        n_levels = is_quick ? 2 : (int)(sizeof full / sizeof full[0]);
        memcpy(levels, l, (size_t)n_levels * sizeof *levels);
    }
    e2e x = {.settle_s = is_quick ? 0.5 : 1.0,
             .window_s = is_quick ? 1.5 : 4.0,
             .check = bench_has_flag(argc, argv, "--check")};
    for (int id = 0; id < P_COUNT; id++) {
        bench_bin_path(x.exe[id], sizeof x.exe[id], proc_exe[id]);
        x.pid[id] = -1;
    }
    /* On the disk (not a tmpfs), so that fdatasync costs what it costs. */
    snprintf(x.dir, sizeof x.dir, "%s/shmbus-bench-e2e-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/var/tmp");
    if (!mkdtemp(x.dir)) {
        fprintf(stderr, "bench e2e: mkdtemp %s: %s\n", x.dir, strerror(errno));
        return 1;
    }
    snprintf(x.cfg, sizeof x.cfg, "%s/e2e.yaml", x.dir);
    snprintf(x.data, sizeof x.data, "%s/data", x.dir);
    snprintf(x.segment, sizeof x.segment, "bench-e2e-%d", (int)getpid());
    snprintf(x.control_url, sizeof x.control_url, "ipc://%s/%s.control", x.dir, x.segment);
    setenv("SHMBUS_LOG_LEVEL", getenv("SHMBUS_LOG_LEVEL") ? getenv("SHMBUS_LOG_LEVEL") : "warning", 1);
    int rc = run(&x, levels, n_levels);
    shm_segment_close(&x.seg);
    shm_segment_unlink(x.segment);
    if (rc == 0 && !getenv("SHMBUS_BENCH_KEEP")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", x.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench e2e: could not remove %s\n", x.dir);
    } else if (rc != 0) {
        fprintf(stderr, "bench e2e: failed; logs kept in %s\n", x.dir);
    }
    return rc == 0 ? 0 : 1;
}

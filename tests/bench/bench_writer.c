/*
 * bench_writer.c — `shmbus-bench writer`: durable ingest, compression and
 * query speed of the chunk store, each with a baseline measured in the same
 * run.
 *
 * Data is made the way a simulator polls a plant: requests of 10 tags share
 * one timestamp per poll (poll time + up to 2 ms of jitter); tag kinds are
 * temperatures in 0.01 steps, float32 pressures, noisy flows, energy
 * counters, pump booleans and setpoints.
 *
 * Cases:
 *   durable_1w, durable_2w  1 or 2 real shmbus-writer processes drain a ring
 *                           filled while they were stopped, lap after lap;
 *                           points_per_s counts from SIGCONT until the group's
 *                           tail shows every record acknowledged (so
 *                           fdatasync'ed), over the laps after the first (which
 *                           maps the ring into the writers); the writers seal
 *                           8 MiB chunks meanwhile; bytes_per_point is what the
 *                           sealed chunks hold after shutdown.
 *   baseline_pwrite         raw 24-byte records, write + fdatasync per batch of
 *                           500, appended to one file.
 *   compression_<kind>      a day of one kind of tag through the real seal path;
 *                           bytes_per_point against raw 24-byte records.
 *   query                   one tag over a day (hourly sealed chunks of all tags):
 *                           open the store, read and decode the tag, repeated in
 *                           one process (median; the first, cold run is reported
 *                           too); baseline: a scan of the same day as raw 24-byte
 *                           records.
 * --quick keeps the whole run short; --case durable|baseline|compression|query
 * runs one group of cases.
 */
#include "bench.h"

#include "chunk.h"

#include <shmbus/shm.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_TAGS 10
#define DAY_START 1767225600000000000ll /* 2026-01-01T00:00:00Z */

/* ------------------------------------------------------------ the data */

enum kind { K_TEMP, K_PRESSURE, K_FLOW, K_COUNTER, K_PUMP, K_SETPOINT, K_KINDS };
static const char *const kind_names[K_KINDS] = {"temperature_0.01", "pressure_float32",
                                                "flow_noisy_float32", "counter",
                                                "pump_boolean",     "setpoint"};

static enum kind kind_of(uint32_t tag)
{
    static const enum kind mix[REQUEST_TAGS] = {K_TEMP,    K_TEMP,    K_TEMP, K_TEMP,
                                                K_PRESSURE, K_PRESSURE, K_FLOW, K_COUNTER,
                                                K_PUMP,    K_SETPOINT};
    return mix[tag % REQUEST_TAGS];
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double unit(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

struct gen {
    uint32_t tags;
    int force_kind; /* -1: the mix */
    double *level;
    uint64_t poll;
    uint64_t seq;
};

static void gen_init(struct gen *g, uint32_t tags, int force_kind)
{
    memset(g, 0, sizeof *g);
    g->tags = tags;
    g->force_kind = force_kind;
    g->level = calloc(tags, sizeof *g->level);
    g->seq = 1;
    for (uint32_t t = 0; t < tags; t++)
        g->level[t] = 20 + (double)(t % 50);
}

/* The value of tag t at this poll, and its raw register form. */
static void gen_value(struct gen *g, uint32_t t, double *value, int64_t *raw)
{
    enum kind k = g->force_kind >= 0 ? (enum kind)g->force_kind : kind_of(t);
    double *l = &g->level[t];
    switch (k) {
    case K_TEMP: /* slow analog: a random walk in 0.01 steps */
        if (rnd() % 4 == 0)
            *l += ((int)(rnd() % 3) - 1) * 0.01;
        *value = round(*l * 100) / 100;
        *raw = (int64_t)llround(*value * 100);
        break;
    case K_PRESSURE: {
        float f = (float)(3.0 + 0.2 * sin((double)g->poll / 600.0 + t) + (unit() - 0.5) * 0.002);
        uint32_t u;
        memcpy(&u, &f, 4);
        *value = f;
        *raw = u;
        break;
    }
    case K_FLOW: { /* a float32 register with measurement noise */
        float f = (float)(120 + 5 * sin((double)g->poll / 60.0) + (unit() - 0.5) * 3);
        uint32_t u;
        memcpy(&u, &f, 4);
        *value = f;
        *raw = u;
        break;
    }
    case K_COUNTER:
        *l += 3 + (double)(rnd() % 3);
        *value = floor(*l);
        *raw = (int64_t)*value;
        break;
    case K_PUMP:
        if (rnd() % 900 == 0)
            *l = *l > 0.5 ? 0 : 1;
        *value = *l > 0.5 ? 1 : 0;
        *raw = (int64_t)*value;
        break;
    default: /* setpoint */
        if (rnd() % 3600 == 0)
            *l = round(20 + unit() * 40);
        *value = round(*l);
        *raw = (int64_t)(*value * 10);
        break;
    }
}

/* One poll of every tag; calls emit for each record (in request order). */
static void gen_poll(struct gen *g, int64_t poll_ns, void (*emit)(void *, const shm_tag_value *),
                     void *ctx)
{
    for (uint32_t r = 0; r < g->tags; r += REQUEST_TAGS) {
        int64_t ts = poll_ns + (int64_t)(rnd() % 2000000);
        for (uint32_t t = r; t < r + REQUEST_TAGS && t < g->tags; t++) {
            shm_tag_value v = {.sequence = g->seq++, .timestamp_ns = ts, .tag_id = t,
                               .device_id = t / 100, .quality = SHM_Q_GOOD};
            gen_value(g, t, &v.value, &v.raw);
            emit(ctx, &v);
        }
    }
    g->poll++;
}

/* ----------------------------------------------------------- helpers */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_tmpdir(char *buf, size_t len, const char *what)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, len, "%s/shmbus-bench-%s-XXXXXX", base && *base ? base : "/tmp", what);
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        exit(1);
    }
}

static uint64_t dir_bytes(const char *dir, int kind_filter)
{
    chunk_store *s;
    if (chunk_store_open(dir, 0, NULL, NULL, &s) != 0)
        return 0;
    uint64_t b = 0;
    for (size_t i = 0; i < s->nfiles; i++)
        if (!kind_filter || s->files[i].kind == kind_filter)
            b += s->files[i].scan.file_size;
    chunk_store_close(&s);
    return b;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------ durable ingest */

struct filler {
    shm_producer *p;
    shm_slots c;
    uint32_t used;
    uint64_t put;
};

static void fill_emit(void *ctx, const shm_tag_value *v)
{
    struct filler *f = ctx;
    if (f->used == f->c.count) {
        if (f->c.count)
            shm_commit(f->p, &f->c);
        int n;
        while ((n = shm_claim(f->p, 256, &f->c)) <= 0)
            sleep_ms(1);
        f->used = 0;
    }
    uint8_t *buf = shm_slots_buf(&f->c, f->used);
    int len = shm_tag_value_encode(v, buf, f->c.payload);
    shm_slots_set_len(&f->c, f->used, (uint32_t)len);
    f->used++;
    f->put++;
}

struct find_counter {
    const char *name;
    uint64_t v;
};

static int visit_counter(void *ctx, const char *n, int kind, uint64_t v)
{
    (void)kind;
    struct find_counter *f = ctx;
    if (strcmp(n, f->name) == 0) {
        f->v = v;
        return 1;
    }
    return 0;
}

static uint64_t group_tail(shm_segment *seg)
{
    shm_group_stats g[SHM_MAX_GROUPS];
    int n = shm_group_stats_get(seg, g, SHM_MAX_GROUPS);
    for (int i = 0; i < n && i < SHM_MAX_GROUPS; i++)
        if (strcmp(g[i].name, "writer") == 0)
            return g[i].tail_seq;
    return 0;
}

/* CPU seconds a live process has used (utime + stime, /proc/<pid>/stat). */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static pid_t spawn_writer(const char *bin, const char *seg, const char *data, const char *name)
{
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        if (!getenv("SHMBUS_BENCH_VERBOSE"))
            dup2(null, STDERR_FILENO);
        /* chunks of 8 MiB: several seals happen while records flow, as in a
         * long run (the default 64 MiB would seal once, at shutdown) */
        execl(bin, bin, "--segment", seg, "--data", data, "--name", name, "--chunk-bytes", "8MiB",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

struct durable_result {
    double points_per_s, final_seal_s, bytes_per_point, wal_bytes_per_point, cpu_ns_per_point;
    double ingest_cpu_ns_per_point; /* until every record was acknowledged */
    uint64_t syncs;
    double sync_ms_mean;
    uint64_t points;
    int ok;
};

/* Laps: the writers are stopped (SIGSTOP), the ring is filled with `lap`
 * records, the writers continue (SIGCONT) and drain it. The first lap
 * maps the ring's pages into the writers and warms their buffers; the rate
 * is over the other laps, from SIGCONT to the moment the group's tail shows
 * every record acknowledged. */
static struct durable_result durable(const char *writer_bin, int writers, uint64_t lap,
                                     int laps, uint32_t tags)
{
    struct durable_result res = {0};
    char segname[32], data[512], chunks[600];
    snprintf(segname, sizeof segname, "bench-w%d-%d", writers, (int)getpid());
    make_tmpdir(data, sizeof data, "writer");
    snprintf(chunks, sizeof chunks, "%s/chunks", data);
    uint32_t slots = 1;
    while (slots < lap + 1024)
        slots <<= 1;
    shm_segment_options o = {.slot_size = 128, .slot_count = slots,
                             .policy = SHM_POLICY_BACKPRESSURE};
    shm_segment *seg = NULL;
    shm_segment_unlink(segname);
    if (shm_segment_open(segname, &o, SHM_OPEN_CREATE, &seg) != 0) {
        fprintf(stderr, "bench writer: segment: %s\n", shm_last_error());
        return res;
    }
    shm_consumer *setup = NULL;
    shm_consumer_open(seg, "writer", "bench-setup", &setup);
    shm_consumer_close(&setup);
    struct filler f = {0};
    shm_producer_open(seg, "bench-filler", &f.p);
    struct gen g;
    gen_init(&g, tags, -1);
    pid_t pids[2];
    for (int i = 0; i < writers; i++) {
        char name[16];
        snprintf(name, sizeof name, "bench%d", i + 1);
        pids[i] = spawn_writer(writer_bin, segname, data, name);
    }
    res.ok = 1;
    double warm_s = 0, cpu_warm0 = 0;
    uint64_t warm_points = 0;
    for (int l = 0; l < laps && res.ok; l++) {
        for (int i = 0; i < writers; i++)
            kill(pids[i], SIGSTOP);
        uint64_t before = f.put;
        while (f.put - before + tags <= lap)
            gen_poll(&g, DAY_START + (int64_t)g.poll * 1000000000, fill_emit, &f);
        if (f.c.count)
            shm_commit(f.p, &f.c);
        f.c.count = f.used = 0;
        shm_ring_stats rs;
        shm_ring_stats_get(seg, &rs);
        uint64_t head = rs.head_seq;
        if (l == 1)
            for (int i = 0; i < writers; i++)
                cpu_warm0 += proc_cpu_s(pids[i]);
        int64_t t0 = bench_now_ns();
        for (int i = 0; i < writers; i++)
            kill(pids[i], SIGCONT);
        int64_t deadline = t0 + 300ll * 1000000000;
        while (group_tail(seg) < head && bench_now_ns() < deadline)
            sleep_ms(1);
        int64_t t1 = bench_now_ns();
        res.ok = group_tail(seg) >= head;
        if (l >= 1) {
            warm_s += (double)(t1 - t0) / 1e9;
            warm_points += f.put - before;
        }
    }
    shm_producer_close(&f.p);
    double cpu_warm1 = 0;
    for (int i = 0; i < writers; i++)
        cpu_warm1 += proc_cpu_s(pids[i]);
    res.ingest_cpu_ns_per_point = (cpu_warm1 - cpu_warm0) * 1e9 / (double)warm_points;
    int64_t t_stop = bench_now_ns();
    for (int i = 0; i < writers; i++)
        kill(pids[i], SIGTERM);
    double cpu_s = 0;
    for (int i = 0; i < writers; i++) {
        int st;
        struct rusage ru;
        wait4(pids[i], &st, 0, &ru);
        cpu_s += (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
        res.ok = res.ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    double seal_s = (double)(bench_now_ns() - t_stop) / 1e9;
    res.points = f.put;
    res.points_per_s = (double)warm_points / warm_s;
    res.final_seal_s = seal_s;
    res.cpu_ns_per_point = cpu_s * 1e9 / (double)f.put; /* writers, every lap and the last seal */
    res.bytes_per_point = (double)dir_bytes(chunks, CHUNK_NAME_SEALED) / (double)f.put;
    uint64_t wal = 0, syncs = 0, sync_ns = 0;
    for (int i = 0; i < writers; i++) {
        char cname[96];
        snprintf(cname, sizeof cname, "writer_bytes_total{writer=\"bench%d\"}", i + 1);
        struct find_counter fc = {cname, 0};
        shm_counter_foreach(seg, visit_counter, &fc);
        wal += fc.v;
        snprintf(cname, sizeof cname, "writer_syncs_total{writer=\"bench%d\"}", i + 1);
        fc = (struct find_counter){cname, 0};
        shm_counter_foreach(seg, visit_counter, &fc);
        syncs += fc.v;
        snprintf(cname, sizeof cname, "writer_sync_ns_total{writer=\"bench%d\"}", i + 1);
        fc = (struct find_counter){cname, 0};
        shm_counter_foreach(seg, visit_counter, &fc);
        sync_ns += fc.v;
    }
    res.syncs = syncs;
    res.sync_ms_mean = syncs ? (double)sync_ns / (double)syncs / 1e6 : 0;
    res.wal_bytes_per_point = (double)wal / (double)f.put;
    shm_segment_close(&seg);
    shm_segment_unlink(segname);
    rm_tree(data);
    free(g.level);
    return res;
}

/* Raw 24-byte records, write + fdatasync per batch, appended. */
static double baseline_pwrite(double seconds, uint32_t batch)
{
    char dir[512], path[600];
    make_tmpdir(dir, sizeof dir, "pwrite");
    snprintf(path, sizeof path, "%s/raw.bin", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t len = (size_t)batch * 24;
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)rnd();
    uint64_t records = 0;
    off_t off = 0;
    int64_t t0 = bench_now_ns(), end = t0 + (int64_t)(seconds * 1e9);
    while (bench_now_ns() < end) {
        if (pwrite(fd, buf, len, off) != (ssize_t)len || fdatasync(fd) != 0)
            break;
        off += (off_t)len;
        records += batch;
    }
    double rate = (double)records / ((double)(bench_now_ns() - t0) / 1e9);
    close(fd);
    free(buf);
    rm_tree(dir);
    return rate;
}

/* ------------------------------------------- a day of sealed chunks */

struct day_writer {
    int dirfd, fd;
    chunk_builder *b;
    uint8_t *buf;
    size_t cap;
    uint64_t off;
    uint32_t no;
    FILE *raw; /* the same points as raw 24-byte records, for the baseline */
    uint64_t points;
};

static void day_emit(void *ctx, const shm_tag_value *v)
{
    struct day_writer *w = ctx;
    chunk_builder_add(w->b, v);
    w->points++;
    if (w->raw) {
        uint8_t rec[24];
        memcpy(rec, &v->timestamp_ns, 8);
        memcpy(rec + 8, &v->tag_id, 4);
        uint32_t q = v->quality;
        memcpy(rec + 12, &q, 4);
        memcpy(rec + 16, &v->value, 8);
        fwrite(rec, 1, sizeof rec, w->raw);
    }
}

static void day_flush_block(struct day_writer *w)
{
    size_t need = chunk_builder_bound(w->b);
    if (need > w->cap) {
        w->buf = realloc(w->buf, need);
        w->cap = need;
    }
    size_t len;
    if (chunk_builder_encode(w->b, w->buf, w->cap, &len, NULL) != 0 ||
        pwrite(w->fd, w->buf, len, (off_t)w->off) != (ssize_t)len) {
        fprintf(stderr, "bench writer: writing a block: %s\n", chunk_last_error());
        exit(1);
    }
    w->off += len;
}

/* Writes `hours` hourly chunks of `tags` tags at 1 Hz (blocks of 60 s, as
 * a writer's group commits would), each sealed like the writer seals. */
static uint64_t write_day(const char *dir, uint32_t tags, int force_kind, int hours,
                          const char *raw_path)
{
    struct day_writer w = {0};
    w.dirfd = open(dir, O_RDONLY | O_DIRECTORY);
    chunk_builder_new(&w.b);
    if (raw_path)
        w.raw = fopen(raw_path, "wb");
    struct gen g;
    gen_init(&g, tags, force_kind);
    for (int h = 0; h < hours; h++) {
        chunk_file_header hdr = {.version = CHUNK_FORMAT_VERSION, .chunk_no = (uint32_t)h + 1,
                                 .created_ns = DAY_START + (int64_t)h * 3600000000000ll};
        snprintf(hdr.writer, sizeof hdr.writer, "day");
        char name[64];
        w.fd = chunk_create(w.dirfd, &hdr, name, sizeof name);
        w.off = CHUNK_FILE_HEADER_SIZE;
        for (int s = 0; s < 3600; s++) {
            gen_poll(&g, DAY_START + (int64_t)g.poll * 1000000000, day_emit, &w);
            if (s % 60 == 59)
                day_flush_block(&w);
        }
        close(w.fd);
        chunk_seal_report rep;
        if (chunk_seal(w.dirfd, name, 0, &rep) != 0) {
            fprintf(stderr, "bench writer: seal: %s\n", chunk_last_error());
            exit(1);
        }
    }
    if (w.raw)
        fclose(w.raw);
    close(w.dirfd);
    chunk_builder_free(&w.b);
    free(w.buf);
    free(g.level);
    return w.points;
}

static void compression_cases(int quick)
{
    uint32_t tags = quick ? 20 : 100;
    int hours = quick ? 2 : 24;
    for (int k = 0; k < K_KINDS; k++) {
        char dir[512];
        make_tmpdir(dir, sizeof dir, "kind");
        uint64_t points = write_day(dir, tags, k, hours, NULL);
        double bpp = (double)dir_bytes(dir, CHUNK_NAME_SEALED) / (double)points;
        char name[64];
        snprintf(name, sizeof name, "compression_%s", kind_names[k]);
        bench_json j;
        bench_json_begin(&j, "writer", name);
        bench_json_num(&j, "bytes_per_point", bpp);
        bench_json_int(&j, "points", (int64_t)points);
        bench_json_int(&j, "tags", tags);
        bench_json_str(&j, "timestamps", "one per request of 10 tags, +-2 ms jitter");
        bench_json_num(&j, "baseline_bytes_per_point", 24);
        bench_json_num(&j, "ratio", 24 / bpp);
        bench_json_str(&j, "ratio_of", "raw 24-byte records / this");
        bench_json_end(&j);
        rm_tree(dir);
    }
}

static uint64_t raw_bytes_scanned;

/* Scans raw 24-byte records for one tag. */
static double raw_scan(const char *path, uint32_t tag, uint64_t *found)
{
    int64_t t0 = bench_now_ns();
    int fd = open(path, O_RDONLY);
    static uint8_t buf[24 * 43690]; /* whole records per read */
    uint64_t n = 0;
    double sum = 0;
    ssize_t r;
    uint64_t bytes = 0;
    while ((r = read(fd, buf, sizeof buf)) > 0) {
        bytes += (uint64_t)r;
        if (r % 24) { /* a short read mid-record: realign */
            off_t back = r % 24;
            lseek(fd, -back, SEEK_CUR);
            r -= back;
            bytes -= (uint64_t)back;
        }
        for (ssize_t i = 0; i + 24 <= r; i += 24) {
            uint32_t t;
            memcpy(&t, buf + i + 8, 4);
            if (t == tag) {
                double v;
                memcpy(&v, buf + i + 16, 8);
                sum += v;
                n++;
            }
        }
    }
    close(fd);
    *found = n + (sum < -1e300); /* keeps the loop honest */
    raw_bytes_scanned = bytes;
    return (double)(bench_now_ns() - t0) / 1e9;
}

static void query_case(int quick)
{
    /* as a long-running reader would: freed memory stays in the process */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    uint32_t tags = quick ? 20 : 100;
    char dir[512], raw[600];
    make_tmpdir(dir, sizeof dir, "day");
    snprintf(raw, sizeof raw, "%s/raw.bin", dir);
    char chunks[600];
    snprintf(chunks, sizeof chunks, "%s/chunks", dir);
    mkdir(chunks, 0700);
    uint64_t points = write_day(chunks, tags, -1, 24, raw);
    const uint32_t tag = 0; /* a temperature: slowly changing analog */
    int runs = quick ? 5 : 9;
    double t[16], tb[16];
    uint64_t got = 0, base_got = 0;
    chunk_read_stats st = {0};
    for (int i = 0; i < runs; i++) {
        int64_t t0 = bench_now_ns();
        chunk_store *s;
        chunk_series out = {0};
        if (chunk_store_open(chunks, 0, NULL, NULL, &s) != 0)
            exit(1);
        memset(&st, 0, sizeof st);
        chunk_store_read(s, tag, INT64_MIN, INT64_MAX,
                         CHUNK_F_TS | CHUNK_F_SEQ | CHUNK_F_VALUE | CHUNK_F_QUALITY |
                             CHUNK_F_EXCEPTION,
                         &out, &st);
        got = out.n;
        chunk_series_free(&out);
        chunk_store_close(&s);
        t[i] = (double)(bench_now_ns() - t0) / 1e9;
    }
    for (int i = 0; i < runs; i++)
        tb[i] = raw_scan(raw, tag, &base_got);
    double first = t[0];
    double q = bench_median(t, (size_t)runs), b = bench_median(tb, (size_t)runs);
    bench_json j;
    bench_json_begin(&j, "writer", "query");
    bench_json_num(&j, "points_per_s", (double)got / q);
    bench_json_int(&j, "points", (int64_t)got);
    bench_json_num(&j, "seconds", q);
    bench_json_num(&j, "first_run_points_per_s", (double)got / first); /* cold: memory faulted in */
    bench_json_int(&j, "chunks", 24);
    bench_json_int(&j, "tags_stored", tags);
    bench_json_num(&j, "bytes_per_point", (double)dir_bytes(chunks, CHUNK_NAME_SEALED) / (double)points);
    bench_json_int(&j, "bytes_read", (int64_t)st.bytes_read);
    bench_json_num(&j, "baseline_points_per_s", (double)base_got / b);
    bench_json_int(&j, "baseline_bytes", (int64_t)raw_bytes_scanned);
    bench_json_int(&j, "baseline_points", (int64_t)base_got);
    bench_json_str(&j, "baseline", "scan of the day as raw 24-byte records");
    bench_json_num(&j, "ratio", ((double)got / q) / ((double)base_got / b));
    bench_json_int(&j, "runs", runs);
    bench_json_end(&j);
    rm_tree(dir);
}

int bench_writer(int argc, char **argv)
{
    int quick = bench_has_flag(argc, argv, "--quick");
    const char *only = bench_flag_value(argc, argv, "--case");
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        perror("readlink /proc/self/exe");
        return 1;
    }
    exe[n] = '\0';
    char writer_bin[4200];
    snprintf(writer_bin, sizeof writer_bin, "%s/shmbus-writer", dirname(exe));
    if (access(writer_bin, X_OK) != 0) {
        fprintf(stderr, "bench writer: %s: %s\n", writer_bin, strerror(errno));
        return 1;
    }
    uint64_t lap = quick ? 500000 : 1000000;
    int laps = quick ? 3 : 6;
    uint32_t tags = 1000;
    bench_json j;
    double base = 0;
    if (!only || strcmp(only, "durable") == 0 || strcmp(only, "baseline") == 0) {
        base = baseline_pwrite(quick ? 1.0 : 3.0, 500);
        bench_json_begin(&j, "writer", "baseline_pwrite");
        bench_json_num(&j, "points_per_s", base);
        bench_json_num(&j, "bytes_per_point", 24);
        bench_json_int(&j, "batch_records", 500);
        bench_json_str(&j, "method", "pwrite + fdatasync per batch of raw 24-byte records");
        bench_json_end(&j);
    }
    int status = 0;
    for (int writers = 1; writers <= 2 && (!only || strcmp(only, "durable") == 0); writers++) {
        int runs = quick ? 1 : 3;
        double rate[8], seal_s[8], cpu[8], icpu[8], bpp = 0, wal = 0, sync_ms = 0;
        uint64_t syncs = 0;
        uint64_t points = 0;
        int ok = 1;
        for (int r = 0; r < runs; r++) {
            struct durable_result d = durable(writer_bin, writers, lap, laps, tags);
            rate[r] = d.points_per_s;
            seal_s[r] = d.final_seal_s;
            cpu[r] = d.cpu_ns_per_point;
            icpu[r] = d.ingest_cpu_ns_per_point;
            bpp = d.bytes_per_point;
            wal = d.wal_bytes_per_point;
            syncs = d.syncs;
            sync_ms = d.sync_ms_mean;
            points = d.points;
            ok = ok && d.ok;
        }
        char name[32];
        snprintf(name, sizeof name, "durable_%dw", writers);
        double med = bench_median(rate, (size_t)runs);
        bench_json_begin(&j, "writer", name);
        bench_json_num(&j, "points_per_s", med);
        bench_json_num(&j, "final_seal_s", bench_median(seal_s, (size_t)runs));
        bench_json_num(&j, "bytes_per_point", bpp);
        bench_json_num(&j, "unsealed_bytes_per_point", wal);
        bench_json_num(&j, "writer_cpu_ns_per_point", bench_median(icpu, (size_t)runs));
        bench_json_num(&j, "writer_cpu_ns_per_point_incl_seal", bench_median(cpu, (size_t)runs));
        bench_json_int(&j, "points", (int64_t)points);
        bench_json_int(&j, "syncs", (int64_t)syncs);
        bench_json_num(&j, "sync_ms_mean", sync_ms);
        bench_json_int(&j, "tags", tags);
        bench_json_int(&j, "writers", writers);
        bench_json_num(&j, "baseline_points_per_s", base);
        bench_json_num(&j, "ratio", med / base);
        bench_json_str(&j, "ratio_of", "baseline_pwrite");
        bench_json_int(&j, "runs", runs);
        bench_json_str(&j, "complete", ok ? "yes" : "no");
        bench_json_end(&j);
        if (!ok)
            status = 1;
    }
    if (!only || strcmp(only, "compression") == 0)
        compression_cases(quick);
    if (!only || strcmp(only, "query") == 0)
        query_case(quick);
    return status;
}

/*
 * wtest_e2e.c — see wtest_e2e.h.
 */
#include "wtest_e2e.h"

#include "shmtest.h"

#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct wtest_shared {
    _Atomic uint64_t put;
    _Atomic uint64_t first, last;
    _Atomic int stop;
    char segment[SHM_NAME_MAX + 1];
    uint32_t tags;
    uint64_t rate, total;
    int error; /* why the producer stopped early, 0 if it did not */
    char error_text[256];
};

shm_segment *wtest_segment(char *name, size_t len, uint32_t slot_count, uint32_t tags)
{
    shmtest_segment_name(name, len, "w");
    shm_segment_options o = {.slot_size = 128, .slot_count = slot_count,
                             .policy = SHM_POLICY_BACKPRESSURE};
    shm_segment *seg = NULL;
    if (shm_segment_open(name, &o, SHM_OPEN_CREATE, &seg) != 0) {
        fprintf(stderr, "segment %s: %s\n", name, shm_last_error());
        abort();
    }
    for (uint32_t t = 0; t < tags; t++) {
        char tname[32], dev[16];
        snprintf(tname, sizeof tname, "tag.%u", t);
        snprintf(dev, sizeof dev, "dev%u", t / 4);
        shm_tag_meta m = {.id = t, .device_id = t / 4, .name = tname, .device = dev,
                          .unit = "degC", .data_type = SHM_DT_FLOAT64, .scale = 1};
        uint8_t buf[512];
        int n = shm_tag_meta_encode(&m, buf, sizeof buf);
        if (n <= 0 || shm_catalog_put(seg, t, buf, (uint32_t)n) != 0)
            abort();
    }
    /* the group must exist before records arrive, or it starts after them */
    shm_consumer *c = NULL;
    if (shm_consumer_open(seg, "writer", "test-setup", &c) != 0)
        abort();
    shm_consumer_close(&c);
    return seg;
}

int64_t wtest_e2e_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int producer_main(void *arg)
{
    struct wtest_shared *sh = arg;
    shm_segment *seg = NULL;
    shm_producer *p = NULL;
    int orc = shm_segment_open(sh->segment, NULL, SHM_OPEN_ATTACH, &seg);
    if (orc == 0)
        orc = shm_producer_open(seg, "wtest-producer", &p);
    if (orc != 0) {
        sh->error = orc;
        snprintf(sh->error_text, sizeof sh->error_text, "%s", shm_last_error());
        return 1;
    }
    int64_t start = shmtest_now_ms();
    uint64_t put = 0;
    double level[1024] = {0};
    while (!atomic_load(&sh->stop) && (!sh->total || put < sh->total)) {
        if (sh->rate) {
            uint64_t due = (uint64_t)((double)(shmtest_now_ms() - start) * (double)sh->rate / 1000.0);
            if (put >= due) {
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
                continue;
            }
        }
        /* one poll: 4 tags, one timestamp */
        int64_t ts = real_ns();
        uint32_t g = (uint32_t)(wtest_rand() % ((sh->tags + 3) / 4)) * 4;
        for (uint32_t t = g; t < g + 4 && t < sh->tags; t++) {
            level[t % 1024] += ((int)(wtest_rand() % 3) - 1) * 0.01;
            shm_tag_value v = {.timestamp_ns = ts, .tag_id = t, .device_id = t / 4,
                               .value = round((20 + t + level[t % 1024]) * 100) / 100,
                               .quality = SHM_Q_GOOD};
            v.raw = (int64_t)llround(v.value * 100);
            uint8_t buf[SHM_TAG_VALUE_MAX];
            int n = shm_tag_value_encode(&v, buf, sizeof buf);
            uint64_t seq;
            int rc;
            while ((rc = shm_put(p, buf, (uint32_t)n, &seq)) == SHM_EFULL && !atomic_load(&sh->stop)) {
                struct timespec w = {0, 200000};
                nanosleep(&w, NULL);
            }
            if (rc != 0) {
                sh->error = rc;
                snprintf(sh->error_text, sizeof sh->error_text, "shm_put: %s", shm_last_error());
                atomic_store(&sh->stop, 1);
                break;
            }
            if (put == 0)
                atomic_store(&sh->first, seq);
            atomic_store(&sh->last, seq);
            put++;
            atomic_store(&sh->put, put);
        }
    }
    shm_producer_close(&p);
    shm_segment_close(&seg);
    return 0;
}

void wtest_producer_start(wtest_producer *p, const char *segment, uint32_t tags, uint64_t rate,
                          uint64_t total)
{
    p->sh = shmtest_shared_alloc(sizeof *p->sh);
    snprintf(p->sh->segment, sizeof p->sh->segment, "%s", segment);
    p->sh->tags = tags;
    p->sh->rate = rate;
    p->sh->total = total;
    p->pid = shmtest_fork(producer_main, p->sh);
}

uint64_t wtest_producer_count(const wtest_producer *p)
{
    return atomic_load(&p->sh->put);
}

uint64_t wtest_producer_first(const wtest_producer *p)
{
    return atomic_load(&p->sh->first);
}

uint64_t wtest_producer_last(const wtest_producer *p)
{
    return atomic_load(&p->sh->last);
}

uint64_t wtest_producer_stop(wtest_producer *p, uint64_t *first_seq, uint64_t *last_seq)
{
    atomic_store(&p->sh->stop, 1);
    shmtest_wait_pid(p->pid, 30000);
    if (p->sh->error)
        fprintf(stderr, "producer stopped early: %s\n", p->sh->error_text);
    if (first_seq)
        *first_seq = atomic_load(&p->sh->first);
    if (last_seq)
        *last_seq = atomic_load(&p->sh->last);
    return atomic_load(&p->sh->put);
}

pid_t wtest_writer_spawn(const char *segment, const char *data, const char *name, const char *log,
                         const char *const *extra)
{
    char bin[512];
    shmtest_bin(bin, sizeof bin, "shmbus-writer");
    const char *argv[32] = {bin, "--segment", segment, "--data", data, "--name", name};
    int n = 7;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return shmtest_spawn((char *const *)argv, log);
}

bool wtest_writer_joined(shm_segment *seg, const char *name, int timeout_ms)
{
    int64_t deadline = shmtest_now_ms() + timeout_ms;
    shm_member_stats m[64];
    do {
        int n = shm_member_stats_get(seg, m, 64);
        for (int i = 0; i < n && i < 64; i++)
            if (m[i].state == SHM_MEMBER_ACTIVE && m[i].alive && strcmp(m[i].name, name) == 0 &&
                strcmp(m[i].group, "writer") == 0)
                return true;
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    } while (shmtest_now_ms() < deadline);
    return false;
}

int wtest_writer_stop(pid_t pid, int timeout_ms)
{
    kill(pid, SIGTERM);
    int st = shmtest_wait_pid(pid, timeout_ms);
    if (st == -1) {
        shmtest_kill(pid);
        return -1;
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

uint64_t wtest_tail(shm_segment *seg)
{
    shm_group_stats g[SHM_MAX_GROUPS];
    int n = shm_group_stats_get(seg, g, SHM_MAX_GROUPS);
    for (int i = 0; i < n && i < SHM_MAX_GROUPS; i++)
        if (strcmp(g[i].name, "writer") == 0)
            return g[i].tail_seq;
    return 0;
}

uint64_t wtest_head(shm_segment *seg)
{
    shm_ring_stats r;
    shm_ring_stats_get(seg, &r);
    return r.head_seq;
}

bool wtest_wait_drained(shm_segment *seg, int timeout_ms)
{
    int64_t deadline = shmtest_now_ms() + timeout_ms;
    do {
        if (wtest_tail(seg) >= wtest_head(seg))
            return true;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    } while (shmtest_now_ms() < deadline);
    return false;
}

int wtest_count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

bool wtest_stored_once(const char *data, uint32_t tags, uint64_t first, uint64_t last)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/chunks", data);
    chunk_store *s = NULL;
    if (chunk_store_open(dir, 0, NULL, NULL, &s) != 0) {
        printf("open %s: %s\n", dir, chunk_last_error());
        return false;
    }
    uint64_t n = last - first + 1, total = 0;
    uint8_t *seen = calloc(n, 1);
    chunk_series got = {0};
    bool ok = s->nproblems == 0;
    for (size_t i = 0; i < s->nproblems; i++)
        printf("problem: %s\n", s->problems[i]);
    for (uint32_t tag = 0; ok && tag < tags; tag++) {
        chunk_read_stats st = {0};
        chunk_series_clear(&got);
        ok = chunk_store_read(s, tag, INT64_MIN, INT64_MAX, CHUNK_F_ALL, &got, &st) == 0 &&
             st.points_dropped == 0;
        for (size_t i = 0; ok && i < got.n; i++) {
            ok = got.seq[i] >= first && got.seq[i] <= last && !seen[got.seq[i] - first]++;
            if (!ok)
                printf("sequence %llu unexpected or read twice\n", (unsigned long long)got.seq[i]);
        }
        total += got.n;
    }
    if (ok && total != n) {
        printf("%llu of %llu records stored\n", (unsigned long long)total, (unsigned long long)n);
        ok = false;
    }
    free(seen);
    chunk_series_free(&got);
    chunk_store_close(&s);
    return ok;
}

/*
 * memprobe.c — the stats service's resident memory under many tags (see
 * memprobe.h).
 */
#include "memprobe.h"

#include "statclient.h"
#include "statref.h"

#include "shmtest.h"

#include <errno.h>
#include <shmbus/shm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SEC 1000000000LL
#define SAMPLE_EVERY 4096 /* records between two RSS samples */

typedef struct probe {
    const memprobe_cfg *cfg;
    char seg[64], dir[256], run_dir[300], data_dir[300], url[512];
    shm_segment *segment;
    shm_producer *prod;
    pid_t pid;
    memprobe_result *out;
} probe;

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static json_t *ask(probe *p, const char *req)
{
    return statclient_ask(p->url, req, strlen(req));
}

static double status_number(probe *p, const char *key)
{
    json_t *j = ask(p, "{\"op\":\"status\"}");
    json_t *v = j ? json_object_get(j, key) : NULL;
    double x = json_is_true(v) ? 1.0 : json_is_number(v) ? json_number_value(v) : -1.0;
    json_decref(j);
    return x;
}

static void sample(probe *p)
{
    long kb = statclient_own_rss_kb(p->pid);
    if (kb > p->out->peak_kb)
        p->out->peak_kb = kb;
}

static void quiet(void *ctx, int level, const char *message)
{
    (void)ctx;
    if (level > 1) /* a full ring is what the probe does on purpose: errors only */
        fprintf(stderr, "memprobe: %s\n", message);
}

static int open_segment(probe *p)
{
    shm_segment_options o = {.slot_count = 65536,
                             .slot_size = 128,
                             .policy = SHM_POLICY_BACKPRESSURE,
                             .catalog_capacity = p->cfg->tags};
    if (shm_segment_open(p->seg, &o, SHM_OPEN_CREATE, &p->segment) != 0 ||
        shm_producer_open(p->segment, "memprobe", &p->prod) != 0) {
        fprintf(stderr, "memprobe: segment: %s\n", shm_last_error());
        return -1;
    }
    shm_segment_set_log(p->segment, quiet, NULL);
    if (!p->cfg->catalog)
        return 0;
    for (uint32_t id = 0; id < p->cfg->tags; id++) {
        char name[64];
        snprintf(name, sizeof name, "plant.area%02u.tag%05u", id % 97, id);
        shm_tag_meta m = {
            .id = id, .name = name, .device = "plc1", .unit = "", .data_type = SHM_DT_FLOAT64};
        uint8_t buf[SHM_CATALOG_ENTRY_MAX];
        int n = shm_tag_meta_encode(&m, buf, sizeof buf);
        if (n <= 0 || shm_catalog_put(p->segment, id, buf, (uint32_t)n) != 0) {
            fprintf(stderr, "memprobe: catalog: %s\n", shm_last_error());
            return -1;
        }
    }
    return 0;
}

static int start_service(probe *p)
{
    char bin[512], log[512], max_tags[16], window[16], history[16], limit[16];
    shmtest_bin(bin, sizeof bin, "shmbus-stats");
    snprintf(log, sizeof log, "%s/stats.log", p->dir);
    snprintf(max_tags, sizeof max_tags, "%u", p->cfg->tags);
    snprintf(window, sizeof window, "%u", p->cfg->window);
    snprintf(history, sizeof history, "%u", p->cfg->history);
    snprintf(limit, sizeof limit, "%u", p->cfg->memory_limit_mb);
    char *argv[32] = {bin,         "--segment",
                      p->seg,      "--run-dir",
                      p->run_dir,  "--data-dir",
                      p->data_dir, "--snapshot-interval-s",
                      "0",         "--publish-interval-s",
                      "0",         "--history-s",
                      "86400",     "--max-tags",
                      max_tags,    "--window",
                      window,      "--history-capacity",
                      history,     NULL};
    int argc = 19;
    if (p->cfg->memory_limit_mb) {
        argv[argc++] = "--memory-limit-mb";
        argv[argc++] = limit;
    }
    argv[argc] = NULL;
    p->pid = shmtest_spawn(argv, log);
    int64_t deadline = shmtest_now_ms() + 20000;
    while (shmtest_now_ms() < deadline) {
        if (status_number(p, "attached") == 1.0)
            return 0;
        usleep(20000);
    }
    fprintf(stderr, "memprobe: the service did not attach (log %s)\n", log);
    return -1;
}

static void put_one(probe *p, uint32_t tag, int64_t t, double v)
{
    shm_tag_value tv = {.timestamp_ns = t, .tag_id = tag, .value = v, .quality = SHM_Q_GOOD};
    uint8_t buf[SHM_TAG_VALUE_MAX];
    int n = shm_tag_value_encode(&tv, buf, sizeof buf);
    int rc;
    while ((rc = shm_put(p->prod, buf, (uint32_t)n, NULL)) == SHM_EFULL) {
        sample(p);
        usleep(1000); /* the service drains the ring */
    }
    if (rc != 0)
        fprintf(stderr, "memprobe: put: %s\n", shm_last_error());
}

/* values rounds over every tag, one millisecond apart, ending now. */
static void feed(probe *p)
{
    const memprobe_cfg *c = p->cfg;
    test_rng rng;
    rng_seed(&rng, 42);
    double *level = calloc(c->tags, sizeof *level);
    int64_t t0 = real_ns() - (int64_t)c->values * 1000000;
    uint64_t n = 0;
    for (uint32_t r = 0; r < c->values; r++) {
        for (uint32_t id = 0; id < c->tags; id++) {
            level[id] += rng_normal(&rng);
            put_one(p, id, t0 + (int64_t)r * 1000000, 100.0 + level[id]);
            if (++n % SAMPLE_EVERY == 0)
                sample(p);
        }
    }
    free(level);
}

static int wait_applied(probe *p, uint64_t total)
{
    int64_t deadline = shmtest_now_ms() + 120000;
    while (shmtest_now_ms() < deadline) {
        sample(p);
        double applied = status_number(p, "records");
        if (applied >= (double)total) {
            p->out->records = (uint64_t)applied;
            return 0;
        }
        usleep(50000);
    }
    fprintf(stderr, "memprobe: the service did not apply %llu records in time\n",
            (unsigned long long)total);
    return -1;
}

static void stop_service(probe *p)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    if (shmtest_wait_pid(p->pid, 20000) == -1)
        shmtest_kill(p->pid);
    p->pid = 0;
}

int memprobe_run(const memprobe_cfg *cfg, memprobe_result *out)
{
    memset(out, 0, sizeof *out);
    probe *p = calloc(1, sizeof *p);
    p->cfg = cfg;
    p->out = out;
    shmtest_segment_name(p->seg, sizeof p->seg, "mem");
    shmtest_tmpdir(p->dir, sizeof p->dir);
    snprintf(p->run_dir, sizeof p->run_dir, "%s/run", p->dir);
    snprintf(p->data_dir, sizeof p->data_dir, "%s/data", p->dir);
    snprintf(p->url, sizeof p->url, "ipc://%s/%s.stats", p->run_dir, p->seg);
    int rc = -1;
    if (open_segment(p) || start_service(p))
        goto out;
    out->baseline_kb = statclient_own_rss_kb(p->pid);
    out->peak_kb = out->baseline_kb;
    feed(p);
    if (wait_applied(p, (uint64_t)cfg->tags * cfg->values))
        goto out;
    out->end_kb = statclient_own_rss_kb(p->pid);
    sample(p);
    out->status = ask(p, "{\"op\":\"status\"}");
    out->tag0 = ask(p, "{\"op\":\"stats\",\"tag\":0}");
    rc = out->status && out->tag0 ? 0 : -1;
out:
    stop_service(p);
    shm_producer_close(&p->prod);
    shm_segment_close(&p->segment);
    free(p);
    return rc;
}

/*
 * bench_poller.c — `shmbus-bench poller [--quick] [--check]`: acquisition
 * throughput of shmbus-poller against shmbus-sim on loopback.
 *
 * Cases, each one JSON line:
 *   baseline_libmodbus_loop  a bare libmodbus loop reading 125 holding
 *                            registers per request on one connection (what a
 *                            hand-written client gets), run against the
 *                            simulator of each poller case just before it;
 *   sim_devices              shmbus-poller with 1, 10 and 100 devices served by
 *                            one shmbus-sim process, reading 25,000 registers
 *                            in all (18,800 tags: per 250 registers 125 uint16
 *                            tags, 62 float32 tags and one more uint16), one
 *                            poll group per device polled back to back
 *                            (interval 1 ms, so never interval-bound); the
 *                            planner reads them with requests of 125.
 * Figures come from the poller's own counters in the segment, over a window
 * after a warm-up: registers_per_s, requests_per_s, records_per_s; plus the
 * poller's own resident memory (RssAnon + RssFile; the segment's shared
 * pages it touched are reported apart; VmHWM, the peak, includes those and
 * the transient memory of loading an 18,800-tag file) and its CPU use
 * (cores). ratio compares
 * registers_per_s with the baseline measured in the same run. The ring
 * (drop-oldest, no consumer group) only takes the records: this measures
 * acquisition, not consumers. --check fails the run when a case moved no
 * data or counted errors.
 */
#include "bench.h"

#include <shmbus/shm.h>

#include <errno.h>
#include <limits.h>
#include <modbus/modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOTAL_REGISTERS 25000 /* spread over the devices of a case */
#define BLOCK 250              /* 125 uint16 + 62 float32 + 1 uint16 tags */

typedef struct totals {
    uint64_t registers, requests, records, errors;
} totals;

/* Every case reads the same TOTAL_REGISTERS, spread over `devices`: each
 * device gets blocks of 250 registers holding 188 tags. */
static int write_config(const char *path, const char *segment, const char *run_dir, int devices,
                        int base_port)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "segment: {name: %s, slot_count: 65536, policy: drop-oldest,"
               " catalog_capacity: 32768}\n"
               "paths: {run_dir: %s}\ndevices:\n", segment, run_dir);
    int blocks = TOTAL_REGISTERS / BLOCK / devices;
    for (int d = 0; d < devices; d++) {
        fprintf(f, "  - name: d%d\n    host: 127.0.0.1\n    port: %d\n    address_base: 0\n"
                   "    response_timeout_ms: 2000\n"
                   "    poll_groups: [{name: g, interval_ms: 1}]\n    tags:\n",
                d, base_port + d);
        int a = 0;
        for (int b = 0; b < blocks; b++) {
            for (int i = 0; i < 125; i++, a++)
                fprintf(f, "      - {name: d%d.u%d, register: holding, address: %d, "
                           "sim: {kind: counter, max: 65535, step: %d}}\n", d, a, a, i + 1);
            for (int i = 0; i < 62; i++, a += 2)
                fprintf(f, "      - {name: d%d.f%d, register: holding, address: %d, type: "
                           "float32, order: CDAB, sim: {kind: sine, period_s: %d}}\n",
                        d, a, a, 10 + i);
            fprintf(f, "      - {name: d%d.u%d, register: holding, address: %d}\n", d, a, a);
            a++;
        }
    }
    return fclose(f);
}

static int add_counter(void *ctx, const char *name, int kind, uint64_t value)
{
    (void)kind;
    totals *t = ctx;
    if (strncmp(name, "shmbus_poller_registers_total{", 30) == 0)
        t->registers += value;
    else if (strncmp(name, "shmbus_poller_requests_total{", 29) == 0)
        t->requests += value;
    else if (strncmp(name, "shmbus_poller_records_total{", 28) == 0)
        t->records += value;
    else if (strncmp(name, "shmbus_poller_errors_total{", 27) == 0)
        t->errors += value;
    return 0;
}

static int read_totals(const char *segment, totals *t)
{
    memset(t, 0, sizeof *t);
    shm_segment *seg = NULL;
    if (shm_segment_open(segment, NULL, SHM_OPEN_ATTACH | SHM_OPEN_READONLY, &seg) < 0)
        return -1;
    shm_counter_foreach(seg, add_counter, t);
    shm_segment_close(&seg);
    return 0;
}

typedef struct run_env {
    char dir[256], sim[PATH_MAX], poller[PATH_MAX];
    double warmup, window;
    int check;
} run_env;

/* The bare libmodbus loop: 125 registers per request, one connection, to
 * device d0 of the simulator that the next poller case reads, just before
 * that case (the machine's load drifts; adjacent windows compare fairly). */
static int baseline(const run_env *env, int port, int blocks, int for_devices, double *regs_per_s)
{
    int rc = -1;
    modbus_t *ctx = modbus_new_tcp("127.0.0.1", port);
    if (!ctx || modbus_set_slave(ctx, 1) < 0 || modbus_connect(ctx) < 0)
        goto out;
    uint16_t regs[125];
    int64_t warm_end = bench_now_ns() + (int64_t)(env->warmup * 1e9);
    uint64_t requests = 0, failures = 0;
    while (bench_now_ns() < warm_end)
        modbus_read_registers(ctx, (int)(requests++ % (uint64_t)blocks) * 125, 125, regs);
    requests = 0;
    int64_t t0 = bench_now_ns(), end = t0 + (int64_t)(env->window * 1e9);
    while (bench_now_ns() < end) {
        if (modbus_read_registers(ctx, (int)(requests % (uint64_t)blocks) * 125, 125, regs) == 125)
            requests++;
        else
            failures++;
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    *regs_per_s = (double)requests * 125 / secs;
    bench_json j;
    bench_json_begin(&j, "poller", "baseline_libmodbus_loop");
    bench_json_int(&j, "devices", 1);
    bench_json_int(&j, "before_case_devices", for_devices);
    bench_json_num(&j, "registers_per_s", *regs_per_s);
    bench_json_num(&j, "requests_per_s", (double)requests / secs);
    bench_json_int(&j, "registers_per_request", 125);
    bench_json_int(&j, "failures", (int64_t)failures);
    bench_json_num(&j, "ratio", 1.0);
    bench_json_end(&j);
    rc = requests > 0 && (!env->check || failures == 0) ? 0 : -1;
out:
    if (ctx) {
        modbus_close(ctx);
        modbus_free(ctx);
    }
    return rc;
}

static int poller_case(const run_env *env, int devices)
{
    char cfg[512], log[512], plog[512], segment[64], nbuf[16];
    snprintf(segment, sizeof segment, "bench-poller-%d-%d", devices, (int)getpid());
    snprintf(cfg, sizeof cfg, "%s/poller-%d.yaml", env->dir, devices);
    snprintf(log, sizeof log, "%s/sim-%d.log", env->dir, devices);
    snprintf(plog, sizeof plog, "%s/poller-%d.log", env->dir, devices);
    int port = bench_free_port_range(devices);
    if (port < 0 || write_config(cfg, segment, env->dir, devices, port) < 0)
        return -1;
    snprintf(nbuf, sizeof nbuf, "%d", devices > 1 ? 2 : 1);
    char *sargv[] = {(char *)env->sim, "--config", cfg, "--threads", nbuf, NULL};
    char *pargv[] = {(char *)env->poller, "--config", cfg, NULL};
    pid_t sim = bench_spawn(sargv, log), poller = -1;
    int rc = -1;
    double base = 0;
    if (sim < 0 || bench_wait_port(port + devices - 1, 20) < 0)
        goto out;
    if (baseline(env, port, TOTAL_REGISTERS / devices / 125, devices, &base) < 0)
        goto out;
    poller = bench_spawn(pargv, plog);
    if (poller < 0)
        goto out;
    /* Start-up (config, catalog, 100 connections) is not part of the window. */
    totals a, b;
    int64_t deadline = bench_now_ns() + 30 * (int64_t)1000000000;
    while ((read_totals(segment, &a) < 0 || a.registers == 0) && bench_now_ns() < deadline) {
        if (waitpid(poller, NULL, WNOHANG) == poller) {
            poller = -1;
            goto out;
        }
        bench_sleep_s(0.05);
    }
    bench_sleep_s(env->warmup);
    bench_usage u0, u1;
    bench_proc_usage(poller, &u0);
    int64_t t0 = bench_now_ns();
    if (read_totals(segment, &a) < 0)
        goto out;
    bench_sleep_s(env->window);
    if (read_totals(segment, &b) < 0)
        goto out;
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    bench_proc_usage(poller, &u1);
    double regs = (double)(b.registers - a.registers) / secs;
    bench_json j;
    bench_json_begin(&j, "poller", "sim_devices");
    bench_json_int(&j, "devices", devices);
    bench_json_num(&j, "registers_per_s", regs);
    bench_json_num(&j, "requests_per_s", (double)(b.requests - a.requests) / secs);
    bench_json_num(&j, "records_per_s", (double)(b.records - a.records) / secs);
    bench_json_num(&j, "poller_rss_mb", u1.own_mb);
    bench_json_num(&j, "segment_pages_mapped_mb", u1.shmem_mb);
    bench_json_num(&j, "poller_vmhwm_mb", u1.hwm_mb);
    bench_json_num(&j, "poller_cpu_cores", (u1.cpu_s - u0.cpu_s) / secs);
    bench_json_int(&j, "errors", (int64_t)(b.errors - a.errors));
    bench_json_num(&j, "baseline_registers_per_s", base);
    bench_json_num(&j, "ratio", base > 0 ? regs / base : 0);
    bench_json_end(&j);
    rc = regs > 0 && (!env->check || b.errors == a.errors) ? 0 : -1;
out:
    bench_stop(poller);
    bench_stop(sim);
    shm_segment_unlink(segment);
    return rc;
}

int bench_poller(int argc, char **argv)
{
    run_env env = {.warmup = 1.0, .window = 4.0, .check = bench_has_flag(argc, argv, "--check")};
    if (bench_has_flag(argc, argv, "--quick")) {
        env.warmup = 0.3;
        env.window = 1.0;
    }
    bench_bin_path(env.sim, sizeof env.sim, "shmbus-sim");
    bench_bin_path(env.poller, sizeof env.poller, "shmbus-poller");
    snprintf(env.dir, sizeof env.dir, "%s/shmbus-bench-poller-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(env.dir)) {
        fprintf(stderr, "bench poller: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    setenv("SHMBUS_LOG_LEVEL", getenv("SHMBUS_LOG_LEVEL") ? getenv("SHMBUS_LOG_LEVEL") : "warning", 1);
    int status = 0;
    const int counts[] = {1, 10, 100};
    for (size_t i = 0; i < 3; i++) {
        if (poller_case(&env, counts[i]) < 0) {
            fprintf(stderr, "bench poller: %d devices failed (logs in %s)\n", counts[i], env.dir);
            status = 1;
        }
    }
    if (status == 0 && !getenv("SHMBUS_BENCH_KEEP")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", env.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench poller: could not remove %s\n", env.dir);
    }
    return status;
}

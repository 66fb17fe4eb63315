/*
 * bench_stats.c — `shmbus-bench stats [--quick] [--check]`: rolling-window
 * statistics updates per second on one core, for windows of 100, 1,000 and
 * 100,000 values.
 *
 * Cases, each measured in this run:
 *   rolling_update      rolling_add() per value (stats kept current in O(1))
 *   rolling_update_query rolling_add() + rolling_get_stats() per value
 *   baseline_recompute  what a naive implementation does: keep the last N
 *                       values and recompute count/min/max/mean/stddev over
 *                       them (two passes) at each update
 * Lines carry "window", "updates_per_s" (wall clock, median of the
 * repetitions) and, for the rolling cases, the baseline's figure and the
 * ratio; "updates_per_cpu_s" and "cpu_ratio" are the same from the thread's
 * CPU time, which other processes on this shared 2-core machine disturb far
 * less than the wall clock. --check compares
 * the last statistics of both methods and fails on a mismatch (> 1e-9).
 */
#include "bench.h"
#include "bench_registry.h" /* declares bench_stats() */
#include "rolling.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DATA_LEN (1u << 20)

typedef struct naive_window {
    double *v;
    uint32_t window, count, next;
    double min, max, mean, stddev;
} naive_window;

static void naive_recompute(naive_window *w)
{
    double sum = 0, mn = w->v[0], mx = w->v[0];
    for (uint32_t i = 0; i < w->count; i++) {
        sum += w->v[i];
        mn = w->v[i] < mn ? w->v[i] : mn;
        mx = w->v[i] > mx ? w->v[i] : mx;
    }
    double mean = sum / w->count, ss = 0;
    for (uint32_t i = 0; i < w->count; i++)
        ss += (w->v[i] - mean) * (w->v[i] - mean);
    w->min = mn;
    w->max = mx;
    w->mean = mean;
    w->stddev = w->count > 1 ? sqrt(ss / (w->count - 1)) : 0;
}

static void naive_update(naive_window *w, double x)
{
    w->v[w->next] = x;
    w->next = w->next + 1 == w->window ? 0 : w->next + 1;
    if (w->count < w->window)
        w->count++;
    naive_recompute(w);
}

/* Updates per second of one repetition, stopping after min_updates and at
 * least budget_ns. */
typedef struct run_result {
    double updates_per_s;     /* wall clock */
    double updates_per_cpu_s; /* this thread's CPU time: robust to other load on the machine */
    uint64_t updates;
} run_result;

static volatile double sink;

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static run_result rates(uint64_t n, int64_t wall_ns, int64_t cpu_ns)
{
    return (run_result){.updates_per_s = (double)n * 1e9 / (double)wall_ns,
                        .updates_per_cpu_s = (double)n * 1e9 / (double)(cpu_ns ? cpu_ns : 1),
                        .updates = n};
}

static run_result run_rolling(rolling_window *w, const double *data, uint64_t *pos,
                              int64_t budget_ns, int with_query)
{
    uint64_t n = 0;
    int64_t cpu0 = thread_cpu_ns();
    int64_t start = bench_now_ns(), now = start;
    rolling_stats st;
    do {
        for (int k = 0; k < 4096; k++) {
            uint64_t i = (*pos)++ & (DATA_LEN - 1);
            rolling_add(w, (int64_t)i, data[i]);
            if (with_query) {
                rolling_get_stats(w, &st);
                sink = st.stddev;
            }
        }
        n += 4096;
        now = bench_now_ns();
    } while (now - start < budget_ns);
    return rates(n, now - start, thread_cpu_ns() - cpu0);
}

static run_result run_naive(naive_window *w, const double *data, uint64_t *pos, int64_t budget_ns)
{
    uint64_t n = 0;
    int64_t cpu0 = thread_cpu_ns();
    int64_t start = bench_now_ns(), now = start;
    do {
        uint64_t i = (*pos)++ & (DATA_LEN - 1);
        naive_update(w, data[i]);
        sink = w->stddev;
        n++;
        if (n % 16 == 0 || w->window > 10000)
            now = bench_now_ns();
    } while (now - start < budget_ns);
    return rates(n, now - start, thread_cpu_ns() - cpu0);
}

/* Median of the wall (cpu == 0) or CPU-time rates of n runs. */
static double median_of(const run_result *runs, int n, int cpu)
{
    double v[8];
    for (int i = 0; i < n; i++)
        v[i] = cpu ? runs[i].updates_per_cpu_s : runs[i].updates_per_s;
    return bench_median(v, (size_t)n);
}

static int same(double a, double b)
{
    return fabs(a - b) <= 1e-9 * (fabs(b) + 1e-300);
}

static int bench_window(uint32_t window, const double *data, int quick, int check)
{
    const int reps = quick ? 3 : 5;
    const int64_t budget = quick ? 150000000 : 500000000;
    rolling_window w;
    if (rolling_init(&w, window, 0.0) != 0)
        return 1;
    naive_window nw = {.window = window};
    nw.v = calloc(window, sizeof *nw.v);
    if (!nw.v) {
        rolling_free(&w);
        return 1;
    }
    uint64_t pos = 0, naive_pos = 0;
    for (uint32_t i = 0; i < window; i++) { /* fill both windows first */
        uint64_t k = pos++ & (DATA_LEN - 1);
        rolling_add(&w, (int64_t)k, data[k]);
        nw.v[naive_pos++ % window] = data[k];
    }
    nw.count = window;
    nw.next = (uint32_t)(naive_pos % window);

    run_result upd[8], updq[8], base[8];
    for (int r = 0; r < reps; r++) {
        upd[r] = run_rolling(&w, data, &pos, budget, 0);
        updq[r] = run_rolling(&w, data, &pos, budget, 1);
        base[r] = run_naive(&nw, data, &naive_pos, budget / 2);
    }
    double b = median_of(base, reps, 0), b_cpu = median_of(base, reps, 1);

    bench_json j;
    bench_json_begin(&j, "stats", "baseline_recompute");
    bench_json_int(&j, "window", window);
    bench_json_num(&j, "updates_per_s", b);
    bench_json_num(&j, "updates_per_cpu_s", b_cpu);
    bench_json_end(&j);
    const struct {
        const char *name;
        run_result *runs;
    } cases[] = {{"rolling_update", upd}, {"rolling_update_query", updq}};
    for (int c = 0; c < 2; c++) {
        double u = median_of(cases[c].runs, reps, 0), u_cpu = median_of(cases[c].runs, reps, 1);
        bench_json_begin(&j, "stats", cases[c].name);
        bench_json_int(&j, "window", window);
        bench_json_num(&j, "updates_per_s", u);
        bench_json_num(&j, "baseline_updates_per_s", b);
        bench_json_num(&j, "ratio", u / b);
        bench_json_num(&j, "updates_per_cpu_s", u_cpu);
        bench_json_num(&j, "baseline_updates_per_cpu_s", b_cpu);
        bench_json_num(&j, "cpu_ratio", u_cpu / b_cpu);
        bench_json_int(&j, "reps", reps);
        bench_json_end(&j);
    }

    int rc = 0;
    if (check) {
        /* Recompute naively over the rolling window's last N values. */
        for (uint32_t i = 0; i < window; i++)
            nw.v[i] = data[(pos - window + i) & (DATA_LEN - 1)];
        nw.count = window;
        naive_recompute(&nw);
        rolling_stats st;
        rolling_get_stats(&w, &st);
        if (st.count != window || !same(st.mean, nw.mean) || !same(st.stddev, nw.stddev) ||
            st.min != nw.min || st.max != nw.max) {
            fprintf(stderr,
                    "bench stats: window %u: rolling mean %.17g std %.17g min %g max %g, "
                    "recompute mean %.17g std %.17g min %g max %g\n",
                    window, st.mean, st.stddev, st.min, st.max, nw.mean, nw.stddev, nw.min, nw.max);
            rc = 1;
        }
    }
    free(nw.v);
    rolling_free(&w);
    return rc;
}

int bench_stats(int argc, char **argv)
{
    int quick = bench_has_flag(argc, argv, "--quick");
    int check = bench_has_flag(argc, argv, "--check");
    double *data = malloc(DATA_LEN * sizeof *data);
    if (!data)
        return 1;
    /* Plant-like data: a slow wave plus noise around an offset. */
    uint64_t s = 0x2545F4914F6CDD1Dull;
    for (uint32_t i = 0; i < DATA_LEN; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        double noise = (double)(s >> 11) * (1.0 / 9007199254740992.0) - 0.5;
        data[i] = 250.0 + 10.0 * sin(i * 1e-4) + noise;
    }
    static const uint32_t windows[] = {100, 1000, 100000};
    int rc = 0;
    for (size_t i = 0; i < sizeof windows / sizeof windows[0]; i++)
        rc |= bench_window(windows[i], data, quick, check);
    free(data);
    return rc;
}

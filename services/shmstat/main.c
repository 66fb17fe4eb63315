/*
 * main.c — shmstat: shows a shmbus segment, mapped read-only.
 *
 * One-shot (default): attach, take one snapshot, print it (text or JSON).
 * Watch (-w): take a snapshot every interval and print it with rates over
 * the interval, until -n reports or SIGINT/SIGTERM. Each refresh attaches
 * again, so a segment re-created under the same name (controller restart,
 * reset) is followed, and one that disappears ends the watch with status 2.
 * --tail: print the newest records once.
 *
 * shmstat never writes to the segment: it opens it with SHM_OPEN_READONLY
 * (a PROT_READ mapping: a stray write would fault, not corrupt) and uses
 * only libshm's observation functions.
 */
#include "shmstat.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int attach(const char *name, shm_segment **seg)
{
    int rc = shm_segment_open(name, NULL, SHM_OPEN_READONLY, seg);
    if (rc) {
        fprintf(stderr, "shmstat: %s\n", shm_last_error());
        return SHMSTAT_EXIT_ATTACH;
    }
    return 0;
}

static int flush_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "shmstat: writing the report: %s\n", strerror(errno));
        return SHMSTAT_EXIT_RUNTIME;
    }
    return 0;
}

static int report(const struct shmstat_options *o, const struct snapshot *cur,
                  const struct snapshot *prev, int first)
{
    struct rates r;
    if (rates_compute(cur, prev, &r) != 0) {
        fprintf(stderr, "shmstat: out of memory\n");
        return SHMSTAT_EXIT_RUNTIME;
    }
    if (o->json) {
        json_render(stdout, cur, &r, !o->watch);
    } else {
        if (o->watch && isatty(STDOUT_FILENO))
            fputs("\033[H\033[2J", stdout); /* a live display: redraw in place */
        else if (o->watch && !first)
            fputc('\n', stdout);
        text_render(stdout, cur, &r);
    }
    rates_free(&r);
    return flush_stdout();
}

/* Sleeps until *deadline (monotonic); returns 0, or 1 when asked to stop. */
static int sleep_until(struct timespec *deadline, double interval_s)
{
    long long ns = (long long)(interval_s * 1e9);
    deadline->tv_sec += (time_t)(ns / 1000000000);
    deadline->tv_nsec += (long)(ns % 1000000000);
    if (deadline->tv_nsec >= 1000000000) {
        deadline->tv_sec++;
        deadline->tv_nsec -= 1000000000;
    }
    while (!stop_requested) {
        int e = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, deadline, NULL);
        if (e == 0)
            return 0;
        if (e != EINTR)
            return 1;
    }
    return 1;
}

/* Takes over *segp (closes it and clears the caller's pointer). */
static int run_watch(const struct shmstat_options *o, shm_segment **segp)
{
    shm_segment *seg = *segp;
    *segp = NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop; /* no SA_RESTART: the sleep returns at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct snapshot prev, cur;
    int have_prev = 0, status = 0;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    for (long n = 0;; n++) {
        if (!seg && (status = attach(o->name, &seg)) != 0)
            break;
        int rc = snapshot_take(seg, &cur);
        shm_segment_close(&seg);
        if (rc) {
            fprintf(stderr, "shmstat: reading /shmbus.%s: %s\n", o->name, shm_strerror(rc));
            status = SHMSTAT_EXIT_RUNTIME;
            break;
        }
        if (have_prev && !snapshot_same_segment(&prev, &cur)) {
            fprintf(stderr, "shmstat: /shmbus.%s was re-created; rates start again\n", o->name);
            snapshot_free(&prev);
            have_prev = 0;
        }
        status = report(o, &cur, have_prev ? &prev : NULL, n == 0);
        if (have_prev)
            snapshot_free(&prev);
        prev = cur;
        have_prev = 1;
        if (status || (o->count && n + 1 >= o->count) || sleep_until(&deadline, o->interval_s))
            break;
    }
    if (have_prev)
        snapshot_free(&prev);
    shm_segment_close(&seg);
    return status;
}

static int run_once(const struct shmstat_options *o, shm_segment *seg)
{
    struct snapshot s;
    int rc = snapshot_take(seg, &s);
    if (rc) {
        fprintf(stderr, "shmstat: reading /shmbus.%s: %s\n", o->name, shm_strerror(rc));
        return SHMSTAT_EXIT_RUNTIME;
    }
    int status = report(o, &s, NULL, 1);
    snapshot_free(&s);
    return status;
}

static int run_tail(const struct shmstat_options *o, shm_segment *seg)
{
    int rc = tail_render(stdout, seg, o->tail, o->json, o->raw);
    if (rc) {
        fprintf(stderr, "shmstat: reading records of /shmbus.%s: %s\n", o->name, shm_strerror(rc));
        return SHMSTAT_EXIT_RUNTIME;
    }
    return flush_stdout();
}

int main(int argc, char **argv)
{
    struct shmstat_options o;
    int rc = options_parse(argc, argv, &o);
    if (rc == -1)
        return SHMSTAT_EXIT_OK;
    if (rc)
        return rc;
    if (o.raw && isatty(STDOUT_FILENO)) {
        fprintf(stderr,
                "shmstat: --raw writes binary records; redirect stdout to a file or pipe\n");
        return SHMSTAT_EXIT_USAGE;
    }
    shm_segment *seg = NULL;
    if ((rc = attach(o.name, &seg)) != 0)
        return rc;
    if (o.tail)
        rc = run_tail(&o, seg);
    else if (o.watch)
        rc = run_watch(&o, &seg);
    else
        rc = run_once(&o, seg);
    shm_segment_close(&seg);
    return rc;
}

/*
 * main.c — shmbus-controller: owns the group's segment, supervises its
 * members, steers them under memory pressure, and serves the control plane
 * (nng REP), the event stream (nng PUB) and HTTP status and metrics.
 *
 *   shmbus-controller --config FILE [--reset [--force]]
 *
 * Start-up order matters: the lock file (one controller per segment), the
 * segment (created or re-attached), the consumer groups (before producers
 * start, so every group sees every record), the counters, then the sockets
 * and HTTP, then the check loop. Stop (SIGTERM, SIGINT) undoes it in reverse;
 * the segment and everything in it stay for the next controller.
 */
#include "control.h"
#include "ctl.h"
#include "events.h"
#include "http.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus-controller --config FILE [--reset [--force]]\n"
            "Creates or re-attaches the segment named in FILE, creates its consumer groups,\n"
            "reclaims dead members, computes memory pressure and publishes actions on\n"
            "ipc://RUN_DIR/SEGMENT.events, answers JSON requests on ipc://RUN_DIR/SEGMENT.control\n"
            "and serves /metrics, /healthz and /api/... on controller.http.\n"
            "  --reset   replace the segment with a fresh one (refused while members live)\n"
            "  --force   with --reset: replace it even with live members\n"
            "Signals: SIGHUP reloads FILE; SIGTERM/SIGINT stop.\n"
            "Environment: SHMBUS_MEMORY_PRESSURE_FILE names the PSI file of the system\n"
            "pressure source (default /proc/pressure/memory; a cgroup's memory.pressure).\n");
}

/* SIGTERM, SIGINT and SIGHUP are blocked in every thread (the mask is set
 * before any thread exists and inherited) and taken synchronously by the
 * check loop with sigtimedwait(), which is also its sleep: no asynchronous
 * handler, nothing to make async-signal-safe, and a stop or reload is acted
 * on at once whatever the check interval. */
static void handled_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGHUP);
}

static int setup_signals(void)
{
    sigset_t set;
    handled_signals(&set);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    return sigaction(SIGPIPE, &sa, NULL);
}

/* Restores what a previous controller left in the segment: the level (so
 * hysteresis continues) and why producers are paused. */
static void adopt_segment_state(controller *c)
{
    shm_ring_stats rs;
    shm_ring_stats_get(c->seg, &rs);
    c->mon.last_reclaimed = rs.members_reclaimed;
    pthread_mutex_lock(&c->lock);
    c->view.level = rs.pressure_level < PRESSURE_LEVELS ? (int)rs.pressure_level : PRESSURE_NONE;
    c->paused_applied = rs.paused ? 1 : 0;
    c->paused_by_operator = shm_counter_get(c->counters.paused_by_operator) != 0;
    c->paused_by_pressure = c->view.level == PRESSURE_CRITICAL && rs.paused;
    if (rs.paused || c->view.level != PRESSURE_NONE)
        log_info("segment state adopted: pressure %s, producers %s%s",
                 pressure_level_name(c->view.level), rs.paused ? "paused" : "running",
                 c->paused_by_operator ? " (by the operator)" : "");
    ctl_apply_pause_locked(c);
    pthread_mutex_unlock(&c->lock);
}

/* Waits for a handled signal until deadline_ms (monotonic). Returns the
 * signal, or 0 when the deadline passed. */
static int wait_signal_until(const sigset_t *set, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - ctl_now_ms();
        if (left <= 0)
            return 0;
        struct timespec ts = {.tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig > 0)
            return sig;
        if (errno != EINTR && errno != EAGAIN)
            return 0;
    }
}

static void run(controller *c)
{
    sigset_t set;
    handled_signals(&set);
    int64_t next = ctl_now_ms();
    for (;;) {
        monitor_tick(c);
        pthread_mutex_lock(&c->lock);
        uint32_t interval = c->set.check_interval_ms;
        pthread_mutex_unlock(&c->lock);
        next += interval;
        int64_t now = ctl_now_ms();
        if (next < now - (int64_t)interval) /* fell behind (suspend, overload): do not burst */
            next = now;
        int sig;
        while ((sig = wait_signal_until(&set, next)) != 0) {
            if (sig != SIGHUP) {
                log_info("%s received", sig == SIGTERM ? "SIGTERM" : "SIGINT");
                return;
            }
            char err[4096];
            ctl_reload(c, "SIGHUP", err, sizeof err);
        }
    }
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    bool reset = false, force = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--reset") == 0) {
            reset = true;
        } else if (strcmp(argv[i], "--force") == 0) {
            force = true;
        } else {
            fprintf(stderr, "shmbus-controller: unknown or incomplete option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!config_path || (force && !reset)) {
        usage(stderr);
        return 2;
    }
    log_init("controller");
    if (setup_signals() != 0) {
        log_error("cannot install signal handlers: %s", strerror(errno));
        return 1;
    }

    char err[8192];
    config *cfg = NULL;
    if (config_load(config_path, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "shmbus-controller: %s\n", err);
        return 2;
    }
    controller *c = calloc(1, sizeof *c);
    if (!c) {
        config_free(&cfg);
        log_error("out of memory");
        return 1;
    }
    int status = 1;
    pthread_mutex_init(&c->lock, NULL);
    c->lock_fd = -1;
    c->paused_applied = -1;
    c->cfg = cfg;
    ctl_settings_from_config(cfg, &c->set);
    c->started_ms = ctl_now_ms();
    c->started_wall_s = ctl_wall_ns() / 1000000000;
    snprintf(c->run_dir, sizeof c->run_dir, "%s", cfg->paths.run_dir);
    snprintf(c->http_addr, sizeof c->http_addr, "%s", cfg->controller.http);
    const char *psi = getenv("SHMBUS_MEMORY_PRESSURE_FILE");
    snprintf(c->psi_path, sizeof c->psi_path, "%s", psi && *psi ? psi : PROCMEM_PSI_DEFAULT);
    if (snprintf(c->events_url, sizeof c->events_url, "ipc://%s/%s.events", c->run_dir,
                 cfg->segment.name) >= (int)sizeof c->events_url ||
        snprintf(c->control_url, sizeof c->control_url, "ipc://%s/%s.control", c->run_dir,
                 cfg->segment.name) >= (int)sizeof c->control_url) {
        log_error("paths.run_dir is too long for socket paths");
        goto out;
    }
    monitor_init(c);

    if (ctl_take_lock(c, cfg->segment.name) != 0)
        goto out;
    if (ctl_open_segment(c, cfg, reset, force) != 0)
        goto out_lock;
    if (ctl_create_groups(c, cfg) != 0)
        goto out_segment;
    ctl_counters_open(c);
    int rv = events_open(&c->ev, c->events_url);
    if (rv != 0) {
        log_error("events: cannot listen on %s: %s", c->events_url, nng_strerror(rv));
        goto out_segment;
    }
    adopt_segment_state(c);
    monitor_tick(c); /* readers see a full view from their first request */
    if ((rv = control_start(c)) != 0) {
        log_error("control: cannot listen on %s: %s", c->control_url, nng_strerror(rv));
        goto out_events;
    }
    if (http_start(c, c->http_addr) != 0)
        goto out_control;
    log_info("running: events %s, control %s, http %s, check every %u ms", c->events_url,
             c->control_url, c->http_addr, c->set.check_interval_ms);

    run(c);
    log_info("stopping");
    status = 0;

    http_stop(c);
out_control:
    control_stop(c);
out_events:
    events_close(&c->ev);
out_segment:
    monitor_free(c);
    shm_segment_close(&c->seg);
out_lock:
    ctl_release_lock(c);
out:
    config_free(&c->cfg);
    pthread_mutex_destroy(&c->lock);
    free(c);
    return status;
}

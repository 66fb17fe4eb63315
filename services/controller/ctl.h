/*
 * ctl.h — shmbus-controller's shared state and the functions its modules
 * offer each other (private to services/controller).
 *
 * Threads and ownership:
 *  - the main thread runs the monitor (monitor.c) every check interval and
 *    owns `mon` alone;
 *  - the control thread (control.c) answers nng REQ/REP requests;
 *  - nng's own threads run the HTTP handlers (http.c, metrics.c).
 * Everything marked (L) is guarded by `lock`. The monitor computes a fresh
 * view outside the lock and copies it in under the lock; readers build their
 * responses from that copy, so a response is one consistent snapshot.
 * Fields not marked are set at start-up, before any thread starts, and never
 * change afterwards. The segment itself is read lock-free (libshm).
 */
#ifndef SHMBUS_CTL_H
#define SHMBUS_CTL_H

#include <shmbus/shm.h>

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <nng/nng.h>

#include "config.h"
#include "leak.h"
#include "pressure.h"
#include "procmem.h"

#define CTL_MAX_MEMBERS 256 /* libshm's registry holds at most 256 */
#define CTL_MAX_ROLES 16
#define CTL_MAX_DEVICES 64 /* devices listed in the pressure view */
#define CTL_RATE_SAMPLES 128
#define CTL_RATE_WINDOW_MS 10000    /* overflow rates are measured over this window */
#define CTL_DEVICE_SAMPLE 4096      /* newest records sampled for device shares */
#define CTL_REQUEST_MAX (64 * 1024) /* largest control request or HTTP body accepted */
#define CTL_ADDR_MAX 256

/* Settings derived from the config; replaced as a whole on reload. */
typedef struct ctl_settings {
    pressure_thresholds thr;
    uint32_t check_interval_ms;
    uint64_t rss_limit_bytes; /* 0 = off */
    double device_quota;      /* 0 = off */
    uint32_t leak_window_s;
    double leak_growth_mb_per_min;
    char roles[CTL_MAX_ROLES][SHM_NAME_MAX + 1];
    int n_roles;
} ctl_settings;

/* One registry member as the monitor last saw it. */
typedef struct ctl_member {
    shm_member_stats s;
    bool mem_known; /* /proc figures read (the process may be gone) */
    procmem_rss mem;
    bool growth_known; /* enough samples for a trend */
    double growth_mb_per_min;
    bool leak_suspect;
} ctl_member;

typedef struct ctl_group {
    shm_group_stats s;
    double overflow_rate_pct; /* lost / (consumed + lost) over the rate window */
} ctl_group;

typedef struct ctl_device_share {
    char name[CONFIG_NAME_MAX + 1]; /* config name, or the numeric id */
    uint32_t id;
    double traffic; /* share of the newest records in the ring */
    double share;   /* estimated share of the ring's slots held by this device */
    double value;   /* share / device_quota */
} ctl_device_share;

/* The pressure sources of one check, each a ratio (1 = a limit reached). */
typedef struct ctl_sources {
    double ring; /* worst consumer group's utilization */
    char ring_group[SHM_NAME_MAX + 1];
    bool device_on;
    double device;
    char device_name[CONFIG_NAME_MAX + 1];
    bool member_on;
    double member;
    char member_name[SHM_NAME_MAX + 16];
    bool system_on; /* /proc/pressure/memory readable */
    double system;
} ctl_sources;

/* What the monitor saw at its last check. */
typedef struct ctl_view {
    int64_t tick_ms; /* monotonic; 0 before the first check */
    uint64_t ticks;
    shm_ring_stats ring;
    uint64_t used_slots;      /* head - slowest tail, capped at the ring size */
    double overflow_rate_pct; /* overflow events per claim attempt over the rate window */
    ctl_group groups[SHM_MAX_GROUPS];
    int n_groups;
    ctl_member members[CTL_MAX_MEMBERS];
    int n_members;
    ctl_device_share devices[CTL_MAX_DEVICES];
    int n_devices;
    uint64_t device_sampled; /* records the last device sample looked at */
    ctl_sources src;
    double value;    /* the largest source */
    char source[16]; /* "ring", "device", "member", "system" */
    int level;       /* enum pressure_level */
    int64_t level_since_ms;
    uint64_t transitions;
    uint64_t reclaimed; /* members the controller reclaimed since it started */
} ctl_view;

/* Handles of the controller's own named counters (NULL when the counter
 * region is full: shm_counter_add ignores NULL). */
typedef struct ctl_counters {
    shm_counter *transitions[PRESSURE_LEVELS][PRESSURE_LEVELS];
    shm_counter *joins, *left, *died, *leak_warnings, *checks;
    shm_counter *requests_ok, *requests_error, *reloads_ok, *reloads_error;
    shm_counter *paused_by_operator; /* gauge: survives a controller restart */
} ctl_counters;

/* Monitor-private bookkeeping (main thread only). */
typedef struct mon_known { /* a member we have logged as joined */
    uint32_t index;
    int32_t pid;
    uint64_t start_time;
    int64_t joined_ns;
    uint32_t role;
    char name[SHM_NAME_MAX + 1];
    char group[SHM_NAME_MAX + 1];
    bool seen;     /* in this check's snapshot */
    bool departed; /* its death was logged (it may linger as DEAD a while) */
} mon_known;

typedef struct mon_process { /* one process (several members may share it) */
    int32_t pid;
    uint64_t start_time;
    leak_window leak;
    int64_t last_sample_ms;
    bool mem_known;
    procmem_rss mem;
    bool growth_known;
    double growth_mb_per_min;
    bool warned;
    bool seen;
} mon_process;

typedef struct mon_rate_sample {
    int64_t t_ms;
    uint64_t records_put, full_rejections, overflow_events;
    uint64_t consumed[SHM_MAX_GROUPS], lost[SHM_MAX_GROUPS];
    char group[SHM_MAX_GROUPS][SHM_NAME_MAX + 1];
} mon_rate_sample;

typedef struct monitor {
    mon_known known[CTL_MAX_MEMBERS];
    int n_known;
    mon_process procs[CTL_MAX_MEMBERS];
    int n_procs;
    mon_rate_sample rates[CTL_RATE_SAMPLES];
    uint32_t rate_head, rate_count;
    uint64_t last_reclaimed;  /* libshm's members_reclaimed after our last reclaim */
    int psi_rc;               /* last result of reading psi_path (logged when it changes) */
    bool psi_checked;         /* psi_rc is set */
    shm_record *peek_records; /* device sampling */
    uint8_t *peek_buf;
    size_t peek_cap;
    shm_member_stats snap[CTL_MAX_MEMBERS];
    ctl_view next; /* built here, then copied into ctl.view */
} monitor;

typedef struct events events; /* nng PUB (events.c) */
typedef struct http_server http_server;

typedef struct controller {
    pthread_mutex_t lock;
    config *cfg;             /* (L) replaced by reload */
    ctl_settings set;        /* (L) */
    ctl_view view;           /* (L) */
    bool paused_by_operator; /* (L) */
    bool paused_by_pressure; /* (L) */
    int paused_applied;      /* (L) what the segment flag was last set to; -1 unknown */

    shm_segment *seg;
    shm_segment_info info;
    char run_dir[PATH_MAX];
    char lock_path[PATH_MAX];
    int lock_fd;
    char events_url[PATH_MAX + 16];
    char control_url[PATH_MAX + 16];
    char http_addr[CTL_ADDR_MAX];
    char psi_path[PATH_MAX]; /* PSI file of the system source (main.c) */
    int64_t started_ms;      /* monotonic */
    int64_t started_wall_s;  /* epoch */
    ctl_counters counters;
    events *ev;
    nng_socket rep;
    bool rep_open;
    pthread_t control_thread;
    bool control_running;
    http_server *http;
    monitor mon;
} controller;

/* ---- time */
int64_t ctl_now_ms(void);  /* CLOCK_MONOTONIC */
int64_t ctl_wall_ns(void); /* CLOCK_REALTIME */

/* ---- setup.c: start-up, segment, groups, settings, reload */

/* Derives settings from a loaded config. */
void ctl_settings_from_config(const config *cfg, ctl_settings *out);

/* Creates every group the config implies (groups_ensure() in
 * services/common: writer, stats, export-pg / export-mqtt when configured)
 * so producers started afterwards are seen by all of them. Returns 0 or a
 * negative SHM_E code. */
int ctl_create_groups(controller *c, const config *cfg);

/* Creates the run directory (0750) if missing and takes the controller's
 * lock file there (flock, released by the kernel when we die). Returns 0, or
 * -1 with the reason logged. */
int ctl_take_lock(controller *c, const char *segment);
void ctl_release_lock(controller *c);

/* Opens or creates the segment from cfg. reset/force ask for a fresh one. */
int ctl_open_segment(controller *c, const config *cfg, bool reset, bool force);

/* Re-reads the config file (SIGHUP, control "reload"): new settings, new
 * groups, publishes {"cmd":"reload"}. Returns 0, or -1 with the reason in
 * err (the old config stays in force). */
int ctl_reload(controller *c, const char *why, char *err, size_t errlen);

/* ---- ctl_counters.c */
void ctl_counters_open(controller *c);
/* Zeroes every named counter (not gauges) whose name starts with prefix
 * ("" = all). Returns how many. */
int ctl_counters_reset(controller *c, const char *prefix);

/* ---- monitor.c: one check */
void monitor_init(controller *c);
void monitor_free(controller *c);
void monitor_tick(controller *c);

/* Applies paused_by_operator || paused_by_pressure to the segment and
 * publishes pause/resume when it changes. Call with lock held. */
void ctl_apply_pause_locked(controller *c);

/* ---- members.c: registry watch, memory, leak trend (monitor thread) */

/* Logs and counts joins and departures; call before this check's reclaim. */
void members_track(controller *c);
/* Fills v->members (a fresh snapshot) with memory figures and the leak watch,
 * and the member pressure source. */
void members_update(controller *c, const ctl_settings *set, int64_t now_ms, ctl_view *v);

/* Whether a live member satisfies a required role: its group is `role`, its
 * name is `role` or starts with `role` followed by one of "-_.:/@", or role
 * names its kind ("producer", "consumer"). */
bool ctl_role_satisfied(const ctl_view *v, const char *role);
const char *ctl_role_name(uint32_t role);

/* ---- devices.c: each device's share of the ring (monitor thread) */
void devices_update(controller *c, const ctl_settings *set, ctl_view *v);

#endif

/*
 * device.h — one device thread: its plan, its link (libmodbus context or
 * RTU-over-TCP socket, never shared), its schedule, per-unit breakers,
 * reconnect backoff, per-tag deadband state and counters.
 *
 * Everything here is owned by the device's thread, except `stop` (set by
 * the main thread) and `interval_ms` (set by the control thread): atomics.
 */
#ifndef SHMBUS_POLLER_DEVICE_H
#define SHMBUS_POLLER_DEVICE_H

#include "config.h"
#include "health.h"
#include "link.h"
#include "plan.h"
#include "poller.h"

#include <pthread.h>
#include <shmbus/shm.h>
#include <stdatomic.h>
#include <stdbool.h>

/* TagValue.flags set by the poller (documented in README.md). */
enum {
    TV_FLAG_BREAKER_OPEN = 1 << 0, /* not asked: the unit's circuit breaker is open */
    TV_FLAG_DISCONNECTED = 1 << 1, /* not asked: no connection (reconnect backoff) */
    TV_FLAG_HEARTBEAT = 1 << 2,    /* within the deadband, sent because max_silence_s ran out */
};

typedef struct device_counters {
    shm_counter *requests, *records, *dropped, *overruns, *reconnects, *breaker_opens;
    shm_counter *err_timeout, *err_exception, *err_bad_frame, *err_connection, *err_decode;
    shm_counter *rtt_us_sum, *rtt_us_last, *rtt_us_max, *connected, *registers;
} device_counters;

typedef struct tag_state {
    double last_value;
    int64_t last_pub_ns; /* CLOCK_MONOTONIC */
    uint8_t last_quality;
    uint8_t published;
} tag_state;

typedef struct unit_state {
    uint8_t unit_id;
    breaker brk;
    bool asked, answered, timed_out; /* during the current cycle */
} unit_state;

typedef struct device_rt {
    poller *owner;
    const config_device *cfg;
    size_t slot; /* publisher pool slot */
    plan plan;
    mb_link *link;
    backoff backoff;
    unit_state *units;
    size_t n_units;
    int16_t unit_index[256]; /* unit id -> units[], -1 when unused */
    tag_state *tags;
    _Atomic uint32_t *interval_ms; /* per poll group */
    int64_t *next_due_ns;          /* per poll group, CLOCK_MONOTONIC */
    uint8_t *group_best_priority;  /* per poll group */
    device_counters ctr;
    bool need_flush;
    bool was_paused;
    shm_tag_value *out; /* scratch: one record per tag of a request */
    uint16_t regs[125];
    uint8_t bits[2000];
    atomic_int stop;
    pthread_t thread;
    bool started;
} device_rt;

/* Creates the runtime of d (plan, link, counters) and starts its thread.
 * Returns 0 or a negative errno / libshm code. */
int device_start(poller *p, const config_device *d, size_t slot, device_rt **out);

/* Asks the thread to stop, joins it, frees everything; clears *dev. */
void device_stop(device_rt **dev);

/* Runs every due request of poll group g once (device thread). */
void device_run_group(device_rt *dev, uint32_t g);

/* Opens the device's named counters. Returns 0 or a libshm code. */
int device_counters_open(shm_segment *seg, const char *device, device_counters *c);

int64_t device_mono_ns(void);
int64_t device_real_ns(void);

#endif

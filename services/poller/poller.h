/*
 * poller.h — the poller process: its configuration, segment, publisher,
 * the steering state the controller sets, and the running device threads.
 *
 * Threads: main (signals, reload, heartbeats), one per device, one for the
 * controller's SUB socket. The steering fields are atomics written by the
 * control thread and read by device threads once per scheduling step
 * (relaxed: each is an independent setting, no data hangs off them).
 * `devices` changes only on reload, under devices_mu, which the control
 * thread also takes to find a device by name.
 */
#ifndef SHMBUS_POLLER_POLLER_H
#define SHMBUS_POLLER_POLLER_H

#include "config.h"
#include "publish.h"

#include <pthread.h>
#include <shmbus/shm.h>
#include <stdatomic.h>

struct device_rt;

typedef struct poller_steering {
    atomic_int paused;          /* {"cmd":"pause"} / resume */
    atomic_int pressure;        /* enum pressure_level */
    atomic_uint min_priority;   /* tags with priority >= this are low priority */
    atomic_uint slow_factor;    /* moderate pressure: low-priority groups this many times slower */
    atomic_int reload_requested; /* {"cmd":"reload"}; main thread acts on it */
} poller_steering;

typedef struct poller {
    config *cfg;
    shm_segment *seg;
    publisher pub;
    poller_steering steer;
    pthread_mutex_t devices_mu;
    struct device_rt **devices;
    size_t n_devices;
    shm_counter *control_messages, *control_errors, *reloads, *reload_errors;
    /* control thread */
    pthread_t control_thread;
    int control_running;
    atomic_int control_stop;
    void *control_socket; /* nng_socket, boxed to keep nng out of this header */
} poller;

/* Publishes the tag catalog of cfg (and clears entries of ids no longer
 * used, below old_max). Returns 0 or the first libshm error. */
int poller_publish_catalog(poller *p, const config *cfg, uint32_t old_max_id);

/* Starts one thread per device of p->cfg. Returns 0 or a negative code. */
int poller_start_devices(poller *p);
/* Stops and frees them (each within about its response timeout). */
void poller_stop_devices(poller *p);

#endif

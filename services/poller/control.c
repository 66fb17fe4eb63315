/*
 * control.c — the controller's commands: an nng SUB socket dialed to
 * ipc://<run_dir>/<segment>.events (nng redials by itself while the
 * controller is away), read by one thread that applies each message to
 * the poller's steering state (see poller.h for who reads it how).
 */
#include "control.h"

#include "device.h"
#include "log.h"
#include "poller.h"

#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void apply_set_interval(poller *p, const control_msg *m)
{
    pthread_mutex_lock(&p->devices_mu);
    bool found = false;
    for (size_t i = 0; i < p->n_devices && !found; i++) {
        device_rt *d = p->devices[i];
        if (strcmp(d->cfg->name, m->device) != 0)
            continue;
        for (size_t g = 0; g < d->cfg->n_poll_groups; g++) {
            if (strcmp(d->cfg->poll_groups[g].name, m->group) == 0) {
                atomic_store_explicit(&d->interval_ms[g], m->interval_ms, memory_order_relaxed);
                found = true;
                break;
            }
        }
    }
    pthread_mutex_unlock(&p->devices_mu);
    if (found) {
        log_info("control: device %s group %s: interval %u ms", m->device, m->group,
                 m->interval_ms);
    } else {
        shm_counter_add(p->control_errors, 1);
        log_warn("control: set_interval: no poll group %s of device %s", m->group, m->device);
    }
}

static void apply(poller *p, const control_msg *m)
{
    poller_steering *s = &p->steer;
    switch (m->cmd) {
    case CTL_PAUSE:
        atomic_store_explicit(&s->paused, 1, memory_order_relaxed);
        log_info("control: polling paused");
        break;
    case CTL_RESUME:
        atomic_store_explicit(&s->paused, 0, memory_order_relaxed);
        log_info("control: polling resumed");
        break;
    case CTL_RELOAD:
        atomic_store_explicit(&s->reload_requested, 1, memory_order_relaxed);
        break;
    case CTL_SET_INTERVAL:
        apply_set_interval(p, m);
        break;
    case CTL_PRESSURE: {
        int before = atomic_exchange_explicit(&s->pressure, m->level, memory_order_relaxed);
        atomic_store_explicit(&s->min_priority, m->min_priority, memory_order_relaxed);
        atomic_store_explicit(&s->slow_factor, m->slow_factor, memory_order_relaxed);
        if (before != m->level)
            log_info("control: pressure %s -> %s (low priority: >= %u, slow factor %u)",
                     pressure_level_name(before), pressure_level_name(m->level),
                     m->min_priority, m->slow_factor);
        break;
    }
    default:
        break;
    }
}

/* PUB/SUB loses what is published while we are not connected (at start,
 * after a controller restart). The controller also stores the level in the
 * segment before publishing it: reconcile with that at every receive
 * timeout, so a missed message is made up for within a fraction of a second.
 * (A pause needs no such help: libshm refuses claims while paused.) */
static void reconcile_pressure(poller *p, int *last_seen)
{
    shm_ring_stats rs;
    if (shm_ring_stats_get(p->seg, &rs) != 0 || rs.pressure_level > PRESSURE_CRITICAL)
        return;
    int level = (int)rs.pressure_level;
    /* Act on changes of the segment's level only: a message published
     * straight to us (nngcat, tests) is not overridden by a level nobody
     * changed. */
    if (level == *last_seen)
        return;
    *last_seen = level;
    if (atomic_load_explicit(&p->steer.pressure, memory_order_relaxed) == level)
        return;
    char text[64];
    int n = snprintf(text, sizeof text, "{\"cmd\":\"pressure\",\"level\":\"%s\"}",
                     pressure_level_name(level));
    control_msg m;
    char err[200];
    if (control_parse(text, (size_t)n, &m, err, sizeof err) == 0) {
        log_info("control: pressure level %s read from the segment", pressure_level_name(level));
        apply(p, &m);
    }
}

static void *control_main(void *arg)
{
    poller *p = arg;
    nng_socket *sock = p->control_socket;
    int segment_level = PRESSURE_NONE;
    while (!atomic_load_explicit(&p->control_stop, memory_order_relaxed)) {
        reconcile_pressure(p, &segment_level);
        char *buf = NULL;
        size_t len = 0;
        int rc = nng_recv(*sock, &buf, &len, NNG_FLAG_ALLOC);
        if (rc == NNG_ETIMEDOUT)
            continue;
        if (rc != 0) {
            if (rc != NNG_ECLOSED)
                log_warn("control: receive: %s", nng_strerror(rc));
            break;
        }
        control_msg m;
        char err[200];
        shm_counter_add(p->control_messages, 1);
        if (control_parse(buf, len, &m, err, sizeof err) < 0) {
            shm_counter_add(p->control_errors, 1);
            log_warn("control: message refused: %s", err);
        } else {
            apply(p, &m);
        }
        nng_free(buf, len);
    }
    return NULL;
}

int control_start(poller *p, const char *url)
{
    nng_socket *sock = calloc(1, sizeof *sock);
    if (!sock)
        return -1;
    int rc = nng_sub0_open(sock);
    if (rc != 0)
        goto fail_free;
    nng_socket_set(*sock, NNG_OPT_SUB_SUBSCRIBE, "", 0);
    nng_socket_set_ms(*sock, NNG_OPT_RECVTIMEO, 200);
    nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, CONTROL_MSG_MAX + 1);
    nng_socket_set_ms(*sock, NNG_OPT_RECONNMINT, 100);
    nng_socket_set_ms(*sock, NNG_OPT_RECONNMAXT, 250); /* cheap on ipc; quick after a controller restart */
    /* Non-blocking dial: the controller may start after us; nng redials. */
    rc = nng_dial(*sock, url, NULL, NNG_FLAG_NONBLOCK);
    if (rc != 0)
        goto fail_close;
    p->control_socket = sock;
    atomic_store(&p->control_stop, 0);
    rc = pthread_create(&p->control_thread, NULL, control_main, p);
    if (rc != 0) {
        p->control_socket = NULL;
        goto fail_close;
    }
    p->control_running = 1;
    log_info("control: listening to %s", url);
    return 0;
fail_close:
    nng_close(*sock);
fail_free:
    log_error("control: cannot subscribe to %s: %s", url, rc ? nng_strerror(rc) : "thread");
    free(sock);
    return -1;
}

void control_stop(poller *p)
{
    if (!p->control_running)
        return;
    atomic_store(&p->control_stop, 1);
    pthread_join(p->control_thread, NULL);
    nng_socket *sock = p->control_socket;
    nng_close(*sock);
    free(sock);
    p->control_socket = NULL;
    p->control_running = 0;
}

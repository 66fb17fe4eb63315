/*
 * device.c — a device thread's life: set-up, the scheduler that drives all
 * poll groups of the device, steering by the controller (pause, pressure,
 * intervals), and tear-down. What one request does is in device_request.c.
 *
 * Scheduling: each poll group has a due time on the monotonic clock. The
 * thread runs the earliest due group, then moves its due time one interval
 * on. When a run ends after the next due time, the cycles that could not
 * start on time are counted as overruns and skipped (never run in a burst
 * to catch up). Sleeps are cut into slices of at most 50 ms so a stop,
 * a pause or a new interval takes effect quickly.
 */
#include "device.h"

#include "control.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLEEP_SLICE_NS 50000000LL

int64_t device_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t device_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_until(int64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = deadline_ns / 1000000000, .tv_nsec = deadline_ns % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

static bool group_is_low_priority(const device_rt *dev, uint32_t g)
{
    return dev->group_best_priority[g] >= atomic_load_explicit(&dev->owner->steer.min_priority,
                                                              memory_order_relaxed);
}

static int64_t effective_interval_ns(const device_rt *dev, uint32_t g)
{
    int64_t ms = atomic_load_explicit(&dev->interval_ms[g], memory_order_relaxed);
    int pressure = atomic_load_explicit(&dev->owner->steer.pressure, memory_order_relaxed);
    if (pressure >= PRESSURE_MODERATE && group_is_low_priority(dev, g))
        ms *= atomic_load_explicit(&dev->owner->steer.slow_factor, memory_order_relaxed);
    return ms * 1000000;
}

static bool polling_paused(const device_rt *dev)
{
    return atomic_load_explicit(&dev->owner->steer.paused, memory_order_relaxed) ||
           atomic_load_explicit(&dev->owner->steer.pressure, memory_order_relaxed) >=
               PRESSURE_CRITICAL;
}

/* After a run of group g that started at `due`: next due time, overruns. */
static void reschedule(device_rt *dev, uint32_t g, int64_t now)
{
    int64_t interval = effective_interval_ns(dev, g);
    int64_t next = dev->next_due_ns[g] + interval;
    if (next <= now) {
        int64_t missed = (now - next) / interval + 1;
        shm_counter_add(dev->ctr.overruns, (uint64_t)missed);
        next += missed * interval;
    }
    dev->next_due_ns[g] = next;
}

static void *device_main(void *arg)
{
    device_rt *dev = arg;
    while (!atomic_load_explicit(&dev->stop, memory_order_relaxed)) {
        int64_t now = device_mono_ns();
        if (polling_paused(dev)) {
            dev->was_paused = true;
            sleep_until(now + SLEEP_SLICE_NS);
            continue;
        }
        if (dev->was_paused) { /* paused time is not overrun time */
            for (size_t g = 0; g < dev->plan.n_groups; g++)
                dev->next_due_ns[g] = now;
            dev->was_paused = false;
        }
        uint32_t best = 0;
        for (uint32_t g = 1; g < dev->plan.n_groups; g++)
            if (dev->next_due_ns[g] < dev->next_due_ns[best])
                best = g;
        if (dev->plan.n_groups == 0 || dev->next_due_ns[best] > now) {
            int64_t wake = dev->plan.n_groups ? dev->next_due_ns[best] : now + SLEEP_SLICE_NS;
            sleep_until(wake < now + SLEEP_SLICE_NS ? wake : now + SLEEP_SLICE_NS);
            continue;
        }
        device_run_group(dev, best);
        reschedule(dev, best, device_mono_ns());
    }
    return NULL;
}

static void device_free(device_rt *dev)
{
    if (!dev)
        return;
    link_destroy(&dev->link);
    plan_free(&dev->plan);
    free(dev->units);
    free(dev->tags);
    free(dev->interval_ms);
    free(dev->next_due_ns);
    free(dev->group_best_priority);
    free(dev->out);
    free(dev);
}

static int device_setup(device_rt *dev)
{
    const config_device *d = dev->cfg;
    size_t ng = d->n_poll_groups ? d->n_poll_groups : 1;
    dev->link = link_new(d);
    dev->tags = calloc(d->n_tags ? d->n_tags : 1, sizeof *dev->tags);
    dev->interval_ms = calloc(ng, sizeof *dev->interval_ms);
    dev->next_due_ns = calloc(ng, sizeof *dev->next_due_ns);
    dev->group_best_priority = calloc(ng, sizeof *dev->group_best_priority);
    dev->out = calloc(d->n_tags ? d->n_tags : 1, sizeof *dev->out);
    dev->units = calloc(d->n_tags ? d->n_tags : 1, sizeof *dev->units);
    if (!dev->link || !dev->tags || !dev->interval_ms || !dev->next_due_ns ||
        !dev->group_best_priority || !dev->out || !dev->units)
        return -ENOMEM;
    if (plan_build(d, &dev->plan) < 0)
        return -ENOMEM;
    int64_t now = device_mono_ns();
    for (size_t g = 0; g < d->n_poll_groups; g++) {
        atomic_init(&dev->interval_ms[g], d->poll_groups[g].interval_ms);
        dev->next_due_ns[g] = now;
        dev->group_best_priority[g] = 255;
    }
    for (size_t i = 0; i < d->n_tags; i++) {
        uint8_t *best = &dev->group_best_priority[d->tags[i].poll_group];
        if (d->tags[i].priority < *best)
            *best = d->tags[i].priority;
    }
    memset(dev->unit_index, 0xff, sizeof dev->unit_index);
    for (size_t i = 0; i < d->n_tags; i++) {
        uint8_t u = d->tags[i].unit_id;
        if (dev->unit_index[u] >= 0)
            continue;
        dev->unit_index[u] = (int16_t)dev->n_units;
        unit_state *us = &dev->units[dev->n_units++];
        us->unit_id = u;
        breaker_init(&us->brk, d->breaker_failures, d->breaker_open_s);
    }
    backoff_init(&dev->backoff, d->reconnect_min_ms, d->reconnect_max_ms,
                 (uint64_t)now ^ ((uint64_t)d->id << 32));
    if (device_counters_open(dev->owner->seg, d->name, &dev->ctr) < 0) {
        log_error("device %s: counters: %s", d->name, shm_last_error());
        return -ENOSPC;
    }
    return 0;
}

int device_start(poller *p, const config_device *d, size_t slot, device_rt **out)
{
    *out = NULL;
    device_rt *dev = calloc(1, sizeof *dev);
    if (!dev)
        return -ENOMEM;
    dev->owner = p;
    dev->cfg = d;
    dev->slot = slot;
    atomic_init(&dev->stop, 0);
    int rc = device_setup(dev);
    if (rc < 0)
        goto fail;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* Small stacks: 100 device threads must fit the 20 MB resident goal
     * (only touched pages count, but keep the reservation modest too). */
    pthread_attr_setstacksize(&attr, 256 * 1024);
    rc = -pthread_create(&dev->thread, &attr, device_main, dev);
    pthread_attr_destroy(&attr);
    if (rc < 0)
        goto fail;
    dev->started = true;
    log_info("device %s: %zu tags in %zu requests (%zu poll groups), %s %s:%u", d->name,
             d->n_tags, dev->plan.n_requests, dev->plan.n_groups,
             config_transport_name(d->transport),
             d->transport == CONFIG_RTU ? d->serial.device : d->host,
             d->transport == CONFIG_RTU ? d->serial.baud : d->port);
    *out = dev;
    return 0;
fail:
    log_error("device %s: cannot start: %s", d->name, strerror(-rc));
    device_free(dev);
    return rc;
}

void device_stop(device_rt **pdev)
{
    device_rt *dev = *pdev;
    if (!dev)
        return;
    atomic_store_explicit(&dev->stop, 1, memory_order_relaxed);
    if (dev->started)
        pthread_join(dev->thread, NULL);
    shm_counter_set(dev->ctr.connected, 0);
    device_free(dev);
    *pdev = NULL;
}

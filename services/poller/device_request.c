/*
 * device_request.c — one poll group run of a device thread: for each
 * request, make sure there is a connection (reconnect with backoff), skip
 * units whose breaker is open, read, and turn the outcome into records:
 *
 *   data            GOOD records (DECODE_ERROR for a tag that does not decode)
 *   exception       DEVICE_EXCEPTION records with the exception code
 *   timeout         COMM_FAIL records; flush before the next request; the
 *                   unit's other requests of this cycle are not sent
 *   bad frame       BAD records; TCP reconnects (the transaction ids are out
 *                   of step), RTU flushes
 *   connection lost COMM_FAIL records; reconnect at once, then with backoff
 *   not connected / breaker open
 *                   COMM_FAIL records flagged DISCONNECTED / BREAKER_OPEN
 *
 * All records of one request carry the request's timestamp (the poll
 * instant, CLOCK_REALTIME, taken just before the request is sent).
 */
#include "device.h"

#include "control.h"
#include "log.h"
#include "tagcodec.h"

#include <math.h>
#include <stdio.h>
#include <time.h>

static bool tag_is_shed(const device_rt *dev, const config_tag *t)
{
    const poller_steering *s = &dev->owner->steer;
    return atomic_load_explicit(&s->pressure, memory_order_relaxed) >= PRESSURE_HIGH &&
           t->priority >= atomic_load_explicit(&s->min_priority, memory_order_relaxed);
}

/* Deadband and maximum silence: should this GOOD value be published? */
static bool passes_deadband(const config_tag *t, const tag_state *s, double value, int64_t now,
                            uint16_t *flags)
{
    if (t->deadband <= 0 || !s->published || s->last_quality != SHM_Q_GOOD)
        return true;
    if (fabs(value - s->last_value) > t->deadband)
        return true;
    if (t->max_silence_s && now - s->last_pub_ns >= (int64_t)t->max_silence_s * 1000000000) {
        *flags |= TV_FLAG_HEARTBEAT;
        return true;
    }
    return false;
}

static void publish(device_rt *dev, size_t n)
{
    if (n == 0)
        return;
    publish_result res;
    publisher_put(&dev->owner->pub, dev->slot, dev->out, n, &dev->stop, &res);
    shm_counter_add(dev->ctr.records, res.published);
    if (res.dropped) {
        shm_counter_add(dev->ctr.dropped, res.dropped);
        log_debug("device %s: %u records dropped: %s", dev->cfg->name, res.dropped,
                  shm_strerror(res.last_error));
    }
}

/* Records for every (non-shed) tag of r with one bad quality. */
static void publish_bad(device_rt *dev, const plan_request *r, int64_t ts, uint8_t quality,
                        uint8_t exception, uint16_t flags)
{
    size_t n = 0;
    int64_t now = device_mono_ns();
    for (uint32_t i = 0; i < r->n_items; i++) {
        uint32_t ti = dev->plan.items[r->first_item + i].tag;
        const config_tag *t = &dev->cfg->tags[ti];
        if (tag_is_shed(dev, t))
            continue;
        dev->out[n++] = (shm_tag_value){.timestamp_ns = ts,
                                        .device_id = dev->cfg->id,
                                        .tag_id = t->id,
                                        .value = NAN,
                                        .quality = quality,
                                        .exception_code = exception,
                                        .flags = flags};
        tag_state *s = &dev->tags[ti];
        s->last_quality = quality;
        s->last_pub_ns = now;
        s->published = 1;
    }
    publish(dev, n);
}

/* Decodes a successful answer into records, applying deadbands. */
static void publish_data(device_rt *dev, const plan_request *r, int64_t ts)
{
    size_t n = 0;
    int64_t now = device_mono_ns();
    bool bits = r->fc <= 2;
    for (uint32_t i = 0; i < r->n_items; i++) {
        const plan_item *it = &dev->plan.items[r->first_item + i];
        const config_tag *t = &dev->cfg->tags[it->tag];
        if (tag_is_shed(dev, t))
            continue;
        shm_tag_value v = {.timestamp_ns = ts, .device_id = dev->cfg->id, .tag_id = t->id};
        int status = TAGCODEC_OK;
        if (bits)
            tagcodec_decode_bit(t, dev->bits[it->offset], &v.value, &v.raw);
        else
            status = tagcodec_decode_registers(t, dev->regs + it->offset, &v.value, &v.raw);
        tag_state *s = &dev->tags[it->tag];
        if (status != TAGCODEC_OK) {
            v.quality = SHM_Q_DECODE_ERROR;
            shm_counter_add(dev->ctr.err_decode, 1);
            if (s->last_quality != SHM_Q_DECODE_ERROR)
                log_warn("device %s: tag %s: %s (raw 0x%llx)", dev->cfg->name, t->name,
                         tagcodec_strerror(status), (unsigned long long)v.raw);
        } else if (!passes_deadband(t, s, v.value, now, &v.flags)) {
            continue;
        }
        s->last_value = v.value;
        s->last_quality = v.quality;
        s->last_pub_ns = now;
        s->published = 1;
        dev->out[n++] = v;
    }
    publish(dev, n);
}

/* Connects if allowed by the backoff; returns whether connected. */
static bool ensure_connected(device_rt *dev)
{
    if (dev->link->connected)
        return true;
    int64_t now = device_mono_ns();
    if (!backoff_ready(&dev->backoff, now))
        return false;
    if (link_connect(dev->link) == 0) {
        if (dev->backoff.attempts)
            log_info("device %s: connected after %u failed attempts", dev->cfg->name,
                     dev->backoff.attempts);
        backoff_succeeded(&dev->backoff);
        shm_counter_add(dev->ctr.reconnects, 1);
        shm_counter_set(dev->ctr.connected, 1);
        dev->need_flush = false;
        return true;
    }
    shm_counter_add(dev->ctr.err_connection, 1);
    uint32_t delay = backoff_failed(&dev->backoff, now);
    if (dev->backoff.attempts == 1 || dev->backoff.attempts % 10 == 0)
        log_warn("device %s: %s; retrying in %u ms (attempt %u)", dev->cfg->name,
                 dev->link->error, delay, dev->backoff.attempts);
    return false;
}

static void lost_connection(device_rt *dev)
{
    log_warn("device %s: %s; reconnecting", dev->cfg->name, dev->link->error);
    link_close(dev->link);
    shm_counter_set(dev->ctr.connected, 0);
    backoff_lost(&dev->backoff, device_mono_ns());
}

static void run_request(device_rt *dev, const plan_request *r)
{
    unit_state *u = &dev->units[dev->unit_index[r->unit_id]];
    int64_t ts = device_real_ns();
    if (!ensure_connected(dev)) {
        publish_bad(dev, r, ts, SHM_Q_COMM_FAIL, 0, TV_FLAG_DISCONNECTED);
        return;
    }
    if (!breaker_allows(&u->brk, device_mono_ns()) || u->timed_out) {
        publish_bad(dev, r, ts, SHM_Q_COMM_FAIL, 0, u->timed_out ? 0 : TV_FLAG_BREAKER_OPEN);
        return;
    }
    if (dev->need_flush) {
        link_flush(dev->link);
        dev->need_flush = false;
        if (!dev->link->connected) {
            lost_connection(dev);
            publish_bad(dev, r, ts, SHM_Q_COMM_FAIL, 0, TV_FLAG_DISCONNECTED);
            return;
        }
    }
    u->asked = true;
    uint8_t exception = 0;
    int64_t t0 = device_mono_ns();
    int outcome = link_read(dev->link, r->unit_id, r->fc, r->address, r->count, dev->regs,
                            dev->bits, &exception);
    uint64_t rtt_us = (uint64_t)(device_mono_ns() - t0) / 1000;
    shm_counter_add(dev->ctr.requests, 1);
    shm_counter_add(dev->ctr.rtt_us_sum, rtt_us);
    shm_counter_set(dev->ctr.rtt_us_last, rtt_us);
    if (rtt_us > shm_counter_get(dev->ctr.rtt_us_max))
        shm_counter_set(dev->ctr.rtt_us_max, rtt_us);
    switch (outcome) {
    case LINK_OK:
        u->answered = true;
        if (r->fc > 2)
            shm_counter_add(dev->ctr.registers, r->count);
        publish_data(dev, r, ts);
        return;
    case LINK_EXCEPTION:
        u->answered = true;
        shm_counter_add(dev->ctr.err_exception, 1);
        publish_bad(dev, r, ts, SHM_Q_DEVICE_EXCEPTION, exception, 0);
        return;
    case LINK_TIMEOUT:
        u->timed_out = true;
        dev->need_flush = true;
        shm_counter_add(dev->ctr.err_timeout, 1);
        publish_bad(dev, r, ts, SHM_Q_COMM_FAIL, 0, 0);
        return;
    case LINK_BAD_FRAME:
        u->answered = true; /* something answered: not a dead unit */
        shm_counter_add(dev->ctr.err_bad_frame, 1);
        publish_bad(dev, r, ts, SHM_Q_BAD, 0, 0);
        log_warn("device %s: unit %u: %s", dev->cfg->name, r->unit_id, dev->link->error);
        if (dev->cfg->transport == CONFIG_RTU) {
            dev->need_flush = true;
        } else {
            /* TCP: transaction ids are out of step; RTU over TCP: the
             * stream may be mid-frame. A new connection resynchronises. */
            link_close(dev->link);
            shm_counter_set(dev->ctr.connected, 0);
            backoff_lost(&dev->backoff, device_mono_ns());
        }
        return;
    default:
        shm_counter_add(dev->ctr.err_connection, 1);
        publish_bad(dev, r, ts, SHM_Q_COMM_FAIL, 0, 0);
        lost_connection(dev);
        return;
    }
}

void device_run_group(device_rt *dev, uint32_t g)
{
    for (size_t i = 0; i < dev->n_units; i++)
        dev->units[i].asked = dev->units[i].answered = dev->units[i].timed_out = false;
    uint32_t first = dev->plan.group_first[g], count = dev->plan.group_count[g];
    uint32_t min_priority =
        atomic_load_explicit(&dev->owner->steer.min_priority, memory_order_relaxed);
    bool high = atomic_load_explicit(&dev->owner->steer.pressure, memory_order_relaxed) >=
                PRESSURE_HIGH;
    for (uint32_t k = 0; k < count; k++) {
        if (atomic_load_explicit(&dev->stop, memory_order_relaxed))
            return;
        const plan_request *r = &dev->plan.requests[first + k];
        if (high && r->best_priority >= min_priority)
            continue; /* every tag of it is shed */
        run_request(dev, r);
        if (dev->cfg->pause_ms && k + 1 < count) {
            struct timespec ts = {.tv_sec = dev->cfg->pause_ms / 1000,
                                  .tv_nsec = (long)(dev->cfg->pause_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
    }
    int64_t now = device_mono_ns();
    for (size_t i = 0; i < dev->n_units; i++) {
        unit_state *u = &dev->units[i];
        if (!u->asked)
            continue;
        if (breaker_cycle(&u->brk, u->answered, now)) {
            shm_counter_add(dev->ctr.breaker_opens, 1);
            log_warn("device %s: unit %u failed %u cycles in a row; skipping it for %u s",
                     dev->cfg->name, u->unit_id, u->brk.failures, dev->cfg->breaker_open_s);
        }
    }
}

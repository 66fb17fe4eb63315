/*
 * devices.c — each device's share of the ring (monitor thread only).
 *
 * The ring holds `used_slots` records not yet acknowledged by the slowest
 * group. Reading all of them every check would cost too much, so the newest
 * CTL_DEVICE_SAMPLE records are peeked (shm_ring_peek: a read-only copy,
 * seqlock-checked), decoded, and counted per device_id: a device's `traffic`
 * is its share of that sample (of recent traffic, also when the ring is
 * drained), its `share` of the ring that traffic share times the ring's
 * utilization. The device source is the largest share divided by
 * controller.device_quota.
 * Records that fail verification are skipped (they belong to nobody).
 */
#include "ctl.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tally {
    uint32_t id;
    uint32_t count;
};

static int by_count_desc(const void *a, const void *b)
{
    const struct tally *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : (x->id > y->id) - (x->id < y->id);
}

static int ensure_buffers(monitor *m, uint32_t payload)
{
    size_t need = (size_t)CTL_DEVICE_SAMPLE * payload;
    if (m->peek_buf && m->peek_cap >= need)
        return 0;
    free(m->peek_buf);
    free(m->peek_records);
    m->peek_buf = malloc(need);
    m->peek_records = calloc(CTL_DEVICE_SAMPLE, sizeof *m->peek_records);
    if (!m->peek_buf || !m->peek_records) {
        free(m->peek_buf);
        free(m->peek_records);
        m->peek_buf = NULL;
        m->peek_records = NULL;
        m->peek_cap = 0;
        return -1;
    }
    m->peek_cap = need;
    return 0;
}

void devices_update(controller *c, const ctl_settings *set, ctl_view *v)
{
    monitor *m = &c->mon;
    v->n_devices = 0;
    v->device_sampled = 0;
    v->src.device_on = set->device_quota > 0;
    v->src.device = 0;
    v->src.device_name[0] = '\0';
    if (!v->src.device_on)
        return;
    if (ensure_buffers(m, c->info.slot_payload) != 0) {
        log_warn("device shares: out of memory");
        return;
    }
    int got = shm_ring_peek(c->seg, CTL_DEVICE_SAMPLE, m->peek_records, m->peek_buf, m->peek_cap);
    if (got <= 0)
        return;
    enum { MAX_IDS = 256 }; /* distinct devices tallied; more are counted in `valid` only */
    struct tally tally[MAX_IDS];
    int n_tally = 0;
    uint32_t valid = 0;
    for (int i = 0; i < got; i++) {
        shm_tag_value tv;
        if (shm_tag_value_decode(m->peek_records[i].data, m->peek_records[i].len, &tv) != 0)
            continue;
        valid++;
        int t = 0;
        while (t < n_tally && tally[t].id != tv.device_id)
            t++;
        if (t == n_tally && n_tally == MAX_IDS)
            continue;
        if (t == n_tally)
            tally[n_tally++] = (struct tally){.id = tv.device_id, .count = 0};
        tally[t].count++;
    }
    v->device_sampled = valid;
    if (valid == 0)
        return;
    qsort(tally, (size_t)n_tally, sizeof *tally, by_count_desc);
    double utilization = (double)v->used_slots / (double)c->info.slot_count;
    pthread_mutex_lock(&c->lock); /* device names come from the config */
    for (int t = 0; t < n_tally && v->n_devices < CTL_MAX_DEVICES; t++) {
        ctl_device_share *d = &v->devices[v->n_devices++];
        d->id = tally[t].id;
        d->traffic = (double)tally[t].count / valid;
        d->share = d->traffic * utilization;
        d->value = d->share / set->device_quota;
        if (d->id < c->cfg->n_devices)
            snprintf(d->name, sizeof d->name, "%s", c->cfg->devices[d->id].name);
        else
            snprintf(d->name, sizeof d->name, "%u", d->id);
    }
    pthread_mutex_unlock(&c->lock);
    if (v->n_devices > 0) {
        v->src.device = v->devices[0].value;
        snprintf(v->src.device_name, sizeof v->src.device_name, "%s", v->devices[0].name);
    }
}

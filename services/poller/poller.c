/*
 * poller.c — the tag catalog and the set of device threads of a poller
 * (see poller.h). Reload builds a new set from a new configuration; the
 * catalog is rewritten first so that consumers can name every tag before
 * its first record arrives.
 */
#include "poller.h"

#include "device.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

int poller_publish_catalog(poller *p, const config *cfg, uint32_t old_max_id)
{
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
    for (size_t i = 0; i < cfg->n_devices; i++) {
        const config_device *d = &cfg->devices[i];
        for (size_t j = 0; j < d->n_tags; j++) {
            const config_tag *t = &d->tags[j];
            shm_tag_meta m = {.id = t->id,
                              .device_id = d->id,
                              .name = t->name,
                              .device = d->name,
                              .unit = t->unit,
                              .data_type = t->type,
                              .priority = t->priority,
                              .scale = t->scale,
                              .offset = t->offset};
            int len = shm_tag_meta_encode(&m, buf, sizeof buf);
            int rc = len < 0 ? len : shm_catalog_put(p->seg, t->id, buf, (uint32_t)len);
            if (rc < 0) {
                log_error("catalog: tag %s (id %u): %s", t->name, t->id, shm_last_error());
                return rc;
            }
        }
    }
    /* Ids that a previous configuration used and this one does not. */
    if (old_max_id > 0) {
        uint8_t *used = calloc(old_max_id, 1);
        if (!used)
            return SHM_ENOMEM;
        for (size_t i = 0; i < cfg->n_devices; i++)
            for (size_t j = 0; j < cfg->devices[i].n_tags; j++)
                if (cfg->devices[i].tags[j].id < old_max_id)
                    used[cfg->devices[i].tags[j].id] = 1;
        for (uint32_t id = 0; id < old_max_id; id++)
            if (!used[id]) /* an empty entry; buf (not NULL) because libshm memcpys it */
                shm_catalog_put(p->seg, id, buf, 0);
        free(used);
    }
    return 0;
}

int poller_start_devices(poller *p)
{
    const config *cfg = p->cfg;
    struct device_rt **devs = calloc(cfg->n_devices ? cfg->n_devices : 1, sizeof *devs);
    if (!devs)
        return -ENOMEM;
    size_t n = 0;
    int rc = 0;
    for (size_t i = 0; i < cfg->n_devices; i++) {
        rc = device_start(p, &cfg->devices[i], i, &devs[n]);
        if (rc < 0)
            break;
        n++;
    }
    if (rc < 0) {
        while (n > 0)
            device_stop(&devs[--n]);
        free(devs);
        return rc;
    }
    pthread_mutex_lock(&p->devices_mu);
    p->devices = devs;
    p->n_devices = n;
    pthread_mutex_unlock(&p->devices_mu);
    return 0;
}

void poller_stop_devices(poller *p)
{
    pthread_mutex_lock(&p->devices_mu);
    struct device_rt **devs = p->devices;
    size_t n = p->n_devices;
    p->devices = NULL;
    p->n_devices = 0;
    pthread_mutex_unlock(&p->devices_mu);
    /* Ask all first, then join: they stop in parallel. */
    for (size_t i = 0; i < n; i++)
        atomic_store_explicit(&devs[i]->stop, 1, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        device_stop(&devs[i]);
    free(devs);
}

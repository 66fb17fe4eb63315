/*
 * writer_catalog.c — keeps <writer>.catalog.json (chunk_catalog.c) in step
 * with the segment's tag catalog, so shmbus-query can name tags without the
 * segment. Written at start, then again when a record carries a tag id the
 * last file did not know, at most every two seconds (the poller publishes
 * its catalog before its first records, so one rewrite usually suffices).
 */
#include "log.h"
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REWRITE_EVERY_NS (2ll * 1000000000)
#define MISSING_RETRY_NS (60ll * 1000000000) /* ids seen without a catalog entry */

struct writer_catalog {
    shm_segment *seg;
    int dirfd;
    char writer[CHUNK_NAME_MAX + 1];
    char segment[SHM_NAME_MAX + 1];
    uint32_t capacity;
    uint8_t *known;  /* per id: 0 unseen, 1 in the file, 2 seen but not in the segment's catalog */
    uint32_t missing; /* ids in state 2 */
    bool dirty;
    int64_t last_write;
    bool warned;
};

static int write_file(writer_catalog *c)
{
    chunk_catalog_entry *e = calloc(c->capacity ? c->capacity : 1, sizeof *e);
    uint8_t *buf = malloc(SHM_CATALOG_ENTRY_MAX);
    if (!e || !buf) {
        free(e);
        free(buf);
        return CHUNK_ENOMEM;
    }
    size_t n = 0;
    for (uint32_t id = 0; id < c->capacity; id++) {
        int len = shm_catalog_get(c->seg, id, buf, SHM_CATALOG_ENTRY_MAX);
        shm_tag_meta m;
        if (len <= 0 || shm_tag_meta_decode(buf, (size_t)len, &m) != 0)
            continue;
        /* names point into buf: copy them before the next entry */
        e[n] = (chunk_catalog_entry){.id = id, .device_id = m.device_id,
                                     .name = strdup(m.name ? m.name : ""),
                                     .device = strdup(m.device ? m.device : ""),
                                     .unit = strdup(m.unit ? m.unit : ""),
                                     .data_type = m.data_type};
        c->known[id] = 1;
        n++;
    }
    c->missing = 0;
    for (uint32_t id = 0; id < c->capacity; id++)
        c->missing += c->known[id] == 2;
    int rc = chunk_catalog_write(c->dirfd, c->writer, c->segment, e, n);
    for (size_t i = 0; i < n; i++) {
        free(e[i].name);
        free(e[i].device);
        free(e[i].unit);
    }
    free(e);
    free(buf);
    return rc;
}

int writer_catalog_open(writer_catalog **out, shm_segment *seg, int dirfd, const char *writer,
                        const char *segment)
{
    writer_catalog *c = calloc(1, sizeof *c);
    if (!c)
        return CHUNK_ENOMEM;
    shm_segment_info info;
    shm_segment_info_get(seg, &info);
    c->seg = seg;
    c->dirfd = dirfd;
    c->capacity = info.catalog_capacity;
    snprintf(c->writer, sizeof c->writer, "%s", writer);
    snprintf(c->segment, sizeof c->segment, "%s", segment);
    c->known = calloc(c->capacity ? c->capacity : 1, 1);
    if (!c->known) {
        free(c);
        return CHUNK_ENOMEM;
    }
    c->dirty = true;
    *out = c;
    writer_catalog_sync(c, writer_mono_ns(), true);
    return 0;
}

void writer_catalog_seen(writer_catalog *c, uint32_t tag_id)
{
    if (tag_id < c->capacity && !c->known[tag_id]) {
        c->known[tag_id] = 2;
        c->dirty = true;
    }
}

void writer_catalog_sync(writer_catalog *c, int64_t now, bool force)
{
    bool due = c->dirty ? now - c->last_write >= REWRITE_EVERY_NS
                        : c->missing && now - c->last_write >= MISSING_RETRY_NS;
    if (!force && !due)
        return;
    c->last_write = now;
    int rc = write_file(c);
    if (rc < 0) {
        if (!c->warned)
            log_warn("catalog: %s (retrying)", chunk_last_error());
        c->warned = true;
        return;
    }
    c->warned = false;
    c->dirty = false;
}

void writer_catalog_close(writer_catalog **cp)
{
    writer_catalog *c = *cp;
    if (!c)
        return;
    free(c->known);
    free(c);
    *cp = NULL;
}

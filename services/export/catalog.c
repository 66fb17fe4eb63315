/*
 * catalog.c — a per-process cache of the segment's tag catalog (tag id ->
 * name, device, unit, data type) for topics, payloads and the tags table.
 *
 * Entries are read lazily with shm_catalog_get (seqlocked in the segment)
 * and re-read when older than CATALOG_REFRESH_MS, so a renamed tag shows up
 * within seconds without a restart. `version` changes when an entry's
 * content changes; the PostgreSQL target uses it to upsert the tags table.
 */
#include "export.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CATALOG_REFRESH_MS 5000

typedef struct cached_tag {
    export_tag tag;
    int64_t loaded_ms; /* 0: never */
} cached_tag;

struct export_catalog {
    shm_segment *seg;
    uint32_t capacity;
    cached_tag *entries;
    export_tag unknown; /* returned for ids beyond the catalog */
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int export_catalog_open(shm_segment *seg, export_catalog **out)
{
    *out = NULL;
    shm_segment_info info;
    int rc = shm_segment_info_get(seg, &info);
    if (rc)
        return rc;
    export_catalog *cat = calloc(1, sizeof *cat);
    if (!cat)
        return EXPORT_ENOMEM;
    cat->entries = calloc(info.catalog_capacity ? info.catalog_capacity : 1, sizeof *cat->entries);
    if (!cat->entries) {
        free(cat);
        return EXPORT_ENOMEM;
    }
    cat->seg = seg;
    cat->capacity = info.catalog_capacity;
    cat->unknown.data_type = "unknown";
    *out = cat;
    return 0;
}

void export_catalog_close(export_catalog **cat)
{
    if (!cat || !*cat)
        return;
    free((*cat)->entries);
    free(*cat);
    *cat = NULL;
}

static void load(export_catalog *cat, uint32_t id, cached_tag *e)
{
    export_tag fresh = {.data_type = "unknown"};
    int len = shm_catalog_get(cat->seg, id, cat->buf, sizeof cat->buf);
    shm_tag_meta m;
    if (len > 0 && shm_tag_meta_decode(cat->buf, (size_t)len, &m) == 0) {
        fresh.known = true;
        snprintf(fresh.name, sizeof fresh.name, "%s", m.name ? m.name : "");
        snprintf(fresh.device, sizeof fresh.device, "%s", m.device ? m.device : "");
        snprintf(fresh.unit, sizeof fresh.unit, "%s", m.unit ? m.unit : "");
        fresh.data_type = shm_data_type_name(m.data_type);
        if (!fresh.data_type)
            fresh.data_type = "unknown";
    }
    bool changed = e->loaded_ms == 0 || fresh.known != e->tag.known ||
                   strcmp(fresh.name, e->tag.name) || strcmp(fresh.device, e->tag.device) ||
                   strcmp(fresh.unit, e->tag.unit) || strcmp(fresh.data_type, e->tag.data_type);
    fresh.version = e->tag.version + (changed ? 1 : 0);
    e->tag = fresh;
    e->loaded_ms = mono_ms();
}

const export_tag *export_catalog_get(export_catalog *cat, uint32_t tag_id)
{
    if (tag_id >= cat->capacity)
        return &cat->unknown;
    cached_tag *e = &cat->entries[tag_id];
    if (e->loaded_ms == 0 || mono_ms() - e->loaded_ms >= CATALOG_REFRESH_MS)
        load(cat, tag_id, e);
    return &e->tag;
}

uint32_t export_catalog_capacity(const export_catalog *cat)
{
    return cat->capacity;
}

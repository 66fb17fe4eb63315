/*
 * writer_counters.c — the writer's named counters in the segment, labelled
 * with its name so that every writer of the group has its own:
 * writer_points_total{writer="writer-1"}. A restarted writer reopens the
 * same counters and continues their totals. A counter that cannot be
 * opened (the segment's counter table is full) is skipped with a warning.
 */
#include "log.h"
#include "writer.h"

#include <stdio.h>

static shm_counter *open_one(shm_segment *seg, const char *base, const char *name, int kind)
{
    char full[SHM_COUNTER_NAME_MAX + 1];
    snprintf(full, sizeof full, "%s{writer=\"%s\"}", base, name);
    shm_counter *c = NULL;
    if (shm_counter_open(seg, full, kind, &c) != 0) {
        log_warn("counter %s: %s", full, shm_last_error());
        return NULL;
    }
    return c;
}

void writer_counters_open(writer_counters *c, shm_segment *seg, const char *name)
{
    c->points = open_one(seg, "writer_points_total", name, SHM_COUNTER);
    c->bytes = open_one(seg, "writer_bytes_total", name, SHM_COUNTER);
    c->batches = open_one(seg, "writer_batches_total", name, SHM_COUNTER);
    c->syncs = open_one(seg, "writer_syncs_total", name, SHM_COUNTER);
    c->sync_ns = open_one(seg, "writer_sync_ns_total", name, SHM_COUNTER);
    c->sync_ns_last = open_one(seg, "writer_sync_ns_last", name, SHM_GAUGE);
    c->sync_ns_max = open_one(seg, "writer_sync_ns_max", name, SHM_GAUGE);
    c->errors = open_one(seg, "writer_errors_total", name, SHM_COUNTER);
    c->invalid = open_one(seg, "writer_invalid_records_total", name, SHM_COUNTER);
    c->disk_full = open_one(seg, "writer_disk_full_total", name, SHM_COUNTER);
    c->sealed = open_one(seg, "writer_chunks_sealed_total", name, SHM_COUNTER);
    c->retention_deleted = open_one(seg, "writer_chunks_deleted_total", name, SHM_COUNTER);
    c->chunk_bytes = open_one(seg, "writer_open_chunk_bytes", name, SHM_GAUGE);
}

void counter_add(shm_counter *c, uint64_t v)
{
    if (c)
        shm_counter_add(c, v);
}

void counter_set(shm_counter *c, uint64_t v)
{
    if (c)
        shm_counter_set(c, v);
}

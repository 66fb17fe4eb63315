/*
 * ingest.h — the stats service's side of the ring: attach to the segment as
 * a member of consumer group `stats` (or `stats-K`), take batches, verify
 * each TagValue (shm_tag_value_decode; failures are marked invalid and
 * counted), apply them to the tag store, acknowledge; name tags from the
 * catalog (shm_catalog_get + shm_tag_meta_decode).
 *
 * Re-delivery after a restart: the snapshot records the ring sequence after
 * the last applied record and the segment's identity (creation time and
 * initial sequence); records of the same segment below that sequence are
 * skipped as duplicates. A replaced segment (the controller recreated it) is
 * noticed by ingest_segment_replaced() and re-attached.
 * One thread; the handles are owned here.
 */
#ifndef SHMBUS_STATS_INGEST_H
#define SHMBUS_STATS_INGEST_H

#include "tagstore.h"

#include <shmbus/shm.h>
#include <stdint.h>

typedef struct ingest {
    char segment[SHM_NAME_MAX + 1];
    char group[SHM_NAME_MAX + 1];
    char member[SHM_NAME_MAX + 1];
    char shard_label[24]; /* "K/N", for counter labels */
    shm_segment *seg;
    shm_consumer *cons;
    shm_segment_info info;
    uint64_t skip_below;    /* duplicates: records of this segment below this seq */
    uint64_t next_seq;      /* ring sequence after the last record applied */
    uint64_t records;       /* applied to this shard's tags (kept or counted as excluded) */
    uint64_t invalid;       /* failed verification */
    uint64_t duplicates;    /* below skip_below */
    uint64_t lost;          /* overwritten before we read them (drop-oldest) */
    uint64_t dropped_nomem; /* no memory for a new tag */
    uint64_t batches;
    int64_t last_invalid_log_ns;
    shm_counter *c_records, *c_invalid, *c_duplicates, *c_tags;
} ingest;

/* Prepares (no attach yet). shard_n > 1 selects group "stats-K". */
void ingest_init(ingest *in, const char *segment, uint32_t shard_k, uint32_t shard_n);

/* Attaches to the segment and joins the group. Returns 0 or an SHM_E* code
 * (SHM_ENOENT while the controller has not created the segment yet). */
int ingest_attach(ingest *in);
void ingest_detach(ingest *in);

/* Takes one batch (waiting up to timeout_ms), applies it and acknowledges
 * it. Returns the sequence numbers the batch covered (0 when none came) or
 * an SHM_E* code. */
int ingest_poll(ingest *in, tagstore *s, int timeout_ms);

/* Looks the tag up in the catalog; returns 1 when named, 0 when the
 * catalog has no (valid) entry for it yet. */
int ingest_name_tag(ingest *in, tagstore *s, tag_state *t);

/* Catalog entries (tags the poller announced) below the store's max_tags
 * that belong to its shard; 0 when not attached. */
uint32_t ingest_count_catalog(const ingest *in, const tagstore *s);

/* 1 when the segment under our name is not the one we are attached to. */
int ingest_segment_replaced(const ingest *in);

/* Sets the stats_tags gauge in the segment (the record counters are added
 * to as batches are applied). */
void ingest_update_counters(ingest *in, const tagstore *s);

#endif

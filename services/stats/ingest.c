/*
 * ingest.c — consume TagValue records into the tag store (see ingest.h).
 */
#include "ingest.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BATCH_MAX 1024
#define META_RETRY_NS                                                                              \
    1000000000LL /* a tag missing from the catalog is looked up again after 1 s                    \
                  */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ingest_init(ingest *in, const char *segment, uint32_t shard_k, uint32_t shard_n)
{
    memset(in, 0, sizeof *in);
    snprintf(in->segment, sizeof in->segment, "%s", segment);
    if (shard_n > 1)
        snprintf(in->group, sizeof in->group, "stats-%u", shard_k);
    else
        snprintf(in->group, sizeof in->group, "stats");
    snprintf(in->member, sizeof in->member, "%.16s-%d", in->group, (int)getpid());
    snprintf(in->shard_label, sizeof in->shard_label, "%u/%u", shard_k, shard_n);
}

static shm_counter *open_counter(ingest *in, const char *name, int kind)
{
    char full[SHM_COUNTER_NAME_MAX + 1];
    snprintf(full, sizeof full, "%s{shard=\"%s\"}", name, in->shard_label);
    shm_counter *c = NULL;
    if (shm_counter_open(in->seg, full, kind, &c) != 0) {
        log_warn("counter %s: %s", full, shm_last_error());
        return NULL;
    }
    return c;
}

int ingest_attach(ingest *in)
{
    int rc = shm_segment_open(in->segment, NULL, SHM_OPEN_ATTACH, &in->seg);
    if (rc)
        return rc;
    shm_segment_set_log(in->seg, log_shm_sink, NULL);
    shm_segment_info_get(in->seg, &in->info);
    rc = shm_consumer_open(in->seg, in->group, in->member, &in->cons);
    if (rc) {
        log_error("join group %s of segment %s: %s", in->group, in->segment, shm_last_error());
        shm_segment_close(&in->seg);
        return rc;
    }
    in->c_records = open_counter(in, "stats_records_total", SHM_COUNTER);
    in->c_invalid = open_counter(in, "stats_invalid_records_total", SHM_COUNTER);
    in->c_duplicates = open_counter(in, "stats_duplicate_records_total", SHM_COUNTER);
    in->c_tags = open_counter(in, "stats_tags", SHM_GAUGE);
    return 0;
}

void ingest_detach(ingest *in)
{
    shm_consumer_close(&in->cons);
    shm_segment_close(&in->seg);
    in->c_records = in->c_invalid = in->c_duplicates = in->c_tags = NULL;
}

int ingest_name_tag(ingest *in, tagstore *s, tag_state *t)
{
    if (!in->seg)
        return 0;
    t->meta_tried_ns = mono_ns();
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
    int n = shm_catalog_get(in->seg, t->id, buf, sizeof buf);
    if (n <= 0)
        return 0;
    shm_tag_meta meta;
    if (shm_tag_meta_decode(buf, (size_t)n, &meta) != 0) {
        log_warn("catalog entry %u does not verify: %s", t->id, shm_last_error());
        return 0;
    }
    if (meta.id != t->id) {
        log_warn("catalog entry %u names tag id %u; ignored", t->id, meta.id);
        return 0;
    }
    if (!t->has_meta || strcmp(t->name, meta.name) != 0 || t->data_type != meta.data_type) {
        if (t->has_meta && strcmp(t->name, meta.name) != 0)
            log_info("tag %u renamed from '%s' to '%s'", t->id, t->name, meta.name);
        tagstore_set_meta(s, t, meta.name, meta.data_type);
    }
    return 1;
}

static void count_invalid(ingest *in, shm_batch *b, uint64_t seq)
{
    shm_batch_mark_invalid(b);
    in->invalid++;
    int64_t now = mono_ns();
    if (now - in->last_invalid_log_ns > 10 * 1000000000LL) { /* at most one line per 10 s */
        in->last_invalid_log_ns = now;
        log_warn("record %llu failed verification and was skipped: %s (%llu invalid so far)",
                 (unsigned long long)seq, shm_last_error(), (unsigned long long)in->invalid);
    }
}

int ingest_poll(ingest *in, tagstore *s, int timeout_ms)
{
    shm_batch b;
    int n = shm_consume(in->cons, BATCH_MAX, timeout_ms, &b);
    if (n <= 0)
        return n;
    in->batches++;
    int applied = 0;
    uint64_t invalid0 = in->invalid, duplicates0 = in->duplicates;
    shm_record r;
    while (shm_batch_next(in->cons, &b, &r) == 1) {
        shm_tag_value v;
        if (shm_tag_value_decode(r.data, r.len, &v) != 0) {
            count_invalid(in, &b, r.seq);
            continue;
        }
        if (r.seq < in->skip_below) {
            in->duplicates++;
            continue;
        }
        /* Other shards' tags and ids beyond the catalog are counted by the
         * store (foreign_shard, bad_id). */
        int rc = tagstore_apply(s, v.tag_id, v.timestamp_ns, v.value, v.quality);
        if (rc == 0) {
            applied++;
            tag_state *t = tagstore_get(s, v.tag_id);
            if (t && !t->has_meta && mono_ns() - t->meta_tried_ns > META_RETRY_NS)
                ingest_name_tag(in, s, t);
        } else if (rc == -ENOMEM) {
            in->dropped_nomem++;
            log_error("out of memory for tag %u: record %llu not kept", v.tag_id,
                      (unsigned long long)r.seq);
        }
        if (r.seq + 1 > in->next_seq)
            in->next_seq = r.seq + 1;
    }
    in->records += applied;
    in->lost += b.lost;
    /* Counters in the segment continue across restarts: add, never set. */
    if (in->c_records)
        shm_counter_add(in->c_records, (uint64_t)applied);
    if (in->c_invalid && in->invalid > invalid0)
        shm_counter_add(in->c_invalid, in->invalid - invalid0);
    if (in->c_duplicates && in->duplicates > duplicates0)
        shm_counter_add(in->c_duplicates, in->duplicates - duplicates0);
    int rc = shm_ack(in->cons, &b);
    if (rc)
        log_warn("ack of batch %llu+%u: %s", (unsigned long long)b.first_seq, b.count,
                 shm_last_error());
    return n;
}

uint32_t ingest_count_catalog(const ingest *in, const tagstore *s)
{
    if (!in->seg)
        return 0;
    uint32_t end = in->info.catalog_capacity < s->p.max_tags ? in->info.catalog_capacity
                                                              : s->p.max_tags;
    uint32_t n = 0;
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
    for (uint32_t id = 0; id < end; id++)
        n += tagstore_owns(s, id) && shm_catalog_get(in->seg, id, buf, sizeof buf) > 0;
    return n;
}

int ingest_segment_replaced(const ingest *in)
{
    shm_segment *probe = NULL;
    if (shm_segment_open(in->segment, NULL, SHM_OPEN_ATTACH | SHM_OPEN_READONLY, &probe) != 0)
        return 1; /* gone (or unreadable): what we hold is not the live one */
    shm_segment_info now;
    shm_segment_info_get(probe, &now);
    shm_segment_close(&probe);
    return now.created_ns != in->info.created_ns || now.initial_seq != in->info.initial_seq;
}

void ingest_update_counters(ingest *in, const tagstore *s)
{
    if (in->c_tags)
        shm_counter_set(in->c_tags, s->n_tags);
}

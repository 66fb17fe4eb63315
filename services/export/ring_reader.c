/*
 * ring_reader.c — the export's side of its consumer group: takes ring
 * batches, decodes their TagValue records into export_rows, and later
 * acknowledges them (after the target confirmed, or the spool holds them)
 * or hands them back to the group.
 *
 * One export batch may span several ring batches, and several export
 * batches may be in flight; together they hold at most SHM_MEMBER_BATCHES
 * ring batches (the most a member may hold), kept in the order they were
 * taken and acknowledged oldest first. Records that fail verification are
 * marked invalid in the ring and counted, never exported.
 *
 * Group commit (ring_reader_group): when a batch is full and the group has
 * at least one more whole batch waiting, further ring batches join it
 * without waiting, each taken (and later acknowledged) as its own ring
 * batch. "Waiting" is the ring's head minus the group's next sequence: a
 * cheap first look from the ring's head and the end of what this member took
 * last, and only when that says "backlog" the group's own position. A head
 * that includes slots a producer claimed but has not committed yet can make
 * the ring look backlogged; the ring batch then taken is just shorter
 * (what is committed) and ends the grouping.
 */
#include "export.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING_READER_MAX_ASK 16384u /* records asked for in one shm_consume */

struct ring_reader {
    shm_segment *seg;
    shm_consumer *consumer;
    char group[SHM_NAME_MAX + 1];
    char member[SHM_NAME_MAX + 1];
    export_metrics *metrics;
    shm_batch held[SHM_MEMBER_BATCHES];
    int n_held;
    uint64_t taken_end; /* one past the newest sequence this member took */
    uint64_t invalid_logged_ns;
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int export_batch_reserve(export_batch *b, size_t n)
{
    if (b->n + n <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->n + n)
        cap *= 2;
    export_row *rows = realloc(b->rows, cap * sizeof *rows);
    if (!rows)
        return EXPORT_ENOMEM;
    b->rows = rows;
    b->cap = cap;
    return 0;
}

void export_batch_free(export_batch *b)
{
    free(b->rows);
    memset(b, 0, sizeof *b);
}

int ring_reader_open(shm_segment *seg, const char *group, const char *member,
                     export_metrics *metrics, ring_reader **out)
{
    *out = NULL;
    ring_reader *r = calloc(1, sizeof *r);
    if (!r)
        return SHM_ENOMEM;
    r->seg = seg;
    r->metrics = metrics;
    snprintf(r->group, sizeof r->group, "%s", group);
    snprintf(r->member, sizeof r->member, "%s", member);
    int rc = shm_consumer_open(seg, group, member, &r->consumer);
    if (rc) {
        free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void ring_reader_close(ring_reader **rp)
{
    if (!rp || !*rp)
        return;
    /* Held batches go back to the group (shm_consumer_close does that). */
    shm_consumer_close(&(*rp)->consumer);
    free(*rp);
    *rp = NULL;
}

static void decode_batch(ring_reader *r, shm_batch *sb, export_batch *b)
{
    shm_record rec;
    while (shm_batch_next(r->consumer, sb, &rec) == 1) {
        shm_tag_value v;
        if (shm_tag_value_decode(rec.data, rec.len, &v) != 0) {
            shm_batch_mark_invalid(sb);
            export_metrics_add(r->metrics->invalid, 1);
            uint64_t now = (uint64_t)mono_ms();
            if (now - r->invalid_logged_ns >= 10000) { /* at most one line per 10 s */
                r->invalid_logged_ns = now;
                log_warn("group %s: record %llu failed verification, skipped: %s", r->group,
                         (unsigned long long)rec.seq, shm_last_error());
            }
            continue;
        }
        /* The ring's sequence number is the record's identity everywhere
         * downstream (the unique key in PostgreSQL, "seq" in MQTT). */
        export_row *row = &b->rows[b->n++];
        *row = (export_row){.seq = rec.seq,
                            .time_ns = v.timestamp_ns,
                            .tag_id = v.tag_id,
                            .device_id = v.device_id,
                            .value = v.value,
                            .raw = v.raw,
                            .quality = v.quality,
                            .exception_code = v.exception_code,
                            .flags = v.flags};
    }
}

/* Keeps the batch shm_consume just returned in r->held[r->n_held] (n records)
 * and decodes it into b. */
static int take_batch(ring_reader *r, shm_batch *sb, int n, export_batch *b, int *ring_batches)
{
    r->n_held++;
    (*ring_batches)++;
    if (sb->first_seq + sb->count > r->taken_end)
        r->taken_end = sb->first_seq + sb->count;
    /* An orphaned batch may be larger than asked for: make room for all. */
    if (export_batch_reserve(b, (size_t)n) != 0)
        return SHM_ENOMEM;
    decode_batch(r, sb, b);
    if (sb->redelivered)
        b->may_repeat = true;
    return 0;
}

int ring_reader_fill(ring_reader *r, export_batch *b, size_t max_rows, int max_age_ms,
                     int idle_ms, int *ring_batches)
{
    size_t before = b->n;
    *ring_batches = 0;
    int64_t first_ms = 0;
    if (!r->consumer) {
        int rc = shm_consumer_open(r->seg, r->group, r->member, &r->consumer);
        if (rc)
            return rc;
    }
    while (b->n < max_rows && r->n_held < SHM_MEMBER_BATCHES) {
        int timeout;
        if (b->n == before) {
            timeout = idle_ms;
        } else {
            int64_t left = first_ms + max_age_ms - mono_ms();
            if (left <= 0)
                break;
            timeout = (int)left;
        }
        shm_batch *sb = &r->held[r->n_held];
        size_t want = max_rows - b->n;
        uint32_t ask = want > RING_READER_MAX_ASK ? RING_READER_MAX_ASK : (uint32_t)want;
        int n = shm_consume(r->consumer, ask, timeout, sb);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        if (b->n == before)
            first_ms = mono_ms();
        int rc = take_batch(r, sb, n, b, ring_batches);
        if (rc)
            return rc;
    }
    return (int)(b->n - before);
}

/* Whether the group has at least `need` records waiting (beyond every batch
 * handed out), or a batch of a dead member waiting to be re-delivered. */
static bool backlogged(const ring_reader *r, uint64_t need)
{
    shm_ring_stats rs;
    if (shm_ring_stats_get(r->seg, &rs) != 0)
        return false;
    /* The group's next sequence is at least taken_end: when even this upper
     * bound is short, there is no backlog (and no need to look further). */
    if (rs.head_seq < r->taken_end + need)
        return false;
    shm_group_stats gs[SHM_MAX_GROUPS];
    int n = shm_group_stats_get(r->seg, gs, SHM_MAX_GROUPS);
    for (int i = 0; i < n && i < SHM_MAX_GROUPS; i++) {
        if (strcmp(gs[i].name, r->group) != 0)
            continue;
        if (gs[i].orphans > 0)
            return true;
        /* The head was read before the group's next: records other
         * members took in between make this look smaller, never larger. */
        return rs.head_seq >= gs[i].next_seq + need;
    }
    return false;
}

int ring_reader_group(ring_reader *r, export_batch *b, size_t batch_rows, size_t max_rows,
                      int max_ring_batches, int *ring_batches)
{
    int added = 0;
    if (!r->consumer)
        return 0;
    while (b->n < max_rows && *ring_batches < max_ring_batches && r->n_held < SHM_MEMBER_BATCHES) {
        size_t want = max_rows - b->n < batch_rows ? max_rows - b->n : batch_rows;
        uint32_t ask = want > RING_READER_MAX_ASK ? RING_READER_MAX_ASK : (uint32_t)want;
        if (!backlogged(r, ask))
            break;
        shm_batch *sb = &r->held[r->n_held];
        int n = shm_consume(r->consumer, ask, 0, sb);
        if (n < 0)
            return n;
        if (n == 0)
            break;
        int rc = take_batch(r, sb, n, b, ring_batches);
        if (rc)
            return rc;
        added++;
        if (!sb->redelivered && (uint32_t)n < ask)
            break; /* what was waiting is taken */
    }
    return added;
}

int ring_reader_ack_oldest(ring_reader *r, int count)
{
    int rc = 0;
    if (count > r->n_held)
        count = r->n_held;
    for (int i = 0; i < count; i++) {
        int e = r->consumer ? shm_ack(r->consumer, &r->held[i]) : SHM_EINVAL;
        if (e && !rc)
            rc = e;
    }
    /* shm_batch holds no pointers into itself: moving it is fine. */
    memmove(&r->held[0], &r->held[count], (size_t)(r->n_held - count) * sizeof r->held[0]);
    r->n_held -= count;
    if (rc)
        log_error("group %s: acknowledgement refused (%s): this member was declared dead and "
                  "its batches were given to another member",
                  r->group, shm_strerror(rc));
    return rc;
}

int ring_reader_release(ring_reader *r)
{
    if (r->n_held == 0)
        return 0;
    export_metrics_add(r->metrics->released, (uint64_t)r->n_held);
    r->n_held = 0;
    /* Closing hands the batches to the group; rejoining right away keeps
     * this member visible (shmstat) while it waits for its target. When the
     * rejoin fails, ring_reader_fill tries again. */
    shm_consumer_close(&r->consumer);
    int rc = shm_consumer_open(r->seg, r->group, r->member, &r->consumer);
    if (rc)
        log_warn("group %s: rejoining as %s failed: %s", r->group, r->member, shm_last_error());
    return 0;
}

bool ring_reader_holding(const ring_reader *r)
{
    return r->n_held > 0;
}

double ring_reader_utilization(const ring_reader *r)
{
    shm_group_stats gs[SHM_MAX_GROUPS];
    int n = shm_group_stats_get(r->seg, gs, SHM_MAX_GROUPS);
    for (int i = 0; i < n && i < SHM_MAX_GROUPS; i++)
        if (strcmp(gs[i].name, r->group) == 0)
            return gs[i].utilization;
    return 0;
}

void ring_reader_heartbeat(ring_reader *r)
{
    if (r->consumer)
        shm_consumer_heartbeat(r->consumer);
}

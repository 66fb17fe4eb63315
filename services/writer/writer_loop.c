/*
 * writer_loop.c — shmbus-writer's main loop: consume batches of group
 * `writer`, encode them into blocks, append them durably, acknowledge.
 *
 * The durability contract, in the order things happen:
 *   1. shm_consume() hands this writer a batch; it now holds it.
 *   2. Its records are verified (shm_tag_value_decode; failures are counted
 *      and skipped) and added to the block builder.
 *   3. A block (everything consumed since the last one: group commit) is
 *      written at the end of the chunk, and fdatasync follows it — linked in
 *      io_uring, so the sync starts only after the write completed in full.
 *   4. Only when that sync (and every earlier one) has completed are the
 *      block's batches acknowledged with shm_ack().
 * A writer that dies anywhere before 4 leaves its batches held; the ring
 * re-delivers them to another member (or to this writer restarted), and
 * readers drop the records stored twice by sequence number.
 *
 * Flushes happen when the pending records reach batch_records, when the
 * oldest is batch_age_ms old, when the writer holds as many batches as the
 * ring allows, or when the builder holds block_points points — and only
 * into a free appender slot, so while `depth` writes are in flight the next
 * block grows: one sync covers everything consumed meanwhile. A block whose
 * encoding does not fit one write buffer is cut into several blocks, each
 * written and synced from its own slot; the batches are acknowledged with
 * the last one (completions are handled in order), so buffers stay small
 * (memory) while blocks do not.
 *
 * Failures: a write that fails for lack of space (ENOSPC, EDQUOT) is kept
 * and resubmitted with backoff, nothing is acknowledged meanwhile and no more
 * is consumed (logged once per episode; resumes when space returns). A
 * failed fdatasync is never retried: after a writeback error Linux may have
 * marked the pages clean, so a second sync could succeed falsely
 * ("fsyncgate"); the writer exits non-zero without acknowledging, and its
 * batches are re-delivered.
 */
#include "log.h"
#include "writer.h"
#include "writer_appender.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONSUME_MAX 4096u          /* records per ring batch: 512 KiB of ring, still in
                                      cache when its records are read */
#define CONSUME_MIN 64u            /* a smaller room makes the block go out first */
#define IDLE_WAIT_MS 100           /* housekeeping cadence when idle */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define MIN_POINTS_PER_COLUMN 16
/* What the builder may keep between blocks: block_points points of 36
 * bytes, twice (a growing column's spare room). */
#define BUILDER_BYTES_PER_POINT 72u

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

struct flush {
    shm_batch batches[SHM_MEMBER_BATCHES];
    unsigned nbatches;
    uint64_t points;
    uint64_t offset;
};

struct writer {
    const writer_options *o;
    shm_segment *seg;
    shm_consumer *cons;
    writer_dir dir;
    appender *app;
    sealer *seal;
    writer_catalog *cat;
    writer_counters ctr;
    chunk_builder *builder;
    /* batches whose records are in the builder */
    shm_batch pend[SHM_MEMBER_BATCHES];
    unsigned npend;
    int64_t pend_since;
    unsigned held; /* batches held: pending + in flight */
    struct flush flushes[APPENDER_MAX_DEPTH];
    /* the chunk being appended to */
    int fd;
    char chunk_name[64];
    uint64_t chunk_off;
    int64_t chunk_started;
    bool rotate;
    chunk_file_header header;
    /* disk full */
    bool disk_full;
    bool retry_pending;
    unsigned retry_slot;
    int64_t retry_at;
    unsigned backoff_ms;
    bool create_failed_logged;
    /* invalid records */
    uint64_t invalid_since_log;
    int64_t invalid_logged_at;
    int64_t last_heartbeat;
    bool backlog; /* the last consume was limited by its maximum: more is waiting */
    size_t column_fit; /* points of one column that surely fit a write buffer */
};

static void backoff_next(struct writer *w, int64_t now)
{
    w->retry_at = now + (int64_t)w->backoff_ms * 1000000;
    w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
}

/* --------------------------------------------------------------- chunks */

static int open_chunk(struct writer *w)
{
    w->header.chunk_no = w->dir.next_no;
    w->header.created_ns = writer_real_ns();
    int fd = chunk_create(w->dir.dirfd, &w->header, w->chunk_name, sizeof w->chunk_name);
    if (fd < 0)
        return fd;
    w->dir.next_no++;
    w->fd = fd;
    w->chunk_off = CHUNK_FILE_HEADER_SIZE;
    w->chunk_started = writer_mono_ns();
    int rc = appender_set_fd(w->app, fd);
    if (rc < 0)
        return chunk_errno_code(-rc);
    log_info("appending to %s/%s", w->dir.path, w->chunk_name);
    return 0;
}

/* Closes the current chunk (nothing in flight) and hands it to the sealer;
 * an empty one is removed. */
static void close_chunk(struct writer *w)
{
    if (w->fd < 0)
        return;
    close(w->fd);
    w->fd = -1;
    if (w->chunk_off > CHUNK_FILE_HEADER_SIZE) {
        sealer_enqueue(w->seal, w->chunk_name);
    } else {
        unlinkat(w->dir.dirfd, w->chunk_name, 0);
        chunk_fsync_dir(w->dir.dirfd, w->dir.path);
    }
    counter_set(w->ctr.chunk_bytes, 0);
}

/* Moves to a new chunk once nothing is in flight. Returns 0 when done or
 * not yet possible, a negative code on a fatal error. */
static int rotate_if_due(struct writer *w, int64_t now)
{
    if (!w->rotate && w->fd >= 0) {
        bool big = w->chunk_off >= w->o->chunk_bytes;
        bool old = now - w->chunk_started >= (int64_t)w->o->chunk_age_s * 1000000000;
        if ((big || old) && w->chunk_off > CHUNK_FILE_HEADER_SIZE)
            w->rotate = true;
    }
    if (!w->rotate || appender_busy(w->app) > 0)
        return 0;
    if (w->fd >= 0)
        close_chunk(w);
    if (now < w->retry_at && w->create_failed_logged)
        return 0;
    int rc = open_chunk(w);
    if (rc == 0) {
        if (w->create_failed_logged)
            log_info("space is back: %s/%s created", w->dir.path, w->chunk_name);
        w->create_failed_logged = false;
        w->rotate = false;
        w->backoff_ms = BACKOFF_MIN_MS;
        return 0;
    }
    if (rc != CHUNK_ENOSPC)
        return rc;
    if (!w->create_failed_logged) {
        log_error("%s; retrying with backoff (nothing is acknowledged meanwhile)",
                  chunk_last_error());
        counter_add(w->ctr.disk_full, 1);
    }
    w->create_failed_logged = true;
    backoff_next(w, now);
    return 0;
}

/* ------------------------------------------------------------ consuming */

static void note_invalid(struct writer *w, int64_t now)
{
    counter_add(w->ctr.invalid, 1);
    if (w->invalid_logged_at == 0 || now - w->invalid_logged_at >= 10ll * 1000000000) {
        log_warn("record failed verification and was skipped: %s (%llu more since the last "
                 "report)",
                 shm_last_error(), (unsigned long long)w->invalid_since_log);
        w->invalid_logged_at = now;
        w->invalid_since_log = 0;
    } else {
        w->invalid_since_log++;
    }
}

/* Records the builder may still take: block_points in all, and no more in
 * one column than one write buffer can hold (a batch may all be one tag). */
static uint32_t block_room(const struct writer *w)
{
    size_t points = chunk_builder_points(w->builder);
    size_t col = chunk_builder_max_column(w->builder);
    size_t room = points < w->o->block_points ? w->o->block_points - points : 0;
    size_t col_room = col < w->column_fit ? w->column_fit - col : 0;
    return (uint32_t)(room < col_room ? room : col_room);
}

/* Takes one batch from the ring into the builder. Returns records added,
 * 0 when nothing came, or a negative fatal code. */
static int consume_one(struct writer *w, int timeout_ms, int64_t now)
{
    if (chunk_builder_encoding(w->builder))
        return 0; /* the rest of a block waits for a free slot */
    uint32_t room = block_room(w);
    if (room < CONSUME_MIN)
        return 0;
    uint32_t max = w->o->batch_records > CONSUME_MAX ? w->o->batch_records : CONSUME_MAX;
    if (max > room)
        max = room;
    shm_batch b;
    int n = shm_consume(w->cons, max, timeout_ms, &b);
    w->backlog = n > 0 && (uint32_t)n == max;
    if (n == 0)
        return 0;
    if (n < 0) {
        log_error("consume: %s", shm_last_error());
        return n;
    }
    shm_record r;
    int added = 0;
    while (shm_batch_next(w->cons, &b, &r) == 1) {
        shm_tag_value v;
        if (shm_tag_value_decode(r.data, r.len, &v) != 0) {
            shm_batch_mark_invalid(&b);
            note_invalid(w, now);
            continue;
        }
        v.sequence = r.seq; /* the ring's number is the identity readers dedupe by */
        if (chunk_builder_add(w->builder, &v) < 0) {
            log_error("out of memory building a block");
            return CHUNK_ENOMEM;
        }
        writer_catalog_seen(w->cat, v.tag_id);
        added++;
    }
    if (added == 0) {
        /* padding, lost or invalid only: nothing to make durable */
        if (shm_ack(w->cons, &b) != 0)
            log_warn("ack: %s", shm_last_error());
        return 0;
    }
    if (w->npend == 0)
        w->pend_since = now;
    w->pend[w->npend++] = b;
    w->held++;
    return added;
}

/* ------------------------------------------------------------- flushing */

/* Group commit: while the ring has a backlog and writes are in flight, the
 * next block keeps growing (bigger blocks: fewer syncs, less per-column
 * overhead); otherwise a block goes out at batch_records or batch_age_ms. */
static bool flush_due(const struct writer *w, int64_t now)
{
    size_t points = chunk_builder_points(w->builder);
    if (points == 0)
        return false;
    if (chunk_builder_encoding(w->builder) || stop_requested || w->held >= SHM_MEMBER_BATCHES ||
        now - w->pend_since >= (int64_t)w->o->batch_age_ms * 1000000 ||
        block_room(w) < CONSUME_MIN)
        return true;
    /* Per column a block costs a few dozen bytes and about a microsecond
     * to encode: with a backlog, wait until columns hold a few points each. */
    bool disk_idle = appender_busy(w->app) == 0;
    bool worth_it = points >= MIN_POINTS_PER_COLUMN * chunk_builder_columns(w->builder);
    if (points >= w->o->batch_records && (!w->backlog || (disk_idle && worth_it)))
        return true;
    /* a write in flight and more waiting: add another in parallel once the
     * block holds its share of the batches the ring lets us hold */
    unsigned share = SHM_MEMBER_BATCHES / w->o->depth;
    return w->backlog && w->npend >= (share ? share : 1);
}

/* Writes the next block (or the next part of one cut to the buffer size)
 * from a free slot. Returns 1 when a write was submitted, 0 when no slot is
 * free, or a negative fatal code. */
static int flush(struct writer *w)
{
    unsigned slot;
    uint8_t *buf = appender_acquire(w->app, &slot);
    if (!buf)
        return 0;
    size_t len;
    chunk_block_info info;
    int rc = chunk_builder_encode_next(w->builder, buf, appender_buffer_size(w->app), &len, &info);
    if (rc < 0) {
        log_error("encode block: %s", chunk_last_error());
        return rc;
    }
    struct flush *f = &w->flushes[slot];
    f->nbatches = 0;
    if (rc == 0) {
        /* the last part: its sync makes the batches durable */
        memcpy(f->batches, w->pend, w->npend * sizeof *w->pend);
        f->nbatches = w->npend;
        w->npend = 0;
        chunk_builder_trim(w->builder, (size_t)w->o->block_points * BUILDER_BYTES_PER_POINT);
    }
    f->points = info.points;
    f->offset = w->chunk_off;
    rc = appender_submit(w->app, slot, len, w->chunk_off);
    if (rc < 0) {
        log_error("submit write of %s/%s: %s", w->dir.path, w->chunk_name, strerror(-rc));
        return CHUNK_EIO;
    }
    w->chunk_off += len;
    counter_set(w->ctr.chunk_bytes, w->chunk_off);
    return 1;
}

/* ---------------------------------------------------------- completions */

static int on_result(struct writer *w, const append_result *r, int64_t now)
{
    struct flush *f = &w->flushes[r->slot];
    if (r->status == APPEND_OK) {
        for (unsigned i = 0; i < f->nbatches; i++)
            if (shm_ack(w->cons, &f->batches[i]) != 0) {
                /* this member was reclaimed as dead meanwhile: the batch went
                 * to another member, and the copy written here is dropped by
                 * readers as a duplicate */
                log_warn("ack: %s", shm_last_error());
            }
        w->held -= f->nbatches;
        counter_add(w->ctr.points, f->points);
        counter_add(w->ctr.bytes, r->len);
        counter_add(w->ctr.batches, f->nbatches);
        counter_add(w->ctr.syncs, 1);
        counter_add(w->ctr.sync_ns, (uint64_t)r->latency_ns);
        counter_set(w->ctr.sync_ns_last, (uint64_t)r->latency_ns);
        if (w->ctr.sync_ns_max && (uint64_t)r->latency_ns > shm_counter_get(w->ctr.sync_ns_max))
            counter_set(w->ctr.sync_ns_max, (uint64_t)r->latency_ns);
        f->nbatches = 0;
        if (w->disk_full) {
            log_info("space is back: writing and acknowledging again");
            w->disk_full = false;
            w->backoff_ms = BACKOFF_MIN_MS;
        }
        return 0;
    }
    counter_add(w->ctr.errors, 1);
    if (r->status == APPEND_RETRY) {
        if (!w->disk_full) {
            log_error("write of %zu bytes at offset %llu of %s/%s: %s; not acknowledging, "
                      "retrying with backoff",
                      r->len, (unsigned long long)f->offset, w->dir.path, w->chunk_name,
                      strerror(r->err));
            counter_add(w->ctr.disk_full, 1);
        }
        w->disk_full = true;
        w->retry_pending = true;
        w->retry_slot = r->slot;
        backoff_next(w, now);
        return 0;
    }
    log_error("%s of %s/%s (block at offset %llu) failed: %s; exiting without acknowledging "
              "(a failed sync is never retried)",
              r->in_sync ? "fdatasync" : "write", w->dir.path, w->chunk_name,
              (unsigned long long)f->offset, strerror(r->err));
    return CHUNK_EIO;
}

static int reap(struct writer *w, int timeout_ms, int64_t now)
{
    append_result r;
    int got = 0;
    for (;;) {
        int rc = appender_poll(w->app, got ? 0 : timeout_ms, &r);
        if (rc < 0) {
            log_error("io_uring: %s", strerror(-rc));
            return CHUNK_EIO;
        }
        if (rc == 0)
            return got;
        got++;
        rc = on_result(w, &r, now);
        if (rc < 0)
            return rc;
    }
}

/* --------------------------------------------------------------- set-up */

struct recovered {
    char names[256][64];
    unsigned n;
};

static void note_recovered(void *ctx, const char *name)
{
    struct recovered *r = ctx;
    if (r->n < 256)
        snprintf(r->names[r->n++], sizeof r->names[0], "%.63s", name);
    else
        log_warn("%s stays unsealed until the next start (too many to seal at once)", name);
}

static int attach_segment(struct writer *w)
{
    int rc = shm_segment_open(w->o->segment, NULL, SHM_OPEN_ATTACH, &w->seg);
    if (rc == SHM_ENOENT)
        rc = shm_segment_open(w->o->segment, &w->o->segment_options, SHM_OPEN_CREATE, &w->seg);
    if (rc < 0) {
        log_error("segment %s: %s", w->o->segment, shm_last_error());
        return rc;
    }
    shm_segment_set_log(w->seg, log_shm_sink, NULL);
    rc = shm_consumer_open(w->seg, "writer", w->o->name, &w->cons);
    if (rc < 0) {
        log_error("join group writer of segment %s: %s", w->o->segment, shm_last_error());
        return rc;
    }
    shm_segment_info info;
    shm_segment_info_get(w->seg, &info);
    memset(&w->header, 0, sizeof w->header);
    w->header.version = CHUNK_FORMAT_VERSION;
    w->header.segment_created_ns = info.created_ns;
    snprintf(w->header.writer, sizeof w->header.writer, "%s", w->o->name);
    snprintf(w->header.segment, sizeof w->header.segment, "%s", w->o->segment);
    return 0;
}

/* What the writer's memory is made of, at most (README "Memory"): the
 * figures a user sizes the writer by. Code, libraries and the ring (shared
 * by the group) come on top. */
static void log_memory_plan(const writer_options *o)
{
    const double mib = 1024.0 * 1024.0;
    double io = (double)o->depth * (double)o->buffer_bytes / mib;
    double builder = (double)o->block_points * BUILDER_BYTES_PER_POINT / mib;
    double seal = (double)o->seal_memory / mib;
    double seal_buffers = (double)(CHUNK_SEAL_BUFFERS) / mib;
    log_info("memory plan: write buffers %u x %.2f MiB = %.1f MiB (pinned), block builder "
             "<= %u points = %.1f MiB, sealer %.1f MiB of points + %.1f MiB of buffers; "
             "%.1f MiB in all besides code and the ring",
             o->depth, (double)o->buffer_bytes / mib, io, o->block_points, builder, seal,
             seal_buffers, io + builder + seal + seal_buffers);
}

/* In order: the data directory (lock, recovery) before the ring, so that a
 * writer that cannot write never holds batches; then segment, consumer,
 * appender, sealer (fed the recovered chunks), catalog, first chunk. */
static int setup(struct writer *w)
{
    struct recovered *rec = calloc(1, sizeof *rec);
    if (!rec)
        return CHUNK_ENOMEM;
    int rc = writer_dir_open(&w->dir, w->o, note_recovered, rec);
    if (rc == 0)
        rc = attach_segment(w);
    if (rc == 0) {
        writer_counters_open(&w->ctr, w->seg, w->o->name);
        rc = appender_open(&w->app, w->o->force_pwrite, w->o->depth, w->o->buffer_bytes);
        if (rc < 0)
            log_error("appender: %s", strerror(-rc));
    }
    if (rc == 0) {
        appender_fault_sync_after(w->app, w->o->fault_fsync_after);
        rc = sealer_start(&w->seal, w->o, w->dir.dirfd, &w->ctr);
        if (rc < 0)
            log_error("sealer thread: %s", strerror(-rc));
    }
    for (unsigned i = 0; rc == 0 && i < rec->n; i++)
        sealer_enqueue(w->seal, rec->names[i]);
    free(rec);
    if (rc == 0 && (rc = chunk_builder_new(&w->builder)) < 0)
        log_error("block builder: %s", chunk_last_error());
    if (rc == 0 && (rc = writer_catalog_open(&w->cat, w->seg, w->dir.dirfd, w->o->name,
                                             w->o->segment)) < 0)
        log_error("catalog: %s", chunk_last_error());
    if (rc == 0) {
        w->rotate = true; /* opens the first chunk */
        rc = rotate_if_due(w, writer_mono_ns());
        if (rc < 0)
            log_error("%s", chunk_last_error());
    }
    if (rc == 0) {
        w->column_fit = chunk_builder_column_fit(w->o->buffer_bytes);
        log_info("writer %s: segment %s, group writer, %s appends (%u in flight), chunks in %s",
                 w->o->name, w->o->segment, appender_kind(w->app), w->o->depth, w->dir.path);
        log_memory_plan(w->o);
    }
    return rc;
}

static void teardown(struct writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    sealer_stop(&w->seal);
    writer_catalog_close(&w->cat);
    chunk_builder_free(&w->builder);
    appender_close(&w->app);
    shm_consumer_close(&w->cons);
    shm_segment_close(&w->seg);
    writer_dir_close(&w->dir);
}

/* ----------------------------------------------------------------- loop */

static int step(struct writer *w)
{
    int64_t now = writer_mono_ns();
    if (now - w->last_heartbeat >= 100000000) {
        shm_consumer_heartbeat(w->cons);
        writer_catalog_sync(w->cat, now, false);
        w->last_heartbeat = now;
    }
    int rc = reap(w, 0, now);
    if (rc < 0)
        return rc;
    if (w->retry_pending && now >= w->retry_at) {
        w->retry_pending = false;
        if ((rc = appender_resubmit(w->app, w->retry_slot)) < 0) {
            log_error("resubmit: %s", strerror(-rc));
            return CHUNK_EIO;
        }
    }
    if ((rc = rotate_if_due(w, now)) < 0) {
        log_error("%s", chunk_last_error());
        return rc;
    }
    bool can_write = w->fd >= 0 && !w->rotate && !w->disk_full;
    bool busy = appender_busy(w->app) > 0;
    /* Consume while the writer may hold more; wait in the ring only when
     * nothing else needs attention. */
    int got = 0;
    if (!stop_requested && w->held < SHM_MEMBER_BATCHES && !w->disk_full && !w->create_failed_logged) {
        int wait = 0;
        if (!busy && !w->rotate) {
            size_t points = chunk_builder_points(w->builder);
            int64_t age_left = points ? w->pend_since + (int64_t)w->o->batch_age_ms * 1000000 - now
                                      : (int64_t)IDLE_WAIT_MS * 1000000;
            wait = age_left <= 0 ? 0 : (int)(age_left / 1000000);
            if (wait > IDLE_WAIT_MS)
                wait = IDLE_WAIT_MS;
        }
        got = consume_one(w, wait, now);
        if (got < 0)
            return got;
        now = writer_mono_ns();
    }
    if (can_write && flush_due(w, now)) {
        rc = flush(w);
        if (rc < 0)
            return rc;
        if (rc > 0)
            return 0;
    }
    /* Nothing consumed and nothing flushed: wait for a completion, a retry
     * time or a little while. */
    if (got == 0) {
        int wait_ms = busy ? 1 : (w->disk_full || w->create_failed_logged || stop_requested) ? 10 : 0;
        if (wait_ms) {
            rc = reap(w, wait_ms, writer_mono_ns());
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

/* After SIGTERM: flush what is pending, wait for every write, seal. */
static int drain(struct writer *w)
{
    int64_t giveup = 0;
    for (;;) {
        bool pending = chunk_builder_points(w->builder) > 0;
        if (!pending && appender_busy(w->app) == 0)
            break;
        int rc = step(w);
        if (rc < 0)
            return rc;
        if (w->disk_full || w->create_failed_logged) {
            int64_t now = writer_mono_ns();
            if (!giveup)
                giveup = now + 3ll * 1000000000;
            if (now > giveup) {
                log_error("stopping while the disk is full: %u batches stay unacknowledged and "
                          "will be delivered again",
                          w->held);
                return CHUNK_ENOSPC;
            }
        }
    }
    close_chunk(w);
    return 0;
}

int writer_run(const writer_options *o)
{
    struct writer w = {.o = o, .fd = -1, .backoff_ms = BACKOFF_MIN_MS};
    w.dir.dirfd = w.dir.lockfd = -1;
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = setup(&w);
    while (rc == 0 && !stop_requested)
        rc = step(&w);
    if (rc == 0) {
        log_info("stopping: writing what is pending");
        rc = drain(&w);
    }
    if (rc == 0)
        writer_catalog_sync(w.cat, writer_mono_ns(), false);
    if (rc < 0 && w.fd >= 0) {
        /* Exit without acknowledging: the batches are re-delivered. */
        close(w.fd);
        w.fd = -1;
    }
    teardown(&w);
    if (rc == 0)
        log_info("stopped");
    return rc < 0 ? 1 : 0;
}

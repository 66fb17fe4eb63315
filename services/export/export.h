/*
 * export.h — private to shmbus-export: the pieces of the export service and
 * how they fit. Not a public API.
 *
 *   ring_reader  takes batches of the consumer group (export-pg / export-mqtt)
 *                from the ring and decodes them into export_rows; acknowledges
 *                or hands them back to the group.
 *   engine       the loop: fill a batch (under backlog, several grouped into
 *                one submission: group commit), give it to the target,
 *                acknowledge only what the target confirmed; outages,
 *                backoff, spool.
 *   spool        a CRC-checked local file for what was taken off the ring
 *                while the target was away (drop-oldest segments only).
 *   targets      postgres (libpq, COPY + ON CONFLICT) and mqtt (libmosquitto,
 *                QoS 1, PUBACK per message), behind export_target_ops.
 *   catalog      tag id -> name, device, unit, data type, from the segment.
 *   metrics      the named counters in the segment (shmstat, /metrics).
 *
 * Threading: shmbus-export is single-threaded; nothing here is shared
 * between threads. Errors are negative codes (-errno style or EXPORT_E*);
 * a human-readable reason goes into the caller's buffer where one exists.
 */
#ifndef SHMBUS_EXPORT_H
#define SHMBUS_EXPORT_H

#include <shmbus/shm.h>

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EXPORT_REASON_MAX 512

/* Outcomes of a target operation besides 0. */
enum export_error {
    EXPORT_EDOWN = -1000,   /* the target is unreachable or refused us: retry later */
    EXPORT_EREJECT = -1001, /* the target refused the data itself (e.g. incompatible table) */
    EXPORT_ETIMEOUT = -1002, /* no confirmation in time */
    EXPORT_ENOMEM = -1003,
    EXPORT_EIO = -1004,      /* local file error (spool) */
    EXPORT_ECORRUPT = -1005, /* a spool block failed its CRC */
};
const char *export_strerror(int err);

/* One record as it leaves the host: a decoded TagValue. 48 bytes, also the
 * spool's on-disk row (host byte order; the spool header records it). */
typedef struct export_row {
    uint64_t seq;
    int64_t time_ns;
    uint32_t tag_id;
    uint32_t device_id;
    double value;
    int64_t raw;
    uint8_t quality;
    uint8_t exception_code;
    uint16_t flags;
    uint32_t reserved;
} export_row;
_Static_assert(sizeof(export_row) == 48, "export_row is the spool row layout");

/* A batch handed to a target: one transaction (PostgreSQL) or one set of
 * PUBACKs (MQTT). Under backlog it may hold several batches of the ring
 * (group commit, engine.c). `id` changes with every new batch, so a target
 * can tell a retry of the same batch (resume) from a new one. */
typedef struct export_batch {
    export_row *rows;
    size_t n;
    size_t cap;
    uint64_t id;
    bool may_repeat; /* some rows may already be at the target (redelivered, spool, retry) */
} export_batch;

int export_batch_reserve(export_batch *b, size_t n);
void export_batch_free(export_batch *b);

/* ------------------------------------------------------------- catalog */

/* What the catalog says about a tag; strings are "" when unknown. */
typedef struct export_tag {
    char name[64];
    char device[64];
    char unit[32];
    const char *data_type; /* shm_data_type_name(), or "unknown" */
    bool known;            /* the catalog has an entry for this tag id */
    uint32_t version;      /* changes whenever the entry's content changes */
} export_tag;

typedef struct export_catalog export_catalog;
int export_catalog_open(shm_segment *seg, export_catalog **out);
void export_catalog_close(export_catalog **cat);
/* The entry of tag_id, re-read from the segment when older than a few
 * seconds. Never NULL: an unknown or out-of-range id gives known == false. */
const export_tag *export_catalog_get(export_catalog *cat, uint32_t tag_id);
uint32_t export_catalog_capacity(const export_catalog *cat); /* tag ids are below it */

/* ------------------------------------------------------------- metrics */

typedef struct export_metrics {
    shm_counter *batches;    /* batches the target confirmed */
    shm_counter *rows;       /* rows (postgres) or messages (mqtt) confirmed */
    shm_counter *duplicates; /* rows the table already had (exactly-once at work) */
    shm_counter *retries;    /* connection or send attempts that failed */
    shm_counter *outages;    /* times the target went away */
    shm_counter *connected;  /* gauge: 1 while connected */
    shm_counter *spool_bytes; /* gauge: bytes waiting in spool files */
    shm_counter *spooled;    /* rows written to the spool */
    shm_counter *replayed;   /* rows replayed from the spool and confirmed */
    shm_counter *invalid;    /* ring records that failed verification */
    shm_counter *released;   /* batches handed back to the group during an outage */
    shm_counter *grouped;    /* ring batches that joined an earlier one's submission
                                (group commit under backlog) and were confirmed */
} export_metrics;

/* Opens shmbus_export_<what>{target="<target>",member="<member>"} for each
 * counter above (rows are "messages_total" for mqtt). Returns 0 or a
 * negative SHM_E* code. */
int export_metrics_open(shm_segment *seg, const char *target, const char *member,
                        export_metrics *m);
void export_metrics_add(shm_counter *c, uint64_t n); /* NULL-safe */
void export_metrics_set(shm_counter *c, uint64_t v);

/* ---------------------------------------------------------- ring reader */

typedef struct ring_reader ring_reader;
int ring_reader_open(shm_segment *seg, const char *group, const char *member,
                     export_metrics *metrics, ring_reader **out);
void ring_reader_close(ring_reader **r);

/* Appends records of the group to b until max_rows, max_age_ms after the
 * first record, or the member's batch limit. Returns the rows added (0 when
 * nothing came within idle_ms) or a negative SHM_E* code; *ring_batches
 * receives how many ring batches were taken (they stay held, in order, until
 * acknowledged or released). b->may_repeat is set when a redelivered ring
 * batch contributed. */
int ring_reader_fill(ring_reader *r, export_batch *b, size_t max_rows, int max_age_ms,
                     int idle_ms, int *ring_batches);
/* Group commit: while the group has at least one more batch of batch_rows
 * records waiting in the ring (or a batch of a dead member to re-deliver),
 * appends it to b without waiting, one ring batch of up to batch_rows
 * records at a time, until b holds max_rows rows or *ring_batches reaches
 * max_ring_batches. Stops after a ring batch shorter than asked (the
 * backlog is used up). Returns the ring batches added (also added to
 * *ring_batches; held like those of ring_reader_fill) or a negative SHM_E*
 * code. */
int ring_reader_group(ring_reader *r, export_batch *b, size_t batch_rows, size_t max_rows,
                      int max_ring_batches, int *ring_batches);
/* Acknowledges the `count` oldest ring batches held. */
int ring_reader_ack_oldest(ring_reader *r, int count);
/* Hands every held ring batch back to the group (closes and reopens the
 * member: the group re-delivers them to whoever asks first). */
int ring_reader_release(ring_reader *r);
bool ring_reader_holding(const ring_reader *r);
/* The group's share of the ring still unacknowledged, 0..1. */
double ring_reader_utilization(const ring_reader *r);
void ring_reader_heartbeat(ring_reader *r);

/* ---------------------------------------------------------------- spool */

/* The spool file of one member: <dir>/<target>-<member>.spool, locked with
 * flock while open. Rows are appended in CRC32C-checked blocks and fsynced
 * before the ring batch is acknowledged; replay reads blocks from the front
 * and advances a read offset kept in the header. */
typedef struct export_spool export_spool;

/* Opens (creating when missing) and locks `path`, recovers a torn tail.
 * Returns 0, -EWOULDBLOCK (another process holds it), -errno, or
 * EXPORT_ECORRUPT (the header is not a spool's). reason says why. */
int export_spool_open(const char *path, export_spool **out, char *reason, size_t len);
void export_spool_close(export_spool **s);
/* Appends rows as one block and fdatasyncs. Returns 0 or a negative code;
 * -ENOSPC also when max_bytes would be passed. */
int export_spool_append(export_spool *s, const export_row *rows, size_t n, uint64_t max_bytes);
/* Reads up to max_rows rows of whole blocks from the read offset into b (b
 * is cleared first). Returns the rows read (0: empty), or a negative code. */
int export_spool_peek(export_spool *s, export_batch *b, size_t max_rows);
/* Marks what the last peek returned as delivered; truncates the file when
 * it is all delivered. */
int export_spool_consume(export_spool *s);
uint64_t export_spool_pending_bytes(const export_spool *s);
const char *export_spool_path(const export_spool *s);

uint32_t export_crc32c(uint32_t crc, const void *data, size_t len);

/* -------------------------------------------------------------- backoff */

/* Exponential backoff with full jitter: the n-th delay is uniform in
 * [min/2, min(max, min * 2^n)]. */
typedef struct export_backoff {
    uint32_t min_ms, max_ms;
    uint32_t attempt;
    uint64_t rng;
} export_backoff;
void export_backoff_init(export_backoff *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed);
uint32_t export_backoff_next(export_backoff *b);
void export_backoff_reset(export_backoff *b);

/* -------------------------------------------------------------- secrets */

/* Reads a password file: the first line, without its line ending. Returns
 * 0, or -errno / -EINVAL (empty) with the reason (never the content). Warns
 * through *insecure when group or others may read it. */
int export_read_secret(const char *path, char *out, size_t cap, bool *insecure, char *reason,
                       size_t len);
/* Overwrites a secret in memory so it does not linger. */
void export_wipe(void *p, size_t n);

/* --------------------------------------------------------------- targets */

/* A target confirms batches, possibly several in flight at once (window).
 * Operations return 0, EXPORT_EDOWN (retry later: not reachable, refused,
 * lost), EXPORT_EREJECT (the target refuses this data or its setup, e.g. an
 * incompatible table: also retried, after the operator's fix),
 * EXPORT_ETIMEOUT or EXPORT_ENOMEM, with the reason in `reason`. */
typedef struct export_target_ops {
    const char *name;  /* "postgres", "mqtt": the target's label in logs and counters */
    const char *group; /* its consumer group */
    int (*connect)(void *t, char *reason, size_t len);
    /* Starts delivering b (b stays valid and unchanged until it is
     * collected or abandoned). Submitting a batch id the target still holds
     * resumes it (after a reconnect): only what was not confirmed is sent
     * again. */
    int (*submit)(void *t, const export_batch *b, char *reason, size_t len);
    /* Waits up to timeout_ms for confirmations (COMMIT, every PUBACK) and
     * returns how many of the oldest submitted batches are now confirmed
     * (>= 0), forgetting them; duplicates[i] receives the rows the target
     * already had for the i-th (0 when unknown). Or a negative code. */
    int (*collect)(void *t, int timeout_ms, uint64_t *duplicates, int max, char *reason,
                   size_t len);
    /* Called on every turn of the loop while connected, to keep the
     * connection alive (MQTT keepalive) and notice a lost one: 0 or
     * EXPORT_EDOWN with the reason. May be NULL. */
    int (*poll)(void *t, char *reason, size_t len);
    void (*disconnect)(void *t);
    /* Forget every batch submitted and not collected (they went to the
     * spool or back to the group). */
    void (*abandon)(void *t);
    /* Hands the target the segment's tag catalog, before the first connect
     * (targets are created before the segment is attached, so that bad
     * settings are reported at once). Returns 0 or EXPORT_ENOMEM. */
    int (*bind_catalog)(void *t, export_catalog *cat);
    /* Where the target lives, for logs, without secrets ("host=db port=5432
     * dbname=plant user=shmbus"). */
    const char *(*describe)(void *t);
    void (*destroy)(void *t);
} export_target_ops;

#define EXPORT_MAX_WINDOW 4

typedef struct export_target {
    const export_target_ops *ops;
    void *impl;
    int window; /* batches in flight at once (1..EXPORT_MAX_WINDOW) */
} export_target;

struct config;
/* Target constructors: read the configuration and any password file; they do
 * not connect. Return 0 or a negative code with the reason. */
int pg_target_create(const struct config *cfg, const char *member, export_target *out,
                     char *reason, size_t len);
int mqtt_target_create(const struct config *cfg, const char *member, export_target *out,
                       char *reason, size_t len);

/* ---------------------------------------------------------------- engine */

/* Group commit never makes a submission larger than this many rows (or
 * batch_records, when that is larger): it bounds the memory a backlog takes
 * (the rows, 48 bytes each, and their COPY encoding, 78 bytes each). */
#define EXPORT_GROUP_MAX_ROWS 10000

typedef struct export_engine_options {
    const char *member;     /* member name in the group, spool file name */
    size_t batch_records;
    int batch_age_ms;
    uint32_t backoff_min_ms, backoff_max_ms;
    uint64_t spool_max_bytes;
    /* Group commit: while the ring is backlogged, one submission carries up
     * to this many batches of batch_records (further bounded by
     * EXPORT_GROUP_MAX_ROWS and by the ring batches a member may hold,
     * shared by the target's window). 1: one batch per submission. */
    uint32_t max_batches_per_commit;
    const char *spool_dir;  /* <data_dir>/export */
    uint32_t commit_delay_ms; /* tests only: pause between confirmation and ring ack */
    bool always_dedupe;       /* tests and bench only: treat every batch as a repeat */
} export_engine_options;

/* Runs until *stop becomes non-zero. Returns 0 on an orderly stop or a
 * negative code when the service cannot go on (segment gone, spool broken). */
int export_engine_run(shm_segment *seg, export_target *target,
                      const export_engine_options *opts, volatile sig_atomic_t *stop);

#endif

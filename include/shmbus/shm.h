/*
 * shm.h — the public API of libshm, shmbus's shared-memory library.
 *
 * One POSIX shared-memory segment ("/shmbus.<name>") holds a lock-free ring of
 * fixed-size slots, up to 16 consumer groups, a member registry, counters and
 * a tag catalog. Producers claim slots, write records in place and commit;
 * every consumer group sees every record; members of one group compete for
 * batches and acknowledge them. Records are FlatBuffers (schemas/shmbus.fbs),
 * built, verified and read by the codec declared at the end of this header.
 *
 * Rules that hold for every function here:
 *  - Return 0 (or a count) on success and a negative SHM_E* code on failure;
 *    errno is never the channel. shm_strerror() names a code, and
 *    shm_last_error() returns the calling thread's last detailed diagnostic
 *    ("segment /shmbus.x: layout version 3, this build reads 1").
 *  - Handles are opaque, process-local, and not shared between threads unless
 *    a function says so. A segment handle may be shared by threads; producer
 *    and consumer handles belong to one thread at a time.
 *  - Options structs: a zero field means "the default".
 *  - close/destroy functions take a pointer to the handle and clear it.
 *
 * Everything in the segment itself is described in libshm/layout.h, which is
 * private: not a public API.
 */
#ifndef SHMBUS_SHM_H
#define SHMBUS_SHM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SHM_BUILDING_LIBRARY)
#define SHM_API __attribute__((visibility("default")))
#else
#define SHM_API
#endif

/* ---------------------------------------------------------------- errors */

#define SHM_ERRORS(X)                                                                  \
    X(SHM_EINVAL, -1, "invalid argument")                                              \
    X(SHM_ENAME, -2, "bad segment name (empty, too long, or contains '/')")            \
    X(SHM_ENOENT, -3, "segment does not exist")                                        \
    X(SHM_EEXIST, -4, "segment exists with another geometry")                          \
    X(SHM_EVERSION, -5, "segment has another layout version")                          \
    X(SHM_EFOREIGN, -6, "object is not a shmbus segment")                              \
    X(SHM_ETRUNCATED, -7, "segment is truncated")                                      \
    X(SHM_ECORRUPT, -8, "segment header is inconsistent")                              \
    X(SHM_ENOMEM, -9, "out of memory")                                                 \
    X(SHM_ESYS, -10, "system call failed")                                             \
    X(SHM_EFULL, -11, "ring is full")                                                  \
    X(SHM_ETOOBIG, -12, "record longer than the slot payload")                         \
    X(SHM_EEMPTY, -13, "zero-length record")                                           \
    X(SHM_ENOGROUP, -14, "unknown consumer group")                                     \
    X(SHM_EGROUPS, -15, "too many consumer groups")                                    \
    X(SHM_EMEMBERS, -16, "member registry is full")                                    \
    X(SHM_ETIMEDOUT, -17, "timed out")                                                 \
    X(SHM_EBADRECORD, -18, "record failed verification")                               \
    X(SHM_EREADONLY, -19, "segment is attached read-only")                             \
    X(SHM_ENOSPACE, -20, "region is full")                                             \
    X(SHM_EBUSY, -21, "segment has live members")                                      \
    X(SHM_EPAUSED, -22, "producers are paused by the controller")                      \
    X(SHM_EPERM, -23, "permission denied")                                             \
    X(SHM_EGEOMETRY, -24, "bad geometry (slot size 64..4096, power-of-two count)")     \
    X(SHM_ENOTFOUND, -25, "no such entry")                                             \
    X(SHM_ETAKEN, -26, "group name too long or reserved")

enum shm_error {
    SHM_OK = 0,
#define SHM__ERR_ENUM(name, value, text) name = value,
    SHM_ERRORS(SHM__ERR_ENUM)
#undef SHM__ERR_ENUM
};

/* Returns a static, human-readable text for an SHM_E* code (or "ok"). */
SHM_API const char *shm_strerror(int err);

/* Returns the calling thread's last detailed diagnostic; never NULL. */
SHM_API const char *shm_last_error(void);

/* --------------------------------------------------------------- limits */

#define SHM_MAX_GROUPS 16
#define SHM_NAME_MAX 31         /* segment, group and member names */
#define SHM_SLOT_HEADER 16      /* bytes of each slot taken by its header */
#define SHM_SLOT_MIN 64
#define SHM_SLOT_MAX 4096
#define SHM_MEMBER_BATCHES 16   /* batches one consumer may hold at once */
#define SHM_CLAIM_MAX 1024      /* slots one claim may cover */
#define SHM_COUNTER_NAME_MAX 111

/* ------------------------------------------------------------- segment */

typedef struct shm_segment shm_segment;

enum shm_policy {
    SHM_POLICY_DEFAULT = 0,      /* drop-oldest */
    SHM_POLICY_DROP_OLDEST = 1,  /* producers never wait; lagging groups lose the oldest */
    SHM_POLICY_BACKPRESSURE = 2, /* a put reports SHM_EFULL; nothing is overwritten */
};

typedef struct shm_segment_options {
    uint32_t slot_size;        /* bytes per slot, 64..4096, multiple of 64; default 128 */
    uint32_t slot_count;       /* power of two; default 65536 */
    uint32_t policy;           /* enum shm_policy */
    uint32_t max_members;      /* member registry slots; default 128, at most 256 */
    uint32_t catalog_capacity; /* tag catalog entries (tag ids 0..n-1); default 4096 */
    uint32_t counter_capacity; /* named counters; default 2048 */
    uint32_t mode;             /* permission bits; default 0660 */
    uint32_t util_warn_pct;    /* utilization warning threshold; default 80 */
} shm_segment_options;

enum shm_open_flags {
    SHM_OPEN_ATTACH = 0,      /* attach to an existing segment */
    SHM_OPEN_CREATE = 1 << 0, /* create if missing; attach if it exists with the same geometry */
    SHM_OPEN_RESET = 1 << 1,  /* with CREATE: replace an existing segment (refused while members live) */
    SHM_OPEN_READONLY = 1 << 2, /* map read-only; observers (shmstat) never write */
    SHM_OPEN_FORCE = 1 << 3,  /* with RESET: replace even with live members */
};

/* Log sink for warnings the library raises (utilization crossings, reclaims).
 * level: 0 info, 1 warning, 2 error. The default writes one line to stderr. */
typedef void (*shm_log_fn)(void *ctx, int level, const char *message);

/* Opens segment "/shmbus.<name>". opts may be NULL (defaults); on attach the
 * geometry comes from the segment and opts is only compared when non-zero
 * fields are given. Returns 0 and sets *out, or SHM_ENAME, SHM_ENOENT,
 * SHM_EEXIST, SHM_EVERSION, SHM_EFOREIGN, SHM_ETRUNCATED, SHM_ECORRUPT,
 * SHM_EGEOMETRY, SHM_EBUSY, SHM_EPERM, SHM_ESYS. On attach, members whose
 * processes are gone are reclaimed (their batches become re-deliverable). */
SHM_API int shm_segment_open(const char *name, const shm_segment_options *opts, unsigned flags,
                             shm_segment **out);

/* Unmaps and frees the handle; clears *seg. Members opened through it must be
 * closed first. The segment itself stays. */
SHM_API void shm_segment_close(shm_segment **seg);

/* Removes "/shmbus.<name>" from the system. Returns 0, SHM_ENAME, SHM_ENOENT. */
SHM_API int shm_segment_unlink(const char *name);

SHM_API void shm_segment_set_log(shm_segment *seg, shm_log_fn fn, void *ctx);

/* Geometry and identity of an open segment. */
typedef struct shm_segment_info {
    char name[SHM_NAME_MAX + 1];
    uint32_t layout_version;
    uint32_t slot_size;
    uint32_t slot_payload; /* slot_size - SHM_SLOT_HEADER */
    uint32_t slot_count;
    uint32_t policy;
    uint32_t max_members;
    uint32_t catalog_capacity;
    uint32_t counter_capacity;
    uint32_t util_warn_pct;
    uint64_t total_bytes;
    int64_t created_ns; /* CLOCK_REALTIME */
    int32_t creator_pid;
    uint64_t initial_seq; /* first sequence number this segment handed out */
    int readonly;
} shm_segment_info;

SHM_API int shm_segment_info_get(const shm_segment *seg, shm_segment_info *out);

/* ------------------------------------------------------------ members */

enum shm_role {
    SHM_ROLE_NONE = 0,
    SHM_ROLE_PRODUCER = 1,
    SHM_ROLE_CONSUMER = 2,
    SHM_ROLE_CONTROLLER = 3,
    SHM_ROLE_OBSERVER = 4,
};

enum shm_member_state {
    SHM_MEMBER_FREE = 0,
    SHM_MEMBER_ACTIVE = 1,
    SHM_MEMBER_DEAD = 2, /* process gone; what it held is being cleaned up */
};

/* Members refresh their heartbeat inside put/claim/consume; a process that
 * blocks elsewhere for long calls this (cheap: one clock read and a store). */
typedef struct shm_producer shm_producer;
typedef struct shm_consumer shm_consumer;
SHM_API void shm_producer_heartbeat(shm_producer *p);
SHM_API void shm_consumer_heartbeat(shm_consumer *c);

/* Liveness of a process as the registry sees it: 1 when pid runs and its
 * start time (clock ticks since boot, /proc/<pid>/stat field 22) equals
 * start_time and it is not a zombie, else 0. */
SHM_API int shm_process_alive(int32_t pid, uint64_t start_time);

/* Reads the start time of a running process; 0 on failure. */
SHM_API uint64_t shm_process_start_time(int32_t pid);

/* Cleans up after dead members: pads slots claimed by dead producers (so
 * consumers move on), makes batches held by dead consumers re-deliverable,
 * frees their registry slots. Safe to call from any member at any time; the
 * controller calls it routinely, consumers and producers call it themselves
 * when they wait on a stuck slot. Returns the number of members reclaimed,
 * or a negative code. */
typedef struct shm_reclaim_report {
    uint32_t members_dead;      /* members found dead in this call */
    uint32_t slots_padded;      /* claimed-but-uncommitted slots skipped */
    uint32_t batches_orphaned;  /* consumer batches made re-deliverable */
    uint32_t members_freed;     /* registry slots made free */
} shm_reclaim_report;
SHM_API int shm_reclaim(shm_segment *seg, shm_reclaim_report *report);

/* ----------------------------------------------------------- producers */

/* Registers this process (thread) as a producer. name is free text (<= 31). */
SHM_API int shm_producer_open(shm_segment *seg, const char *name, shm_producer **out);
SHM_API void shm_producer_close(shm_producer **p);

/* Copying put of one record of 1..slot_payload bytes. Returns 0, SHM_EEMPTY,
 * SHM_ETOOBIG, SHM_EFULL (backpressure), SHM_EPAUSED. *seq_out (if not NULL)
 * receives the record's sequence number. */
SHM_API int shm_put(shm_producer *p, const void *data, uint32_t len, uint64_t *seq_out);

/* A claim of consecutive slots, written in place and then committed. */
typedef struct shm_slots {
    uint64_t first_seq; /* sequence number of slot 0 of the claim */
    uint32_t count;     /* slots claimed */
    uint32_t payload;   /* bytes writable per slot */
    /* private */
    shm_producer *owner;
    uint32_t lapped; /* slots lost to a lapping producer before we wrote them */
    uint32_t reserved;
    uint64_t lapped_bits[SHM_CLAIM_MAX / 64];
    uint64_t set_bits[SHM_CLAIM_MAX / 64]; /* slots given a length */
} shm_slots;

/* Claims up to n slots (1..SHM_CLAIM_MAX) with one atomic operation. Returns
 * the number claimed (under backpressure possibly fewer than n), SHM_EFULL
 * when none is free, SHM_EPAUSED, SHM_EINVAL. Each claimed slot must then be
 * given a length with shm_slots_set_len() (0 leaves it as a pad), and the
 * whole claim committed with shm_commit(). One claim at a time per producer. */
SHM_API int shm_claim(shm_producer *p, uint32_t n, shm_slots *c);

/* Writable payload of slot i of the claim (i < c->count). */
SHM_API void *shm_slots_buf(shm_slots *c, uint32_t i);

/* Sets the record length of slot i. Returns 0, SHM_ETOOBIG, SHM_EINVAL. */
SHM_API int shm_slots_set_len(shm_slots *c, uint32_t i, uint32_t len);

/* Publishes every slot of the claim (release order, slot by slot) and wakes
 * sleeping consumers if any. Returns the number of records committed. */
SHM_API int shm_commit(shm_producer *p, shm_slots *c);

/* ----------------------------------------------------------- consumers */

/* Joins consumer group `group` (created if it does not exist; a new group
 * starts at the newest record). Returns 0, SHM_EGROUPS, SHM_ETAKEN,
 * SHM_EMEMBERS, SHM_EREADONLY. */
SHM_API int shm_consumer_open(shm_segment *seg, const char *group, const char *name,
                              shm_consumer **out);
SHM_API void shm_consumer_close(shm_consumer **c);

/* A batch of consecutive sequence numbers held by one consumer until acked. */
typedef struct shm_batch {
    uint64_t first_seq;
    uint32_t count;       /* sequence numbers covered */
    uint32_t redelivered; /* 1 when taken over from a dead member */
    /* filled by shm_batch_next as it goes; read them after the loop */
    uint32_t delivered;   /* records returned */
    uint32_t lost;        /* overwritten before they could be read (drop-oldest) */
    uint32_t pads;        /* slots of dead producers, skipped */
    uint32_t invalid;     /* records the caller marked invalid */
    /* private */
    uint32_t pos;
    int32_t holder_member; /* registry slot whose batch entry this is */
    uint32_t entry;
    uint32_t gen;
} shm_batch;

typedef struct shm_record {
    uint64_t seq;
    const void *data; /* valid until the next shm_batch_next() on this consumer */
    uint32_t len;
} shm_record;

/* Takes the next batch of up to max records (re-deliveries of dead members'
 * batches first). Waits up to timeout_ms (0: do not wait, -1: forever) while
 * nothing is available: a short spin, then sleep on a futex. Returns the
 * number of sequence numbers in the batch (>0), 0 on timeout, or a negative
 * code (SHM_EMEMBERS when SHM_MEMBER_BATCHES are already held). */
SHM_API int shm_consume(shm_consumer *c, uint32_t max, int timeout_ms, shm_batch *b);

/* Next record of the batch: returns 1 and fills *r, or 0 at the end. Slots of
 * dead producers are skipped; records overwritten meanwhile (drop-oldest) are
 * counted in b->lost. Under backpressure r->data points into the slot (zero
 * copy); under drop-oldest it points to a validated copy. */
SHM_API int shm_batch_next(shm_consumer *c, shm_batch *b, shm_record *r);

/* Marks the record last returned as invalid (failed verification); counted. */
SHM_API void shm_batch_mark_invalid(shm_batch *b);

/* Acknowledges a batch: it will never be delivered again. Returns 0 or
 * SHM_EINVAL for a batch this consumer does not hold (e.g. after the member
 * was reclaimed as dead). */
SHM_API int shm_ack(shm_consumer *c, shm_batch *b);

/* ------------------------------------------------------------ counters */

/* A named 64-bit counter or gauge in the segment, self-describing, readable by
 * anyone who maps the segment. Names are Prometheus-style with optional
 * labels: `poller_requests_total{device="plc1"}`. Opening an existing name
 * returns the same counter, so a restarted process continues its totals. */
enum shm_counter_kind { SHM_COUNTER = 1, SHM_GAUGE = 2 };
typedef struct shm_counter shm_counter; /* points into the segment */

SHM_API int shm_counter_open(shm_segment *seg, const char *name, int kind, shm_counter **out);
SHM_API void shm_counter_add(shm_counter *c, uint64_t delta); /* atomic, relaxed */
SHM_API void shm_counter_set(shm_counter *c, uint64_t value);
SHM_API uint64_t shm_counter_get(const shm_counter *c);

/* Calls fn for each named counter; stops early when fn returns non-zero. */
typedef int (*shm_counter_visit_fn)(void *ctx, const char *name, int kind, uint64_t value);
SHM_API int shm_counter_foreach(const shm_segment *seg, shm_counter_visit_fn fn, void *ctx);

/* -------------------------------------------------------------- catalog */

/* The tag catalog: entry tag_id holds one encoded TagMeta record (seqlocked).
 * Returns 0, SHM_EINVAL (id out of range), SHM_ETOOBIG. */
SHM_API int shm_catalog_put(shm_segment *seg, uint32_t tag_id, const void *rec, uint32_t len);
/* Copies entry tag_id into buf; returns its length, 0 when empty, or a code. */
SHM_API int shm_catalog_get(const shm_segment *seg, uint32_t tag_id, void *buf, uint32_t cap);
#define SHM_CATALOG_ENTRY_MAX 1008

/* ------------------------------------------------------- observation */

/* A consistent-enough snapshot for inspectors: every figure is read with one
 * atomic load, without locks, from a possibly read-only mapping. */
typedef struct shm_group_stats {
    char name[SHM_NAME_MAX + 1];
    uint64_t next_seq;    /* next sequence the group hands out */
    uint64_t tail_seq;    /* every sequence below is acknowledged */
    uint64_t lag;         /* head - tail_seq */
    double utilization;   /* lag / slot_count, 0..1 */
    uint64_t consumed, lost, redelivered, batches, invalid, lost_events, padded;
    uint32_t members;     /* members whose process is alive */
    uint32_t orphans;     /* batches waiting for re-delivery */
} shm_group_stats;

typedef struct shm_member_stats {
    uint32_t index;
    uint32_t state; /* enum shm_member_state */
    uint32_t role;  /* enum shm_role */
    int32_t pid;
    uint64_t start_time;
    char name[SHM_NAME_MAX + 1];
    char group[SHM_NAME_MAX + 1]; /* "" for producers */
    int64_t joined_ns, heartbeat_ns;
    uint64_t records, batches, bytes;
    uint32_t batches_held;
    int alive; /* shm_process_alive() at the time of the snapshot */
} shm_member_stats;

typedef struct shm_ring_stats {
    uint64_t head_seq;           /* next sequence a producer will claim */
    uint64_t records_put;
    uint64_t claims_lapped;      /* producer slots overwritten before commit */
    uint64_t full_rejections;    /* claims refused under backpressure */
    uint64_t overflow_events;    /* lap events (drop-oldest) + refusals (backpressure) */
    uint64_t slots_reclaimed;    /* slots of dead producers padded */
    uint64_t members_reclaimed;
    uint64_t util_warnings;      /* crossings of the utilization threshold */
    uint32_t util_high_water_permille;
    uint32_t paused;
    uint32_t pressure_level;
    uint32_t groups;
    double utilization;          /* worst group */
} shm_ring_stats;

SHM_API int shm_ring_stats_get(const shm_segment *seg, shm_ring_stats *out);
/* Fills up to max entries; returns how many groups exist. */
SHM_API int shm_group_stats_get(const shm_segment *seg, shm_group_stats *out, int max);
/* Fills up to max entries of non-free members; returns how many there are. */
SHM_API int shm_member_stats_get(const shm_segment *seg, shm_member_stats *out, int max);

/* Peeks at the newest committed records without joining a group (read-only
 * safe): copies up to max records, oldest first, into out (each slot_payload
 * bytes apart in buf); returns how many. For shmstat --tail. */
SHM_API int shm_ring_peek(const shm_segment *seg, uint32_t max, shm_record *out, void *buf,
                          size_t buf_len);

/* ---------------------------------------------------------- steering */

/* Segment-wide flags the controller sets and producers obey. */
SHM_API int shm_set_paused(shm_segment *seg, int paused);
SHM_API int shm_set_pressure_level(shm_segment *seg, uint32_t level);

/* ============================================================ records */
/*
 * The FlatBuffers codec for schemas/shmbus.fbs (see schemas/README.md).
 * Encoders write a complete FlatBuffers buffer (root offset, file identifier,
 * vtable, table) into caller memory, typically a claimed slot: zero copy.
 * Decoders verify every offset, vtable and length against the buffer's
 * bounds before reading any field and never allocate.
 */

enum shm_quality {
    SHM_Q_GOOD = 0,
    SHM_Q_BAD = 1,
    SHM_Q_STALE = 2,
    SHM_Q_COMM_FAIL = 3,
    SHM_Q_CONFIG_ERROR = 4,
    SHM_Q_DEVICE_EXCEPTION = 5,
    SHM_Q_DECODE_ERROR = 6,
};

enum shm_data_type {
    SHM_DT_BOOL = 0,
    SHM_DT_BIT = 1,
    SHM_DT_INT16 = 2,
    SHM_DT_UINT16 = 3,
    SHM_DT_INT32 = 4,
    SHM_DT_UINT32 = 5,
    SHM_DT_INT64 = 6,
    SHM_DT_UINT64 = 7,
    SHM_DT_FLOAT32 = 8,
    SHM_DT_FLOAT64 = 9,
    SHM_DT_STRING = 10,
};

typedef struct shm_tag_value {
    uint64_t sequence;
    int64_t timestamp_ns; /* since the epoch */
    uint32_t device_id;
    uint32_t tag_id;
    double value;
    int64_t raw;
    uint8_t quality;        /* enum shm_quality */
    uint8_t exception_code; /* Modbus exception code, 0 if none */
    uint16_t flags;
} shm_tag_value;

typedef struct shm_tag_meta {
    uint32_t id;
    uint32_t device_id;
    const char *name;   /* NUL-terminated; on decode, points into the buffer */
    const char *device;
    const char *unit;
    uint8_t data_type;  /* enum shm_data_type */
    uint8_t priority;   /* 0 = highest */
    double scale;
    double offset;
} shm_tag_meta;

/* Encoded size of a TagValue; always <= SHM_TAG_VALUE_MAX. */
#define SHM_TAG_VALUE_MAX 112

/* Encode into buf; returns bytes written, or SHM_ETOOBIG when cap is short. */
SHM_API int shm_tag_value_encode(const shm_tag_value *v, void *buf, size_t cap);
/* Verify and read; returns 0 or SHM_EBADRECORD (shm_last_error() says why). */
SHM_API int shm_tag_value_decode(const void *buf, size_t len, shm_tag_value *out);
SHM_API int shm_tag_meta_encode(const shm_tag_meta *m, void *buf, size_t cap);
SHM_API int shm_tag_meta_decode(const void *buf, size_t len, shm_tag_meta *out);

SHM_API const char *shm_quality_name(int quality);
SHM_API const char *shm_data_type_name(int data_type);

#ifdef __cplusplus
}
#endif
#endif /* SHMBUS_SHM_H */

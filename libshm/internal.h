/*
 * internal.h — declarations shared by libshm's source files. Not installed.
 *
 * Naming: public functions are shm_*, internal ones shm__*. The process-local
 * handles (struct shm_segment, shm_producer, shm_consumer) live here; the
 * shared-memory structures they point into live in layout.h.
 */
#ifndef SHMBUS_INTERNAL_H
#define SHMBUS_INTERNAL_H

#include "atomics.h"
#include "layout.h"

#include <shmbus/shm.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct shm_segment {
    uint8_t *base;                 /* start of the mapping */
    size_t size;                   /* bytes mapped */
    int readonly;
    struct shm__header *hdr;
    struct shm__counters *ctr;
    struct shm__group *groups;     /* SHM_MAX_GROUPS */
    struct shm__member *members;   /* hdr->max_members */
    struct shm__named *named;      /* hdr->counter_capacity */
    struct shm__catalog_entry *catalog;
    uint8_t *ring;                 /* slot_count * slot_size */
    uint64_t mask;                 /* slot_count - 1 */
    uint32_t slot_size;
    uint32_t slot_count;
    uint32_t payload;              /* slot_size - SHM_SLOT_HEADER */
    uint32_t policy;
    char name[SHM_NAME_MAX + 1];
    shm_log_fn log_fn;
    void *log_ctx;
};

struct shm_producer {
    shm_segment *seg;
    struct shm__member *me;
    uint32_t index;      /* registry slot */
    uint64_t cached_tail; /* backpressure: last min tail seen */
    uint32_t commits;    /* for periodic utilization checks */
    uint32_t full_streak; /* consecutive refused claims */
    int64_t last_reclaim_ns;
    int64_t last_heartbeat_ns;
    uint8_t *scratch;    /* payload-sized sink for writes to lapped slots */
};

struct shm_consumer {
    shm_segment *seg;
    struct shm__member *me;
    struct shm__group *group;
    uint32_t index;      /* registry slot */
    uint32_t group_index;
    int64_t last_heartbeat_ns;
    uint8_t *copy;       /* drop-oldest: validated copy of the current record */
    /* Waiting is measured across shm_consume() calls, so that consumers
     * polling with short timeouts still resolve stuck slots and reclaim. */
    uint64_t stuck_seq;      /* the uncommitted sequence last waited on */
    int64_t stuck_since_ns;  /* since when (monotonic) */
    int64_t last_reclaim_ns; /* last periodic shm_reclaim() */
};

/* error.c */
int shm__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Slot of sequence number s. */
static inline struct shm__slot *shm__slot(const shm_segment *seg, uint64_t s)
{
    /* Slots are slot_size (a multiple of 64) apart from a page-aligned ring. */
    return (struct shm__slot *)(void *)(seg->ring + (size_t)(s & seg->mask) * seg->slot_size);
}
static inline uint8_t *shm__slot_payload(struct shm__slot *slot)
{
    return (uint8_t *)slot + SHM_SLOT_HEADER;
}

/* time.c-like helpers (process.c) */
int64_t shm__now_ns(void);      /* CLOCK_REALTIME, ns */
int64_t shm__mono_ns(void);     /* CLOCK_MONOTONIC, ns */
void shm__log(const shm_segment *seg, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True while pid exists and is not a zombie (no start-time check: for
 * short windows where only the pid is known). */
bool shm__pid_running(int32_t pid);

/* members.c */
int shm__member_join(shm_segment *seg, uint32_t role, uint32_t group, const char *name,
                     uint32_t *index_out);
void shm__member_leave(shm_segment *seg, uint32_t index);
bool shm__member_alive(const struct shm__member *m);
/* Decides whether sequence s, claimed (head > s) but not committed, belongs to
 * a live producer; pads it if not. Returns true when the slot was padded. */
bool shm__resolve_stuck(shm_segment *seg, uint64_t s);
/* Pads slot of sequence s if its stamp still shows `expected`; true if done. */
bool shm__pad_slot(shm_segment *seg, uint64_t s, uint64_t expected);

/* consumer.c */
uint64_t shm__group_compute_tail(const shm_segment *seg, const struct shm__group *g);
void shm__group_advance_tail(shm_segment *seg, struct shm__group *g);
/* Recomputes every active group's tail (CAS-max; safe from any member). */
void shm__refresh_tails(shm_segment *seg);
/* Smallest tail over active groups; head when there is no group. */
uint64_t shm__min_tail(shm_segment *seg);

/* wait.c: the consumers' event count */
void shm__wake_consumers(shm_segment *seg);
/* Sleeps until woken or timeout_ns passes, unless ready(arg) is already true
 * after announcing the sleep. */
void shm__sleep_until(shm_segment *seg, int64_t timeout_ns, bool (*ready)(void *), void *arg);

/* producer.c */
void shm__check_utilization(shm_segment *seg);

#endif /* SHMBUS_INTERNAL_H */

/*
 * layout.h — the layout of a shmbus shared-memory segment. NOT A PUBLIC API:
 * only libshm includes this; tools read a segment through include/shmbus/shm.h.
 *
 * A segment is one POSIX shm object, laid out as consecutive regions whose
 * offsets the header records (so an inspector finds them without knowing
 * this build's defaults):
 *
 *   header (4 KiB) | counters | groups[16] | members[max_members]
 *   | named counters[counter_capacity] | catalog[catalog_capacity] | ring
 *
 * Every struct here has a fixed size and fixed offsets, asserted below with
 * _Static_assert; SHM__LAYOUT_VERSION changes whenever any of them changes,
 * and an attach refuses a segment of another version. All fields that more
 * than one process writes, or that are written while others read, are
 * _Atomic and accessed through atomics.h; plain fields are written once,
 * before the segment is marked ready, or only by their owning member.
 *
 * Sequence numbers are 64-bit, free-running, and start at the creation time
 * in nanoseconds (CLOCK_REALTIME), so a segment created later (after a reboot
 * or an explicit reset) never hands out a sequence number an older one did —
 * stores that dedupe by sequence number stay correct across segments.
 *
 * Slot stamps encode the state of a slot for sequence s:
 *   BUSY(s) = s << 1        a producer owns the slot and is writing record s
 *   DONE(s) = (s << 1) | 1  record s is committed (or padded, see flags)
 *   0                       never written
 * The stamp is the only thing readers trust: data is read after an acquire
 * load of DONE(s), and (drop-oldest) re-validated after copying.
 */
#ifndef SHMBUS_LAYOUT_H
#define SHMBUS_LAYOUT_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <shmbus/shm.h>

#define SHM__MAGIC "SHMBUS\x00\x01"
#define SHM__LAYOUT_VERSION 1u
#define SHM__HEADER_SIZE 4096u
#define SHM__LINE 64u      /* cache line */
#define SHM__HOT_LINE 128u /* hot words are kept two lines apart (adjacent-line prefetch) */

#define SHM__STAMP_BUSY(s) ((uint64_t)(s) << 1)
#define SHM__STAMP_DONE(s) (((uint64_t)(s) << 1) | 1u)
#define SHM__STAMP_SEQ(st) ((uint64_t)(st) >> 1)
#define SHM__STAMP_IS_DONE(st) (((st)&1u) != 0)

/* ----------------------------------------------------------- the header */

struct shm__header {
    /* Written once at creation, before `ready` is set. */
    char magic[8];
    uint32_t layout_version;
    uint32_t header_size;
    uint64_t total_size;
    uint32_t slot_size;
    uint32_t slot_count;
    uint32_t max_groups;
    uint32_t max_members;
    uint32_t catalog_capacity;
    uint32_t catalog_entry_size;
    uint32_t counter_capacity;
    uint32_t counter_entry_size;
    uint64_t off_counters;
    uint64_t off_groups;
    uint64_t off_members;
    uint64_t off_named;
    uint64_t off_catalog;
    uint64_t off_ring;
    uint32_t policy;
    uint32_t util_warn_pct;
    int64_t created_ns;
    int32_t creator_pid;
    uint32_t mode;
    uint64_t creator_start_time;
    uint64_t initial_seq;
    char name[32];
    uint8_t reserved0[256 - 176];

    /* 1 once every region is initialised (release); attachers acquire it. */
    alignas(SHM__HOT_LINE) _Atomic uint32_t ready;
    /* Controller steering: producers read these on every claim. */
    _Atomic uint32_t paused;
    _Atomic uint32_t pressure_level;
    _Atomic uint32_t util_warn_state; /* 1 while above the threshold (hysteresis) */

    /* Next sequence number a producer will claim. Written only by
     * fetch_add / compare-exchange (RMWs), so every claim's release is part
     * of one release sequence that readers of head acquire. */
    alignas(SHM__HOT_LINE) _Atomic uint64_t head;

    /* Event count for sleeping consumers: sleepers counts those about to
     * sleep or asleep; producers bump wake_word and FUTEX_WAKE only when
     * sleepers > 0. */
    alignas(SHM__HOT_LINE) _Atomic uint32_t wake_word;
    _Atomic uint32_t sleepers;

    /* Highest member slot index ever used + 1: scans stop there. */
    alignas(SHM__HOT_LINE) _Atomic uint32_t members_used;
    _Atomic uint32_t groups_mask; /* bit g set when group g is active */
    /* Serialises group creation (rare): 0, or the pid of the holder; a lock
     * held by a dead pid is taken over. */
    _Atomic int32_t group_lock;

    uint8_t reserved1[SHM__HEADER_SIZE - 652];
};
_Static_assert(sizeof(struct shm__header) == SHM__HEADER_SIZE, "header is one 4 KiB page");
_Static_assert(offsetof(struct shm__header, layout_version) == 8, "layout_version at 8");
_Static_assert(offsetof(struct shm__header, name) == 144, "name at 144");
_Static_assert(offsetof(struct shm__header, ready) == 256, "ready at 256");
_Static_assert(offsetof(struct shm__header, head) == 384, "head at 384");
_Static_assert(offsetof(struct shm__header, wake_word) == 512, "wake_word at 512");
_Static_assert(offsetof(struct shm__header, members_used) == 640, "members_used at 640");

/* ---------------------------------------------------- global counters */

/* Each counter on its own line: producers bump records_put per commit. */
struct shm__counters {
    alignas(SHM__LINE) _Atomic uint64_t records_put;
    alignas(SHM__LINE) _Atomic uint64_t claims_lapped;
    alignas(SHM__LINE) _Atomic uint64_t full_rejections;
    alignas(SHM__LINE) _Atomic uint64_t overflow_events;
    alignas(SHM__LINE) _Atomic uint64_t slots_reclaimed;
    alignas(SHM__LINE) _Atomic uint64_t members_reclaimed;
    alignas(SHM__LINE) _Atomic uint64_t util_warnings;
    alignas(SHM__LINE) _Atomic uint32_t util_high_water_permille;
    alignas(SHM__LINE) uint8_t reserved[SHM__LINE * 8];
};
_Static_assert(sizeof(struct shm__counters) == 16 * SHM__LINE, "counters: 16 lines");
_Static_assert(offsetof(struct shm__counters, slots_reclaimed) == 4 * SHM__LINE, "slots_reclaimed");

/* ------------------------------------------------------ consumer groups */

enum shm__group_state { SHM__GROUP_FREE = 0, SHM__GROUP_CREATING = 1, SHM__GROUP_ACTIVE = 2 };

struct shm__group {
    _Atomic uint32_t state;
    uint32_t index;
    char name[32];
    uint64_t start_seq; /* head when the group was created */
    /* Members of this group, one bit per registry slot (max 256). */
    _Atomic uint64_t member_bits[4];
    uint8_t reserved0[SHM__HOT_LINE - 80];

    /* Next sequence number the group hands out; moved by CAS only. */
    alignas(SHM__HOT_LINE) _Atomic uint64_t next;
    /* Every sequence below tail is acknowledged; moved forward by CAS-max. */
    alignas(SHM__HOT_LINE) _Atomic uint64_t tail;
    /* Batches waiting for re-delivery (dead members' batches). */
    alignas(SHM__HOT_LINE) _Atomic uint32_t orphans;
    alignas(SHM__LINE) _Atomic uint64_t consumed;
    alignas(SHM__LINE) _Atomic uint64_t lost;
    alignas(SHM__LINE) _Atomic uint64_t lost_events;
    alignas(SHM__LINE) _Atomic uint64_t redelivered;
    alignas(SHM__LINE) _Atomic uint64_t batches;
    alignas(SHM__LINE) _Atomic uint64_t invalid;
    alignas(SHM__LINE) _Atomic uint64_t padded; /* slots of dead producers skipped */
    alignas(SHM__LINE) uint8_t reserved1[SHM__LINE * 2];
};
_Static_assert(sizeof(struct shm__group) == 1024, "group: 1 KiB");
_Static_assert(offsetof(struct shm__group, next) == 128, "group.next at 128");
_Static_assert(offsetof(struct shm__group, tail) == 256, "group.tail at 256");

/* ------------------------------------------------------ member registry */

/* The claim word is (generation << 8) | state; the owner bumps the
 * generation on every claim so a reader can tell a consistent snapshot of
 * (state, claim_seq, claim_n) by reading the word before and after. */
enum shm__claim_state {
    SHM__CLAIM_IDLE = 0,
    SHM__CLAIM_CLAIMING = 1, /* about to take sequence numbers: range unknown yet */
    SHM__CLAIM_HOLDING = 2,  /* holds [claim_seq, claim_seq + claim_n) */
};
#define SHM__CLAIM_KIND(w) ((w)&0xffu)

/* Batch entry states. The low byte is the state; for TAKEN the upper bits
 * hold the registry index + 1 of the member that took the orphan over. */
enum shm__batch_state {
    SHM__BATCH_NONE = 0,
    SHM__BATCH_PENDING = 1,  /* about to CAS group.next; start/count valid */
    SHM__BATCH_HELD = 2,     /* claimed by this member */
    SHM__BATCH_ORPHANED = 3, /* owner died; waiting for another member */
    SHM__BATCH_TAKEN = 4,    /* being re-delivered by member (state >> 8) - 1 */
};
#define SHM__BATCH_KIND(st) ((st)&0xffu)
#define SHM__BATCH_TAKER(st) ((int32_t)((st) >> 8) - 1)
#define SHM__BATCH_TAKEN_BY(idx) (SHM__BATCH_TAKEN | (((uint32_t)(idx) + 1u) << 8))

struct shm__batch_entry {
    _Atomic uint32_t state;
    _Atomic uint32_t count;
    _Atomic uint64_t start;
    _Atomic uint32_t gen; /* bumped on every claim, so a stale handle is refused */
    uint32_t reserved[3];
};
_Static_assert(sizeof(struct shm__batch_entry) == 32, "batch entry: 32 bytes");

struct shm__member {
    /* Identity: written by the joining process between FREE->JOINING and
     * JOINING->ACTIVE (release), then read-only until the slot is freed. */
    _Atomic uint32_t state; /* kind (shm_member_state, or JOINING) | tag << 8 */
    uint32_t role;
    int32_t pid;
    uint32_t group; /* group index, or UINT32_MAX */
    uint64_t start_time;
    _Atomic uint32_t gen; /* bumped each time the slot is taken */
    uint32_t reserved0;
    char name[32];
    _Atomic int64_t joined_ns;
    _Atomic int64_t heartbeat_ns;
    uint8_t reserved1[SHM__LINE - 16];

    /* Producer claim announcement (see producer.c for the protocol). */
    alignas(SHM__LINE) _Atomic uint32_t claim_state;
    _Atomic uint32_t claim_n;
    _Atomic uint64_t claim_seq;

    /* Per-member counters, written only by the member itself. */
    alignas(SHM__LINE) _Atomic uint64_t records;
    _Atomic uint64_t batches;
    _Atomic uint64_t bytes;

    /* Consumer batches held. */
    alignas(SHM__LINE) struct shm__batch_entry batch[SHM_MEMBER_BATCHES];
};
/* The state word is kind | (tag << 8); the tag (24 bits) says which
 * incarnation or which process:
 *   FREE     tag 0
 *   JOINING  the joiner's pid, so a reclaimer can tell whether the joiner
 *            still lives before the pid field is written
 *   ACTIVE   the slot's generation (gen, low 24 bits), so a CAS that found a
 *            member dead cannot hit a newer member that took the slot since
 *   DEAD     the thread id of the reclaimer cleaning up after it, 0 while
 *            nobody is: only that reclaimer acts on the slot and frees it,
 *            so a preempted reclaimer never resumes on a newer member; a
 *            reclaimer that died is taken over.
 * Always compare SHM__MEMBER_KIND(state) with the kinds. */
#define SHM__MEMBER_JOINING 3u
#define SHM__MEMBER_KIND(st) ((st)&0xffu)
#define SHM__MEMBER_TAG(st) ((uint32_t)(st) >> 8)
#define SHM__MEMBER_STATE(kind, tag) ((uint32_t)(kind) | (((uint32_t)(tag)&0xffffffu) << 8))
#define SHM__MEMBER_JOINER(st) ((int32_t)SHM__MEMBER_TAG(st))
_Static_assert(sizeof(struct shm__member) == 768, "member: 768 bytes");
_Static_assert(offsetof(struct shm__member, claim_state) == 128, "member.claim_state at 128");
_Static_assert(offsetof(struct shm__member, batch) == 256, "member.batch at 256");

/* ------------------------------------------------------- named counters */

/* While a slot is being named, its state is WRITING | (pid << 8), so that a
 * process killed half-way is noticed and the slot taken over. */
enum shm__named_state { SHM__NAMED_FREE = 0, SHM__NAMED_WRITING = 1, SHM__NAMED_READY = 2 };
#define SHM__NAMED_KIND(st) ((st)&0xffu)
#define SHM__NAMED_WRITER(st) ((int32_t)((st) >> 8))

struct shm__named {
    _Atomic uint32_t state;
    uint32_t kind;
    char name[SHM_COUNTER_NAME_MAX + 1];
    _Atomic uint64_t value;
};
_Static_assert(sizeof(struct shm__named) == 128, "named counter: 128 bytes");

/* -------------------------------------------------------------- catalog */

/* One encoded TagMeta per tag id, guarded by a seqlock (odd while written).
 * Writers of one entry take `writer` (their pid) first; a lock held by a dead
 * pid is taken over, so a writer killed mid-write wedges nobody. */
struct shm__catalog_entry {
    _Atomic uint32_t seq;
    _Atomic uint32_t len;
    _Atomic int32_t writer;
    uint32_t reserved;
    uint8_t data[SHM_CATALOG_ENTRY_MAX];
};
_Static_assert(sizeof(struct shm__catalog_entry) == 1024, "catalog entry: 1 KiB");

/* ------------------------------------------------------------ ring slot */

enum shm__slot_flags { SHM__SLOT_PAD = 1u };
/* slot.owner while a reclaimer pads the slot (and after, until reused). */
#define SHM__SLOT_PADDER ((uint16_t)0xffff)

struct shm__slot {
    _Atomic uint64_t stamp;
    _Atomic uint32_t len;
    _Atomic uint16_t flags;
    _Atomic uint16_t owner; /* registry index of the producer while BUSY */
    /* payload follows: slot_size - SHM_SLOT_HEADER bytes */
};
_Static_assert(sizeof(struct shm__slot) == SHM_SLOT_HEADER, "slot header size");

#endif /* SHMBUS_LAYOUT_H */

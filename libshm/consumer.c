/*
 * consumer.c — consumer groups: claiming batches, reading them, acknowledging.
 *
 * Each group has a cursor `next` (the next sequence it hands out) and a
 * `tail` (every sequence below is acknowledged). Members of a group compete
 * for batches:
 *
 *   n0 = next; count k committed records from n0 (stamps DONE)
 *   entry = {start n0, count k}; entry.state = PENDING   (release)
 *   CAS(next, n0, n0 + k)                                 (acq_rel)
 *   on success entry.state = HELD, else NONE and retry
 *
 * The entry is announced before the CAS so that a member that dies between
 * the two leaves a trace: the reclaimer re-delivers it (at-least-once).
 * Acknowledging sets the entry to NONE and recomputes the tail as the
 * minimum of `next` and the start of every entry still held by a member of
 * the group; the tail only moves forward (CAS-max). Under backpressure the
 * producers never pass the slowest group's tail, so a held record cannot be
 * overwritten and readers get a pointer into the slot (zero copy). Under
 * drop-oldest a lapped group jumps ahead and counts what it skipped, and
 * readers copy the record and re-check its stamp (seqlock validation).
 */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A consumer that finds nothing spins this long before it sleeps: waking a
 * sleeper costs the producer a system call and the consumer about 10 us
 * (50 us p99) here, while records often arrive microseconds apart. */
#define SPIN_BEFORE_SLEEP_NS 50000LL
#define SPIN_BACKOFF_MAX 16 /* pauses between two polls of the slot */
#define SLEEP_SLICE_NS 10000000LL   /* re-check a claimed, uncommitted slot this often */
#define STUCK_AFTER_NS 10000000LL   /* a claimed slot uncommitted this long is checked */
#define RECLAIM_EVERY_NS 100000000LL
#define HEARTBEAT_EVERY_NS 100000000LL

static struct shm__group *find_group(shm_segment *seg, const char *name)
{
    for (uint32_t i = 0; i < SHM_MAX_GROUPS; i++) {
        struct shm__group *g = &seg->groups[i];
        if (shm__load_acquire(&g->state) == SHM__GROUP_ACTIVE &&
            strncmp(g->name, name, sizeof g->name) == 0)
            return g;
    }
    return NULL;
}

static void group_lock(shm_segment *seg)
{
    int32_t me = (int32_t)getpid();
    for (;;) {
        int32_t holder = 0;
        if (shm__cas(&seg->hdr->group_lock, &holder, me))
            return;
        if (holder != me && !shm__pid_running(holder) &&
            shm__cas(&seg->hdr->group_lock, &holder, me))
            return; /* its holder died */
        sched_yield();
    }
}

static void group_unlock(shm_segment *seg)
{
    shm__store_release(&seg->hdr->group_lock, 0);
}

/* Finds group `name`, creating it (starting at the newest record) if needed. */
static int open_group(shm_segment *seg, const char *name, struct shm__group **out)
{
    if (!name || !*name || strlen(name) > SHM_NAME_MAX)
        return shm__fail(SHM_ETAKEN, "group name '%s': 1..%d characters", name ? name : "",
                         SHM_NAME_MAX);
    if ((*out = find_group(seg, name)) != NULL)
        return 0;
    group_lock(seg);
    int rc = 0;
    if ((*out = find_group(seg, name)) != NULL)
        goto done;
    for (uint32_t i = 0; i < SHM_MAX_GROUPS; i++) {
        struct shm__group *g = &seg->groups[i];
        if (shm__load_acquire(&g->state) != SHM__GROUP_FREE)
            continue;
        memset(g->name, 0, sizeof g->name);
        strncpy(g->name, name, sizeof g->name - 1);
        uint64_t head = shm__load_acquire(&seg->hdr->head);
        g->start_seq = head;
        shm__store_relaxed(&g->next, head);
        shm__store_relaxed(&g->tail, head);
        shm__store_relaxed(&g->orphans, 0);
        /* Release: name and cursors are visible to whoever sees ACTIVE. */
        shm__store_release(&g->state, SHM__GROUP_ACTIVE);
        shm__fetch_or_relaxed(&seg->hdr->groups_mask, 1u << i);
        *out = g;
        goto done;
    }
    rc = shm__fail(SHM_EGROUPS, "segment %s: all %d consumer groups are in use", seg->name,
                   SHM_MAX_GROUPS);
done:
    group_unlock(seg);
    return rc;
}

int shm_consumer_open(shm_segment *seg, const char *group, const char *name, shm_consumer **out)
{
    if (!seg || !out)
        return shm__fail(SHM_EINVAL, "shm_consumer_open: NULL argument");
    *out = NULL;
    if (seg->readonly)
        return shm__fail(SHM_EREADONLY, "segment %s is attached read-only", seg->name);
    struct shm__group *g;
    int rc = open_group(seg, group, &g);
    if (rc)
        return rc;
    shm_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return shm__fail(SHM_ENOMEM, "out of memory");
    c->copy = malloc(seg->payload);
    if (!c->copy) {
        free(c);
        return shm__fail(SHM_ENOMEM, "out of memory");
    }
    rc = shm__member_join(seg, SHM_ROLE_CONSUMER, g->index, name, &c->index);
    if (rc) {
        free(c->copy);
        free(c);
        return rc;
    }
    c->seg = seg;
    c->group = g;
    c->group_index = g->index;
    c->me = &seg->members[c->index];
    c->stuck_seq = UINT64_MAX;
    c->last_reclaim_ns = shm__mono_ns();
    *out = c;
    return 0;
}

void shm_consumer_close(shm_consumer **cp)
{
    if (!cp || !*cp)
        return;
    shm_consumer *c = *cp;
    shm__member_leave(c->seg, c->index);
    shm__group_advance_tail(c->seg, c->group);
    free(c->copy);
    free(c);
    *cp = NULL;
}

void shm_consumer_heartbeat(shm_consumer *c)
{
    if (!c)
        return;
    c->last_heartbeat_ns = shm__mono_ns();
    shm__store_relaxed(&c->me->heartbeat_ns, shm__now_ns());
}

uint64_t shm__group_compute_tail(const shm_segment *seg, const struct shm__group *g)
{
    /* seq_cst fence: callers have just released a batch entry (ack: CAS to
     * NONE; a withdrawn PENDING: store of NONE) and now read the others'.
     * Two such callers must not both miss each other's release (store
     * buffering), or both compute a tail held back by the other's entry. */
    shm__fence_seq_cst();
    /* Acquire pairs with members' CAS on next: an entry announced before a
     * CAS whose result we read is visible in the scan below. */
    uint64_t t = shm__load_acquire(&g->next);
    for (int w = 0; w < 4; w++) {
        uint64_t bits = shm__load_acquire(&g->member_bits[w]);
        while (bits) {
            uint32_t i = (uint32_t)w * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            const struct shm__member *m = &seg->members[i];
            for (int b = 0; b < SHM_MEMBER_BATCHES; b++) {
                uint32_t st = shm__load_acquire(&m->batch[b].state);
                if (st == SHM__BATCH_NONE)
                    continue;
                uint64_t start = shm__load_relaxed(&m->batch[b].start);
                if (start < t)
                    t = start;
            }
        }
    }
    return t;
}

void shm__group_advance_tail(shm_segment *seg, struct shm__group *g)
{
    if (seg->readonly)
        return;
    /* CAS-max (acq_rel): a producer that acquires the new tail sees every
     * acknowledgement (entry -> NONE, release) that allowed it. */
    shm__max_u64(&g->tail, shm__group_compute_tail(seg, g));
}

void shm__refresh_tails(shm_segment *seg)
{
    uint32_t mask = shm__load_acquire(&seg->hdr->groups_mask);
    while (mask) {
        uint32_t i = (uint32_t)__builtin_ctz(mask);
        mask &= mask - 1;
        shm__group_advance_tail(seg, &seg->groups[i]);
    }
}

uint64_t shm__min_tail(shm_segment *seg)
{
    uint64_t head = shm__load_acquire(&seg->hdr->head);
    uint64_t t = head;
    uint32_t mask = shm__load_acquire(&seg->hdr->groups_mask);
    while (mask) {
        uint32_t i = (uint32_t)__builtin_ctz(mask);
        mask &= mask - 1;
        uint64_t gt = shm__load_acquire(&seg->groups[i].tail);
        if (gt < t)
            t = gt;
    }
    return t;
}

static void maybe_heartbeat(shm_consumer *c, int64_t now_mono)
{
    if (now_mono - c->last_heartbeat_ns >= HEARTBEAT_EVERY_NS) {
        c->last_heartbeat_ns = now_mono;
        shm__store_relaxed(&c->me->heartbeat_ns, shm__now_ns());
    }
}

/* Takes over one orphaned batch of the group, if there is one. */
static bool take_orphan(shm_consumer *c, shm_batch *b)
{
    shm_segment *seg = c->seg;
    struct shm__group *g = c->group;
    for (int w = 0; w < 4; w++) {
        uint64_t bits = shm__load_acquire(&g->member_bits[w]);
        while (bits) {
            uint32_t i = (uint32_t)w * 64 + (uint32_t)__builtin_ctzll(bits);
            bits &= bits - 1;
            struct shm__member *m = &seg->members[i];
            for (uint32_t e = 0; e < SHM_MEMBER_BATCHES; e++) {
                struct shm__batch_entry *be = &m->batch[e];
                uint32_t st = shm__load_acquire(&be->state);
                if (SHM__BATCH_KIND(st) != SHM__BATCH_ORPHANED)
                    continue;
                if (!shm__cas(&be->state, &st, SHM__BATCH_TAKEN_BY(c->index)))
                    continue;
                /* Saturating: an orphan whose reclaimer was killed before
                 * counting it is found by the periodic scan, uncounted. */
                uint32_t n = shm__load_relaxed(&g->orphans);
                while (n > 0 && !shm__cas(&g->orphans, &n, n - 1)) {
                }
                memset(b, 0, sizeof *b);
                b->first_seq = shm__load_relaxed(&be->start);
                b->count = shm__load_relaxed(&be->count);
                b->redelivered = 1;
                b->holder_member = (int32_t)i;
                b->entry = e;
                b->gen = shm__load_relaxed(&be->gen);
                shm__fetch_add_relaxed(&g->redelivered, b->count);
                return true;
            }
        }
    }
    /* None found: if the count says otherwise, a taker was killed between
     * its CAS to TAKEN and its decrement. Left above zero, the count keeps
     * every idle consumer of the group from sleeping (something_ready), so
     * reset it. An orphan marked meanwhile whose increment this reset
     * swallows is found by the periodic scan in shm_consume(). */
    uint32_t n = shm__load_relaxed(&g->orphans);
    if (n > 0)
        shm__cas(&g->orphans, &n, 0u);
    return false;
}

struct wait_arg {
    shm_consumer *c;
};

static bool something_ready(void *arg)
{
    shm_consumer *c = ((struct wait_arg *)arg)->c;
    if (shm__load_relaxed(&c->group->orphans) > 0)
        return true;
    uint64_t n = shm__load_acquire(&c->group->next);
    uint64_t st = shm__load_acquire(&shm__slot(c->seg, n)->stamp);
    return st == SHM__STAMP_DONE(n) || SHM__STAMP_SEQ(st) > n;
}

static int free_entry(const struct shm__member *me)
{
    for (int e = 0; e < SHM_MEMBER_BATCHES; e++)
        if (shm__load_relaxed(&me->batch[e].state) == SHM__BATCH_NONE)
            return e;
    return -1;
}

/* The slot at n0 holds a newer lap: skip what was overwritten, counting it. */
static void skip_lapped(shm_consumer *c, uint64_t n0)
{
    shm_segment *seg = c->seg;
    struct shm__group *g = c->group;
    uint64_t head = shm__load_acquire(&seg->hdr->head);
    uint64_t oldest = head > seg->slot_count ? head - seg->slot_count : 0;
    uint64_t to = oldest > n0 + 1 ? oldest : n0 + 1;
    uint64_t expect = n0;
    /* Only the member whose CAS wins counts the loss: counted exactly once. */
    if (shm__cas(&g->next, &expect, to)) {
        shm__fetch_add_relaxed(&g->lost, to - n0);
        shm__fetch_add_relaxed(&g->lost_events, 1);
        shm__fetch_add_relaxed(&seg->ctr->overflow_events, 1);
        shm__group_advance_tail(seg, g);
    }
}

int shm_consume(shm_consumer *c, uint32_t max, int timeout_ms, shm_batch *b)
{
    if (!c || !b || max == 0)
        return shm__fail(SHM_EINVAL, "shm_consume: NULL argument or max 0");
    shm_segment *seg = c->seg;
    struct shm__group *g = c->group;
    struct shm__member *me = c->me;
    if (max > seg->slot_count / 2)
        max = seg->slot_count / 2;
    int e = free_entry(me);
    if (e < 0)
        return shm__fail(SHM_EMEMBERS, "consumer already holds %d unacknowledged batches",
                         SHM_MEMBER_BATCHES);
    struct shm__batch_entry *be = &me->batch[e];
    int64_t start_ns = shm__mono_ns();
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : start_ns + (int64_t)timeout_ms * 1000000;
    unsigned backoff = 1;
    maybe_heartbeat(c, start_ns);
    for (;;) {
        if (shm__load_relaxed(&g->orphans) > 0 && take_orphan(c, b))
            return (int)b->count;
        uint64_t n0 = shm__load_acquire(&g->next);
        uint32_t k = 0;
        uint64_t st = 0;
        while (k < max) {
            /* Acquire pairs with the producer's release of DONE(s): the
             * record's bytes, len and flags are visible. */
            st = shm__load_acquire(&shm__slot(seg, n0 + k)->stamp);
            if (st != SHM__STAMP_DONE(n0 + k))
                break;
            k++;
        }
        if (k > 0) {
            shm__store_relaxed(&be->start, n0);
            shm__store_relaxed(&be->count, k);
            uint32_t gen = shm__load_relaxed(&be->gen) + 1;
            shm__store_relaxed(&be->gen, gen);
            /* Release via the CAS below: a tail computer that reads our new
             * `next` sees this entry. */
            shm__store_relaxed(&be->state, SHM__BATCH_PENDING);
            uint64_t expect = n0;
            if (shm__cas(&g->next, &expect, n0 + k)) {
                shm__store_relaxed(&be->state, SHM__BATCH_HELD);
                memset(b, 0, sizeof *b);
                b->first_seq = n0;
                b->count = k;
                b->holder_member = (int32_t)c->index;
                b->entry = (uint32_t)e;
                b->gen = gen;
                return (int)k;
            }
            shm__store_release(&be->state, SHM__BATCH_NONE);
            continue; /* another member took it: try the next range */
        }
        if (SHM__STAMP_SEQ(st) > n0) {
            skip_lapped(c, n0);
            continue;
        }
        /* Nothing committed at n0. The bookkeeping below comes before the
         * deadline check and its clocks run across calls (they live in the
         * handle): a caller polling with short timeouts, or none, must
         * still get there, or a slot claimed by a producer that died before
         * announcing its range is never padded and the ring stays wedged. */
        int64_t now = shm__mono_ns();
        maybe_heartbeat(c, now);
        if (c->stuck_seq != n0) {
            c->stuck_seq = n0;
            c->stuck_since_ns = now;
            /* Once per new n0: the group's tail is a cache that a
             * computation racing with a withdrawn batch entry (a member's
             * failed CAS of next) can leave too low, and in a quiescent
             * ring no acknowledgement would fix it. Recompute it. */
            if (shm__load_acquire(&g->tail) < n0)
                shm__group_advance_tail(seg, g);
        } else if (now - c->stuck_since_ns >= STUCK_AFTER_NS) {
            /* Claimed but not committed for a while: a dead producer? */
            shm__resolve_stuck(seg, n0);
            c->stuck_since_ns = now;
        }
        if (now - c->last_reclaim_ns >= RECLAIM_EVERY_NS) {
            c->last_reclaim_ns = now;
            shm_reclaim(seg, NULL);
            /* The orphan count is a hint: a reclaimer killed between
             * marking a batch ORPHANED and counting it leaves an orphan
             * that the fast path above never looks for. Look anyway. */
            if (take_orphan(c, b))
                return (int)b->count;
        }
        if (now >= deadline)
            return 0;
        /* Spin briefly once per wait (a record is often microseconds
         * away), then sleep. The polls back off: each one pulls the slot's
         * line to this core, and the producer writing that slot has to take
         * it back. Sleep in short slices only while a claimed slot is
         * uncommitted (to notice a dead producer); an empty ring sleeps
         * until woken, waking every 100 ms for liveness work. */
        if (now - start_ns < SPIN_BEFORE_SLEEP_NS) {
            for (unsigned i = 0; i < backoff; i++)
                shm__cpu_relax();
            if (backoff < SPIN_BACKOFF_MAX)
                backoff <<= 1;
            continue;
        }
        bool claimed = n0 < shm__load_acquire(&seg->hdr->head);
        int64_t slice = deadline - now;
        int64_t cap = claimed ? SLEEP_SLICE_NS : RECLAIM_EVERY_NS;
        if (slice > cap)
            slice = cap;
        struct wait_arg arg = {c};
        shm__sleep_until(seg, slice, something_ready, &arg);
    }
}

/* Copies a slot's payload for validation (drop-oldest). A lapping producer
 * may write the slot concurrently; the caller discards the copy unless the
 * stamp is unchanged afterwards (seqlock), so the race is benign.
 *
 * ThreadSanitizer must not record these reads: no happens-before edge runs
 * from a drop-oldest consumer to the producers, so TSan reports the race
 * when a producer next overwrites the slot, often long after the read, when
 * it can no longer restore the reader's stack — a suppression naming this
 * function then does not match. In TSan builds the copy is an uninstrumented
 * byte loop (volatile: not turned back into an intercepted memcpy). */
#if defined(__SANITIZE_THREAD__)
#define SHM__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SHM__TSAN 1
#endif
#endif
#if defined(SHM__TSAN)
__attribute__((noinline, no_sanitize_thread)) static void shm__slot_copy(void *dst,
                                                                          const void *src,
                                                                          uint32_t len)
{
    const volatile uint8_t *from = src;
    uint8_t *to = dst;
    for (uint32_t i = 0; i < len; i++)
        to[i] = from[i];
}
#else
__attribute__((noinline)) static void shm__slot_copy(void *dst, const void *src, uint32_t len)
{
    memcpy(dst, src, len);
}
#endif

int shm_batch_next(shm_consumer *c, shm_batch *b, shm_record *r)
{
    if (!c || !b || !r)
        return shm__fail(SHM_EINVAL, "shm_batch_next: NULL argument");
    shm_segment *seg = c->seg;
    while (b->pos < b->count) {
        uint64_t s = b->first_seq + b->pos++;
        struct shm__slot *slot = shm__slot(seg, s);
        uint64_t st = shm__load_acquire(&slot->stamp);
        if (st != SHM__STAMP_DONE(s)) {
            b->lost++; /* overwritten by a newer lap */
            continue;
        }
        uint16_t flags = shm__load_relaxed(&slot->flags);
        uint32_t len = shm__load_relaxed(&slot->len);
        if ((flags & SHM__SLOT_PAD) || len == 0 || len > seg->payload) {
            /* Under drop-oldest a lapping producer may have taken the slot
             * since our stamp load: flags and len may then be its (len 0
             * while it writes, PAD if it abandons the slot), and record s
             * was lost, not padded or invalid. Acquire fence: if either load
             * read a value the new producer stored after its release fence,
             * its BUSY stamp (stored before that fence) is seen below. */
            if (seg->policy != SHM_POLICY_BACKPRESSURE) {
                shm__fence_acquire();
                if (shm__load_relaxed(&slot->stamp) != st) {
                    b->lost++;
                    continue;
                }
            }
            if (flags & SHM__SLOT_PAD)
                b->pads++;
            else
                b->invalid++; /* a slot header no producer of ours writes */
            continue;
        }
        if (seg->policy == SHM_POLICY_BACKPRESSURE) {
            r->data = shm__slot_payload(slot);
        } else {
            shm__slot_copy(c->copy, shm__slot_payload(slot), len);
            /* Acquire fence: the copy's loads complete before the stamp is
             * re-read; if a producer wrote the slot meanwhile, its BUSY
             * stamp (fenced before its payload stores) is seen here. */
            shm__fence_acquire();
            if (shm__load_relaxed(&slot->stamp) != st) {
                b->lost++;
                continue;
            }
            r->data = c->copy;
        }
        r->seq = s;
        r->len = len;
        b->delivered++;
        return 1;
    }
    return 0;
}

void shm_batch_mark_invalid(shm_batch *b)
{
    if (!b || b->delivered == 0)
        return;
    b->delivered--;
    b->invalid++;
}

int shm_ack(shm_consumer *c, shm_batch *b)
{
    if (!c || !b || b->holder_member < 0 || b->entry >= SHM_MEMBER_BATCHES)
        return shm__fail(SHM_EINVAL, "shm_ack: not a batch");
    shm_segment *seg = c->seg;
    struct shm__group *g = c->group;
    if ((uint32_t)b->holder_member >= seg->hdr->max_members)
        return shm__fail(SHM_EINVAL, "shm_ack: not a batch");
    struct shm__batch_entry *be = &seg->members[b->holder_member].batch[b->entry];
    uint32_t want = b->redelivered ? SHM__BATCH_TAKEN_BY(c->index) : SHM__BATCH_HELD;
    uint32_t st = shm__load_acquire(&be->state);
    if (st != want || shm__load_relaxed(&be->gen) != b->gen ||
        shm__load_relaxed(&be->start) != b->first_seq)
        return shm__fail(SHM_EINVAL, "shm_ack: batch %llu+%u is not held by this consumer",
                         (unsigned long long)b->first_seq, b->count);
    /* Account first, then release the entry: a kill in between re-delivers
     * the batch (counted in `redelivered`) rather than losing the count. */
    if (b->delivered)
        shm__fetch_add_relaxed(&g->consumed, b->delivered);
    if (b->lost) {
        shm__fetch_add_relaxed(&g->lost, b->lost);
        shm__fetch_add_relaxed(&g->lost_events, 1);
    }
    if (b->pads)
        shm__fetch_add_relaxed(&g->padded, b->pads);
    if (b->invalid)
        shm__fetch_add_relaxed(&g->invalid, b->invalid);
    shm__fetch_add_relaxed(&g->batches, 1);
    struct shm__member *me = c->me;
    shm__store_relaxed(&me->records, shm__load_relaxed(&me->records) + b->delivered);
    shm__store_relaxed(&me->batches, shm__load_relaxed(&me->batches) + 1);
    /* Release: our reads of the records happen-before a producer reuses
     * the slots (it acquires the tail this enables). */
    if (!shm__cas(&be->state, &st, SHM__BATCH_NONE))
        return shm__fail(SHM_EINVAL, "shm_ack: batch taken away (member reclaimed?)");
    b->holder_member = -1;
    shm__group_advance_tail(seg, g);
    return 0;
}

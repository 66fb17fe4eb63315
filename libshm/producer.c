/*
 * producer.c — claiming, writing and committing records.
 *
 * A claim takes n consecutive sequence numbers with ONE atomic read-modify-
 * write on header.head (fetch_add under drop-oldest; a compare-exchange under
 * backpressure, which must refuse rather than overshoot). Around it the
 * producer announces what it holds in its registry slot, so that anyone can
 * clean up if it dies:
 *
 *   claim_state = CLAIMING            (relaxed; ordered by the RMW's release)
 *   first = RMW(head, n)              (acq_rel)
 *   claim_seq/claim_n = first/n; claim_state = HOLDING   (release)
 *   per slot: take it (stamp BUSY(s)), write payload, stamp DONE(s) (release)
 *   claim_state = IDLE                (release)
 *
 * A reader of head (acquire) that sees head > s therefore sees the taker's
 * CLAIMING or a later state: shm__resolve_stuck() relies on this to tell a
 * slow producer from a dead one without timeouts deciding correctness.
 *
 * Under backpressure a slot is free once every group's tail has passed its
 * previous sequence: the producer writes it without a BUSY stamp. Under drop-oldest a
 * previous-lap producer may still be writing the slot (it was preempted for a
 * whole lap), so the slot is taken with a compare-exchange, waiting briefly
 * for a live writer; a slot already taken by a newer lap is lost (counted).
 */
#include "internal.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define UTIL_CHECK_EVERY 64u
#define HEARTBEAT_EVERY_NS 100000000LL /* 100 ms */
#define FULL_RECLAIM_EVERY_NS 50000000LL

int shm_producer_open(shm_segment *seg, const char *name, shm_producer **out)
{
    if (!seg || !out)
        return shm__fail(SHM_EINVAL, "shm_producer_open: NULL argument");
    *out = NULL;
    shm_producer *p = calloc(1, sizeof *p);
    if (!p)
        return shm__fail(SHM_ENOMEM, "out of memory");
    p->scratch = calloc(1, seg->payload);
    if (!p->scratch) {
        free(p);
        return shm__fail(SHM_ENOMEM, "out of memory");
    }
    int rc = shm__member_join(seg, SHM_ROLE_PRODUCER, UINT32_MAX, name, &p->index);
    if (rc) {
        free(p->scratch);
        free(p);
        return rc;
    }
    p->seg = seg;
    p->me = &seg->members[p->index];
    p->cached_tail = 0;
    *out = p;
    return 0;
}

void shm_producer_close(shm_producer **pp)
{
    if (!pp || !*pp)
        return;
    shm_producer *p = *pp;
    shm__member_leave(p->seg, p->index);
    free(p->scratch);
    free(p);
    *pp = NULL;
}

void shm_producer_heartbeat(shm_producer *p)
{
    if (!p)
        return;
    p->last_heartbeat_ns = shm__mono_ns();
    shm__store_relaxed(&p->me->heartbeat_ns, shm__now_ns());
}

static void maybe_heartbeat(shm_producer *p)
{
    if ((p->commits & 255u) != 0)
        return;
    int64_t now = shm__mono_ns();
    if (now - p->last_heartbeat_ns >= HEARTBEAT_EVERY_NS) {
        p->last_heartbeat_ns = now;
        shm__store_relaxed(&p->me->heartbeat_ns, shm__now_ns());
    }
}

/* Takes the slot of s under drop-oldest. Returns false when a newer lap
 * already owns it (our record is lost). */
static bool take_slot_drop_oldest(shm_producer *p, uint64_t s)
{
    shm_segment *seg = p->seg;
    struct shm__slot *slot = shm__slot(seg, s);
    uint64_t st = shm__load_acquire(&slot->stamp);
    unsigned spins = 0;
    for (;;) {
        if (st >= SHM__STAMP_BUSY(s))
            return false;
        if (st != 0 && !SHM__STAMP_IS_DONE(st)) {
            /* A previous-lap producer is mid-write: wait, and pad over it if
             * it turns out to be dead. */
            if (++spins < 256) {
                shm__cpu_relax();
            } else {
                if ((spins & 255u) == 0)
                    shm__resolve_stuck(seg, SHM__STAMP_SEQ(st));
                sched_yield();
            }
            st = shm__load_acquire(&slot->stamp);
            continue;
        }
        shm__store_relaxed(&slot->owner, (uint16_t)p->index);
        /* acq_rel: on success we own the slot; the release fence below
         * keeps our payload stores after BUSY for consumers that validate
         * a copy by re-reading the stamp (seqlock pattern). */
        if (shm__cas(&slot->stamp, &st, SHM__STAMP_BUSY(s))) {
            shm__fence_release();
            shm__store_relaxed(&slot->len, 0);
            return true;
        }
    }
}

/* Claims under backpressure: never past the slowest group's tail. Returns
 * the number claimed and sets *first, or SHM_EFULL. */
static int claim_backpressure(shm_producer *p, uint32_t n, uint64_t *first)
{
    shm_segment *seg = p->seg;
    uint64_t cap = seg->slot_count;
    uint64_t h = shm__load_relaxed(&seg->hdr->head);
    for (;;) {
        uint64_t tail = p->cached_tail;
        if (h - tail + n > cap || tail > h) {
            /* Our view of the tails may be stale: refresh it. */
            tail = p->cached_tail = shm__min_tail(seg);
            if (tail > h)
                tail = h;
        }
        uint64_t used = h - tail;
        if (used >= cap)
            return SHM_EFULL;
        uint32_t take = used + n > cap ? (uint32_t)(cap - used) : n;
        /* acq_rel: release publishes our CLAIMING announcement to readers of
         * head; acquire on failure re-reads the current head. */
        if (shm__cas(&seg->hdr->head, &h, h + take)) {
            *first = h;
            return (int)take;
        }
    }
}

int shm_claim(shm_producer *p, uint32_t n, shm_slots *c)
{
    if (!p || !c || n == 0 || n > SHM_CLAIM_MAX)
        return shm__fail(SHM_EINVAL, "shm_claim: n must be 1..%d", SHM_CLAIM_MAX);
    shm_segment *seg = p->seg;
    if (n > seg->slot_count / 2)
        n = seg->slot_count / 2 ? seg->slot_count / 2 : 1;
    if (shm__load_relaxed(&seg->hdr->paused))
        return shm__fail(SHM_EPAUSED, "segment %s: producers paused by the controller", seg->name);
    struct shm__member *me = p->me;
    uint32_t gen = (shm__load_relaxed(&me->claim_state) & ~0xffu) + 0x100u;
    shm__store_relaxed(&me->claim_state, gen | SHM__CLAIM_CLAIMING);
    uint64_t first;
    int got;
    if (seg->policy == SHM_POLICY_BACKPRESSURE) {
        got = claim_backpressure(p, n, &first);
        /* A producer may retry at once: keep the refusal cheap and do the
         * slower checks on every 64th only, so a spinning producer does not
         * keep stealing the tail's cache line. */
        if (got < 0 && (++p->full_streak & 63u) == 1u) {
            /* A group's tail is a cache of min(next, held batch starts),
             * recomputed on acknowledgements. A computation that raced with
             * a batch being withdrawn (a member's failed CAS of next, a dead
             * member's PENDING entry dropped by reclaim) leaves it too low,
             * and when the ring is then quiescent nobody acknowledges again:
             * the ring would stay full for good. Recompute before refusing. */
            shm__refresh_tails(seg);
            shm__check_utilization(seg);
            int64_t now = shm__mono_ns();
            if (now - p->last_reclaim_ns > FULL_RECLAIM_EVERY_NS) {
                /* A dead consumer may be holding the tail back. */
                p->last_reclaim_ns = now;
                shm_reclaim(seg, NULL);
            }
            got = claim_backpressure(p, n, &first);
        }
        if (got < 0) {
            shm__store_release(&me->claim_state, gen | SHM__CLAIM_IDLE);
            shm__fetch_add_relaxed(&seg->ctr->full_rejections, 1);
            shm__fetch_add_relaxed(&seg->ctr->overflow_events, 1);
            return shm__fail(SHM_EFULL, "segment %s: ring full", seg->name);
        }
    } else {
        /* acq_rel: see the file comment. */
        first = shm__fetch_add_acq_rel(&seg->hdr->head, n);
        got = (int)n;
    }
    p->full_streak = 0;
    shm__store_relaxed(&me->claim_seq, first);
    shm__store_relaxed(&me->claim_n, (uint32_t)got);
    shm__store_release(&me->claim_state, gen | SHM__CLAIM_HOLDING);

    c->first_seq = first;
    c->count = (uint32_t)got;
    c->payload = seg->payload;
    c->owner = p;
    c->lapped = 0;
    memset(c->set_bits, 0, ((c->count + 63) / 64) * sizeof(uint64_t));
    /* Under backpressure no reader looks at a slot between its
     * acknowledgement and its next commit, so the slots are not touched
     * here: no BUSY stamp, no owner (a dead writer is found through its
     * HOLDING announcement instead). Each slot's line is then written once,
     * in one go, rather than before and after the payload — a consumer
     * polling the first slot would pull the line away in between. */
    if (seg->policy != SHM_POLICY_BACKPRESSURE) {
        memset(c->lapped_bits, 0, ((c->count + 63) / 64) * sizeof(uint64_t));
        for (uint32_t i = 0; i < c->count; i++) {
            if (!take_slot_drop_oldest(p, first + i)) {
                c->lapped_bits[i / 64] |= (uint64_t)1 << (i % 64);
                c->lapped++;
            }
        }
    }
    return got;
}

static inline bool slot_lapped(const shm_slots *c, uint32_t i)
{
    return c->lapped && (c->lapped_bits[i / 64] >> (i % 64)) & 1u;
}

void *shm_slots_buf(shm_slots *c, uint32_t i)
{
    if (!c || !c->owner || i >= c->count)
        return NULL;
    if (slot_lapped(c, i))
        return c->owner->scratch;
    return shm__slot_payload(shm__slot(c->owner->seg, c->first_seq + i));
}

int shm_slots_set_len(shm_slots *c, uint32_t i, uint32_t len)
{
    if (!c || !c->owner || i >= c->count)
        return shm__fail(SHM_EINVAL, "shm_slots_set_len: slot %u outside the claim", i);
    if (len > c->payload)
        return shm__fail(SHM_ETOOBIG, "record of %u bytes; slots carry at most %u", len,
                         c->payload);
    if (!slot_lapped(c, i))
        shm__store_relaxed(&shm__slot(c->owner->seg, c->first_seq + i)->len, len);
    if (len)
        c->set_bits[i / 64] |= (uint64_t)1 << (i % 64);
    else
        c->set_bits[i / 64] &= ~((uint64_t)1 << (i % 64));
    return 0;
}

int shm_commit(shm_producer *p, shm_slots *c)
{
    if (!p || !c || c->owner != p || c->count == 0)
        return shm__fail(SHM_EINVAL, "shm_commit: not a claim of this producer");
    shm_segment *seg = p->seg;
    uint32_t committed = 0, abandoned = 0;
    uint64_t bytes = 0;
    /* Highest slot first: a consumer waiting on the first slot of the claim
     * then finds the whole claim committed and takes it as one batch,
     * instead of chasing the commits slot by slot (each of its polls pulls
     * the line the producer is about to stamp). */
    for (uint32_t i = c->count; i-- > 0;) {
        if (slot_lapped(c, i))
            continue;
        uint64_t s = c->first_seq + i;
        struct shm__slot *slot = shm__slot(seg, s);
        uint32_t len = 0;
        if ((c->set_bits[i / 64] >> (i % 64)) & 1u)
            len = shm__load_relaxed(&slot->len);
        else
            shm__store_relaxed(&slot->len, 0); /* never given a length: a pad */
        shm__store_relaxed(&slot->flags, (uint16_t)(len == 0 ? SHM__SLOT_PAD : 0));
        /* Release: payload, len and flags happen-before any consumer's
         * acquire load that reads DONE(s). */
        shm__store_release(&slot->stamp, SHM__STAMP_DONE(s));
        if (len) {
            committed++;
            bytes += len;
        } else {
            abandoned++;
        }
    }
    struct shm__member *me = p->me;
    uint32_t w = shm__load_relaxed(&me->claim_state);
    shm__store_release(&me->claim_state, (w & ~0xffu) | SHM__CLAIM_IDLE);
    /* Records lost to a lapping producer count as put and lost (the group
     * that misses them counts them lost): put = delivered + lost per group. */
    uint32_t put = committed + c->lapped;
    if (put)
        shm__fetch_add_relaxed(&seg->ctr->records_put, put);
    if (c->lapped)
        shm__fetch_add_relaxed(&seg->ctr->claims_lapped, c->lapped);
    if (abandoned)
        shm__fetch_add_relaxed(&seg->ctr->slots_reclaimed, abandoned);
    shm__store_relaxed(&me->records, shm__load_relaxed(&me->records) + put);
    shm__store_relaxed(&me->batches, shm__load_relaxed(&me->batches) + 1);
    shm__store_relaxed(&me->bytes, shm__load_relaxed(&me->bytes) + bytes);
    c->count = 0;
    c->owner = NULL;
    /* seq_cst fence: our DONE stores are ordered before the load of
     * sleepers; a consumer increments sleepers before re-checking stamps.
     * One of the two sees the other (Dekker). */
    shm__fence_seq_cst();
    if (shm__load_relaxed(&seg->hdr->sleepers) > 0)
        shm__wake_consumers(seg);
    if (++p->commits % UTIL_CHECK_EVERY == 0)
        shm__check_utilization(seg);
    maybe_heartbeat(p);
    return (int)committed;
}

int shm_put(shm_producer *p, const void *data, uint32_t len, uint64_t *seq_out)
{
    if (!p || (!data && len))
        return shm__fail(SHM_EINVAL, "shm_put: NULL argument");
    if (len == 0)
        return shm__fail(SHM_EEMPTY, "zero-length record");
    if (len > p->seg->payload)
        return shm__fail(SHM_ETOOBIG, "record of %u bytes; slots carry at most %u", len,
                         p->seg->payload);
    shm_slots c;
    int rc = shm_claim(p, 1, &c);
    if (rc < 0)
        return rc;
    memcpy(shm_slots_buf(&c, 0), data, len);
    shm_slots_set_len(&c, 0, len);
    if (seq_out)
        *seq_out = c.first_seq;
    rc = shm_commit(p, &c);
    return rc < 0 ? rc : 0;
}

void shm__check_utilization(shm_segment *seg)
{
    struct shm__header *h = seg->hdr;
    uint64_t head = shm__load_acquire(&h->head);
    uint64_t tail = shm__min_tail(seg);
    uint64_t lag = head > tail ? head - tail : 0;
    if (lag > seg->slot_count)
        lag = seg->slot_count;
    uint32_t permille = (uint32_t)(lag * 1000 / seg->slot_count);
    shm__max_u32(&seg->ctr->util_high_water_permille, permille);
    uint32_t warn = h->util_warn_pct * 10;
    uint32_t rearm = warn > 100 ? warn - 100 : 0; /* hysteresis: 10 points below */
    uint32_t state = shm__load_relaxed(&h->util_warn_state);
    if (state == 0 && permille >= warn) {
        if (shm__cas(&h->util_warn_state, &state, 1u)) {
            shm__fetch_add_relaxed(&seg->ctr->util_warnings, 1);
            shm__log(seg, 1, "segment %s: ring utilization %u.%u%% crossed %u%%", seg->name,
                     permille / 10, permille % 10, h->util_warn_pct);
        }
    } else if (state == 1 && permille < rearm) {
        shm__cas(&h->util_warn_state, &state, 0u);
    }
}

int shm_set_paused(shm_segment *seg, int paused)
{
    if (!seg)
        return shm__fail(SHM_EINVAL, "shm_set_paused: NULL segment");
    if (seg->readonly)
        return shm__fail(SHM_EREADONLY, "segment %s is attached read-only", seg->name);
    shm__store_release(&seg->hdr->paused, paused ? 1u : 0u);
    return 0;
}

int shm_set_pressure_level(shm_segment *seg, uint32_t level)
{
    if (!seg)
        return shm__fail(SHM_EINVAL, "shm_set_pressure_level: NULL segment");
    if (seg->readonly)
        return shm__fail(SHM_EREADONLY, "segment %s is attached read-only", seg->name);
    shm__store_release(&seg->hdr->pressure_level, level);
    return 0;
}

/*
 * members.c — the member registry: joining, leaving, and cleaning up after
 * members that died.
 *
 * Each member slot belongs to one process between FREE -> JOINING and
 * -> FREE. Only that process writes its identity, claim and batch fields,
 * with two exceptions made safe by the process being dead: the reclaimer
 * rewrites a dead member's claim and batch states, and a member taking over
 * an orphaned batch CASes that batch's state.
 *
 * Death is decided by pid + start time (shm_process_alive), never by a
 * heartbeat: a slow process is never robbed. What a dead member held is
 * made whole:
 *   - producer: every slot of its announced claim that is not committed is
 *     padded (committed as an empty PAD record) so consumers move on; a claim
 *     it was still taking (CLAIMING) is found by shm__resolve_stuck() when a
 *     consumer waits on it;
 *   - consumer: its batches become ORPHANED and the next member of the group
 *     to consume takes them over (at-least-once re-delivery);
 *   - a batch it had itself taken over from another dead member becomes
 *     ORPHANED again.
 * Its slot becomes FREE only once it holds nothing.
 *
 * Cleaning up after one dead member is one reclaimer's job at a time: the
 * reclaimer that moves the slot to DEAD (or takes over an unowned DEAD slot,
 * or one whose reclaimer died) puts its thread id in the state word, does
 * the cleanup, and then frees the slot or lets go of it (DEAD, tag 0). Each
 * cleanup step is still a CAS, but no step can land on a newer member: the
 * slot cannot be freed and joined again while its reclaimer works, however
 * long that reclaimer is preempted (see layout.h for the state word).
 */
#include "internal.h"

#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline struct shm__member *member_at(const shm_segment *seg, uint32_t i)
{
    return &seg->members[i];
}

bool shm__member_alive(const struct shm__member *m)
{
    return shm_process_alive(m->pid, m->start_time) != 0;
}

/* This thread's tag in a DEAD state word: its thread id (threads of one
 * process reclaim independently). Never 0: 0 means "nobody". */
static uint32_t reclaimer_tag(void)
{
    uint32_t tid = (uint32_t)syscall(SYS_gettid) & 0xffffffu;
    return tid ? tid : 1u;
}

/* Whether the reclaimer with that tag still runs (a zombie does not). */
static bool reclaimer_alive(uint32_t tag)
{
    int32_t tid = (int32_t)tag;
    return shm_process_alive(tid, shm_process_start_time(tid)) != 0;
}

int shm__member_join(shm_segment *seg, uint32_t role, uint32_t group, const char *name,
                     uint32_t *index_out)
{
    if (seg->readonly)
        return shm__fail(SHM_EREADONLY, "segment %s is attached read-only", seg->name);
    int32_t pid = (int32_t)getpid();
    uint64_t start = shm_process_start_time(pid);
    uint32_t joining = SHM__MEMBER_JOINING | ((uint32_t)pid << 8);
    for (int pass = 0; pass < 2; pass++) {
        for (uint32_t i = 0; i < seg->hdr->max_members; i++) {
            struct shm__member *m = member_at(seg, i);
            uint32_t st = SHM_MEMBER_FREE;
            /* acq_rel: acquire makes the previous owner's last writes (it
             * released the slot with a release store of FREE) happen before
             * ours. */
            if (!shm__cas(&m->state, &st, joining))
                continue;
            m->role = role;
            m->pid = pid;
            m->group = group;
            m->start_time = start;
            uint32_t gen = shm__fetch_add_relaxed(&m->gen, 1) + 1;
            memset(m->name, 0, sizeof m->name);
            if (name)
                strncpy(m->name, name, sizeof m->name - 1);
            int64_t now = shm__now_ns();
            shm__store_relaxed(&m->joined_ns, now);
            shm__store_relaxed(&m->heartbeat_ns, now);
            shm__store_relaxed(&m->claim_state, SHM__CLAIM_IDLE);
            shm__store_relaxed(&m->claim_n, 0);
            shm__store_relaxed(&m->claim_seq, 0);
            shm__store_relaxed(&m->records, 0);
            shm__store_relaxed(&m->batches, 0);
            shm__store_relaxed(&m->bytes, 0);
            for (int b = 0; b < SHM_MEMBER_BATCHES; b++)
                shm__store_relaxed(&m->batch[b].state, SHM__BATCH_NONE);
            shm__max_u32(&seg->hdr->members_used, i + 1);
            if (group < SHM_MAX_GROUPS)
                shm__fetch_or_relaxed(&seg->groups[group].member_bits[i / 64],
                                      (uint64_t)1 << (i % 64));
            /* Release: identity fields above are visible to whoever reads
             * ACTIVE with acquire (reclaimers, inspectors). */
            shm__store_release(&m->state, SHM__MEMBER_STATE(SHM_MEMBER_ACTIVE, gen));
            *index_out = i;
            return 0;
        }
        shm_reclaim(seg, NULL); /* a dead member may free a slot */
    }
    return shm__fail(SHM_EMEMBERS, "segment %s: all %u member slots are taken", seg->name,
                     seg->hdr->max_members);
}

/* Frees a slot that holds nothing. The caller owns it (its own, or a dead
 * member's whose cleanup it owns); from_state is the state word it owns. */
static void free_slot(shm_segment *seg, uint32_t i, uint32_t from_state)
{
    struct shm__member *m = member_at(seg, i);
    if (m->group < SHM_MAX_GROUPS)
        shm__fetch_and_relaxed(&seg->groups[m->group].member_bits[i / 64],
                               ~((uint64_t)1 << (i % 64)));
    uint32_t st = from_state;
    shm__cas(&m->state, &st, SHM_MEMBER_FREE);
}

static bool holds_nothing(const struct shm__member *m)
{
    if (SHM__CLAIM_KIND(shm__load_acquire(&m->claim_state)) != SHM__CLAIM_IDLE)
        return false;
    for (int b = 0; b < SHM_MEMBER_BATCHES; b++)
        if (shm__load_acquire(&m->batch[b].state) != SHM__BATCH_NONE)
            return false;
    return true;
}

/* Orphans again every batch that member `taker` (dead, or leaving) had
 * taken over from a dead member. */
static uint32_t release_taken(shm_segment *seg, uint32_t taker)
{
    uint32_t orphaned = 0;
    uint32_t used = shm__load_acquire(&seg->hdr->members_used);
    uint32_t want = SHM__BATCH_TAKEN_BY(taker);
    for (uint32_t i = 0; i < used; i++) {
        struct shm__member *m = member_at(seg, i);
        for (int b = 0; b < SHM_MEMBER_BATCHES; b++) {
            uint32_t st = want;
            if (shm__cas(&m->batch[b].state, &st, SHM__BATCH_ORPHANED)) {
                if (m->group < SHM_MAX_GROUPS)
                    shm__fetch_add_relaxed(&seg->groups[m->group].orphans, 1);
                orphaned++;
            }
        }
    }
    return orphaned;
}

void shm__member_leave(shm_segment *seg, uint32_t i)
{
    struct shm__member *m = member_at(seg, i);
    /* Batches not acknowledged are handed to the rest of the group, exactly
     * as if we had died. Those we took over from dead members live in
     * their registry slots, where holds_nothing() does not look: give them
     * back first, or they stay TAKEN by a slot that no longer exists. */
    if (release_taken(seg, i) > 0)
        shm__wake_consumers(seg);
    /* Our state is ACTIVE | our generation: nobody else changes it while we
     * live. */
    uint32_t st = shm__load_acquire(&m->state);
    if (!holds_nothing(m)) {
        if (shm__cas(&m->state, &st, SHM__MEMBER_STATE(SHM_MEMBER_DEAD, reclaimer_tag())))
            shm_reclaim(seg, NULL); /* we own the cleanup: it runs now */
        return;
    }
    free_slot(seg, i, st);
}

bool shm__pad_slot(shm_segment *seg, uint64_t s, uint64_t expected)
{
    struct shm__slot *slot = shm__slot(seg, s);
    uint64_t st = expected;
    /* Take the slot exclusively before writing it, so that neither a
     * concurrent producer (drop-oldest) nor another padder writes it too:
     *  - not taken yet: CAS the stamp to BUSY(s), as a producer would;
     *  - already BUSY(s) (its writer died mid-write): producers wait on a
     *    BUSY slot, so only padders compete; the one whose CAS moves `owner`
     *    to PADDER pads it, the others back off. */
    if (st == SHM__STAMP_BUSY(s)) {
        uint16_t owner = shm__load_relaxed(&slot->owner);
        if (owner == SHM__SLOT_PADDER || !shm__cas(&slot->owner, &owner, SHM__SLOT_PADDER))
            return false;
        if (shm__load_acquire(&slot->stamp) != SHM__STAMP_BUSY(s))
            return false; /* published meanwhile: nothing to pad */
    } else {
        if (!shm__cas(&slot->stamp, &st, SHM__STAMP_BUSY(s)))
            return false;
        shm__store_relaxed(&slot->owner, SHM__SLOT_PADDER);
    }
    shm__store_relaxed(&slot->len, 0);
    shm__store_relaxed(&slot->flags, (uint16_t)SHM__SLOT_PAD);
    /* Release (acq_rel CAS): len/flags are visible to a consumer that
     * acquires DONE(s). We own the slot; the CAS only guards the invariant. */
    uint64_t busy = SHM__STAMP_BUSY(s);
    if (!shm__cas(&slot->stamp, &busy, SHM__STAMP_DONE(s)))
        return false;
    shm__fetch_add_relaxed(&seg->ctr->slots_reclaimed, 1);
    shm__fence_seq_cst(); /* pairs with sleepers++ in shm__sleep_until */
    if (shm__load_relaxed(&seg->hdr->sleepers) > 0)
        shm__wake_consumers(seg);
    return true;
}

/* Pads every uncommitted slot of a dead producer's announced claim. */
static uint32_t pad_claim(shm_segment *seg, struct shm__member *m)
{
    uint32_t padded = 0;
    uint32_t w = shm__load_acquire(&m->claim_state);
    if (SHM__CLAIM_KIND(w) == SHM__CLAIM_HOLDING) {
        uint64_t first = shm__load_relaxed(&m->claim_seq);
        uint32_t n = shm__load_relaxed(&m->claim_n);
        for (uint32_t k = 0; k < n && k < SHM_CLAIM_MAX; k++) {
            uint64_t s = first + k;
            struct shm__slot *slot = shm__slot(seg, s);
            uint64_t st = shm__load_acquire(&slot->stamp);
            /* Committed, or already reused by a newer lap: nothing to do. */
            if (st == SHM__STAMP_DONE(s) || SHM__STAMP_SEQ(st) > s)
                continue;
            if (shm__pad_slot(seg, s, st))
                padded++;
        }
    }
    /* A CLAIMING claim's range is unknown; shm__resolve_stuck() handles it
     * because dead producers are ignored there. */
    shm__store_release(&m->claim_state, (w & ~0xffu) | SHM__CLAIM_IDLE);
    return padded;
}

/* Makes a dead member's batches re-deliverable. */
static uint32_t orphan_batches(shm_segment *seg, struct shm__member *m)
{
    uint32_t orphaned = 0;
    if (m->group >= SHM_MAX_GROUPS)
        return 0;
    struct shm__group *g = &seg->groups[m->group];
    for (int b = 0; b < SHM_MEMBER_BATCHES; b++) {
        struct shm__batch_entry *e = &m->batch[b];
        uint32_t st = shm__load_acquire(&e->state);
        uint32_t kind = SHM__BATCH_KIND(st);
        if (kind == SHM__BATCH_PENDING) {
            /* Died around its CAS of group.next. The CAS never happened
             * (and never will) if next still equals the start, or if the
             * group's tail has passed the start: a successful CAS publishes
             * the entry (release), so every tail computation that reads
             * next at or after it (acquire) sees the entry held and stops
             * at its start. Such a range was taken by another member and
             * acknowledged, and its slots may hold newer records by now:
             * re-delivering it would hand out acknowledged, overwritten
             * records. Otherwise the CAS may have happened: re-deliver
             * (at-least-once; duplicates are removed by sequence number
             * downstream). */
            uint64_t start = shm__load_relaxed(&e->start);
            if (shm__load_acquire(&g->next) == start || shm__load_acquire(&g->tail) > start) {
                shm__cas(&e->state, &st, SHM__BATCH_NONE);
                continue;
            }
        }
        if (kind == SHM__BATCH_PENDING || kind == SHM__BATCH_HELD) {
            if (shm__cas(&e->state, &st, SHM__BATCH_ORPHANED)) {
                shm__fetch_add_relaxed(&g->orphans, 1);
                orphaned++;
            }
        }
    }
    return orphaned;
}

int shm_reclaim(shm_segment *seg, shm_reclaim_report *report)
{
    shm_reclaim_report r = {0};
    if (!seg)
        return shm__fail(SHM_EINVAL, "shm_reclaim: NULL segment");
    if (seg->readonly)
        return shm__fail(SHM_EREADONLY, "segment %s is attached read-only", seg->name);
    uint32_t me = reclaimer_tag();
    uint32_t mine = SHM__MEMBER_STATE(SHM_MEMBER_DEAD, me);
    uint32_t used = shm__load_acquire(&seg->hdr->members_used);
    for (uint32_t i = 0; i < used && i < seg->hdr->max_members; i++) {
        struct shm__member *m = member_at(seg, i);
        uint32_t st = shm__load_acquire(&m->state);
        uint32_t kind = SHM__MEMBER_KIND(st);
        if (kind == SHM__MEMBER_JOINING) {
            /* A joiner holds nothing yet, but it may already have set its
             * bit in its group's member_bits (it does so before storing
             * ACTIVE). Freeing the slot straight to FREE left that bit
             * behind, and the group then scanned whoever took the slot next
             * (maybe a member of another group) as one of its own: it
             * computed its tail from that member's batches and took over
             * its orphans. Free it through DEAD instead: free_slot() clears
             * the bit of m->group, which the joiner wrote before the bit
             * (if it died earlier, no bit of slot i is set anywhere, and
             * clearing a stale group's bit i touches nobody else's: slot i
             * is ours once the CAS to DEAD succeeds). */
            if (shm__pid_running(SHM__MEMBER_JOINER(st)) || !shm__cas(&m->state, &st, mine))
                continue;
        } else if (kind == SHM_MEMBER_ACTIVE) {
            /* The identity read here may be a newer member's if the slot
             * changed hands since the state load; then the CAS fails, as
             * the generation in the state word changed too. */
            if (shm__member_alive(m))
                continue;
            if (!shm__cas(&m->state, &st, mine))
                continue;
            r.members_dead++;
            shm__fetch_add_relaxed(&seg->ctr->members_reclaimed, 1);
            shm__log(seg, 1, "member %u (%s, pid %d) died; reclaiming what it held", i, m->name,
                     (int)m->pid);
        } else if (kind == SHM_MEMBER_DEAD) {
            /* Someone else is cleaning up (ours: we are leaving, see
             * shm__member_leave); take over only when nobody is or when
             * that reclaimer died. */
            uint32_t owner = SHM__MEMBER_TAG(st);
            if (owner != me && owner != 0 && reclaimer_alive(owner))
                continue;
            if (!shm__cas(&m->state, &st, mine))
                continue;
        } else {
            continue;
        }
        /* The cleanup of this slot is ours until we free it or let go. */
        r.slots_padded += pad_claim(seg, m);
        r.batches_orphaned += orphan_batches(seg, m);
        r.batches_orphaned += release_taken(seg, i);
        if (holds_nothing(m)) {
            free_slot(seg, i, mine);
            r.members_freed++;
        } else {
            /* Orphans still wait to be taken over: let go, so that whoever
             * reclaims next finishes the job. */
            uint32_t held = mine;
            shm__cas(&m->state, &held, SHM__MEMBER_STATE(SHM_MEMBER_DEAD, 0));
        }
    }
    if (r.batches_orphaned > 0)
        shm__wake_consumers(seg);
    if (report)
        *report = r;
    return (int)r.members_dead;
}

/* Reads a producer's claim consistently: returns false if it changed while
 * being read (the caller then assumes the worst). */
static bool read_claim(const struct shm__member *m, uint32_t *kind, uint64_t *first, uint32_t *n)
{
    uint32_t w1 = shm__load_acquire(&m->claim_state);
    *first = shm__load_relaxed(&m->claim_seq);
    *n = shm__load_relaxed(&m->claim_n);
    shm__fence_acquire();
    uint32_t w2 = shm__load_relaxed(&m->claim_state);
    *kind = SHM__CLAIM_KIND(w1);
    return w1 == w2;
}

bool shm__resolve_stuck(shm_segment *seg, uint64_t s)
{
    if (seg->readonly)
        return false;
    /* Acquire pairs with the producers' acq_rel RMWs on head: if head > s,
     * the claim announcement (CLAIMING) of whoever took s is visible below. */
    uint64_t head = shm__load_acquire(&seg->hdr->head);
    if (s >= head)
        return false;
    struct shm__slot *slot = shm__slot(seg, s);
    uint64_t st = shm__load_acquire(&slot->stamp);
    if (st == SHM__STAMP_DONE(s) || SHM__STAMP_SEQ(st) > s)
        return false;
    if (st == SHM__STAMP_BUSY(s)) {
        uint16_t owner = shm__load_relaxed(&slot->owner);
        if (owner < seg->hdr->max_members) {
            const struct shm__member *m = member_at(seg, owner);
            if (SHM__MEMBER_KIND(shm__load_acquire(&m->state)) == SHM_MEMBER_ACTIVE &&
                shm__member_alive(m))
                return false; /* a live producer is writing it */
        }
        /* The owner field is only a hint: under drop-oldest a lapped
         * producer stores its index there before it loses the CAS of the
         * stamp, so a dead owner does not prove a dead writer. Whoever
         * holds s announced it (HOLDING) before taking the slot: ask the
         * registry, as for a slot not taken yet. */
    }
    /* Is s within a live producer's claim, or might it be? */
    uint32_t used = shm__load_acquire(&seg->hdr->members_used);
    for (uint32_t i = 0; i < used; i++) {
        const struct shm__member *m = member_at(seg, i);
        if (SHM__MEMBER_KIND(shm__load_acquire(&m->state)) != SHM_MEMBER_ACTIVE ||
            m->role != SHM_ROLE_PRODUCER)
            continue;
        uint32_t kind, n;
        uint64_t first;
        bool consistent = read_claim(m, &kind, &first, &n);
        if (kind == SHM__CLAIM_IDLE && consistent)
            continue;
        if (!shm__member_alive(m))
            continue;
        if (!consistent || kind == SHM__CLAIM_CLAIMING)
            return false; /* might be taking s right now */
        if (s >= first && s - first < n)
            return false; /* a live producer holds s */
    }
    return shm__pad_slot(seg, s, st);
}

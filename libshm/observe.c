/*
 * observe.c — lock-free snapshots of a segment for inspectors (shmstat, the
 * controller). Everything is read with single atomic loads from a mapping
 * that may be read-only; nothing here writes to the segment. Figures from
 * different cache lines are not mutually consistent to the record, which an
 * inspector can live with; each figure on its own is exact.
 */
#include "internal.h"

#include <string.h>

int shm_ring_stats_get(const shm_segment *seg, shm_ring_stats *out)
{
    if (!seg || !out)
        return shm__fail(SHM_EINVAL, "shm_ring_stats_get: NULL argument");
    const struct shm__header *h = seg->hdr;
    const struct shm__counters *k = seg->ctr;
    memset(out, 0, sizeof *out);
    out->head_seq = shm__load_acquire(&h->head);
    out->records_put = shm__load_relaxed(&k->records_put);
    out->claims_lapped = shm__load_relaxed(&k->claims_lapped);
    out->full_rejections = shm__load_relaxed(&k->full_rejections);
    out->overflow_events = shm__load_relaxed(&k->overflow_events);
    out->slots_reclaimed = shm__load_relaxed(&k->slots_reclaimed);
    out->members_reclaimed = shm__load_relaxed(&k->members_reclaimed);
    out->util_warnings = shm__load_relaxed(&k->util_warnings);
    out->util_high_water_permille = shm__load_relaxed(&k->util_high_water_permille);
    out->paused = shm__load_relaxed(&h->paused);
    out->pressure_level = shm__load_relaxed(&h->pressure_level);
    uint32_t mask = shm__load_acquire(&h->groups_mask);
    out->groups = (uint32_t)__builtin_popcount(mask);
    uint64_t tail = shm__min_tail((shm_segment *)seg);
    uint64_t lag = out->head_seq > tail ? out->head_seq - tail : 0;
    out->utilization = lag >= seg->slot_count ? 1.0 : (double)lag / seg->slot_count;
    return 0;
}

int shm_group_stats_get(const shm_segment *seg, shm_group_stats *out, int max)
{
    if (!seg || (!out && max > 0))
        return shm__fail(SHM_EINVAL, "shm_group_stats_get: NULL argument");
    uint64_t head = shm__load_acquire(&seg->hdr->head);
    int n = 0;
    for (uint32_t i = 0; i < SHM_MAX_GROUPS; i++) {
        const struct shm__group *g = &seg->groups[i];
        if (shm__load_acquire(&g->state) != SHM__GROUP_ACTIVE)
            continue;
        if (n < max) {
            shm_group_stats *s = &out[n];
            memset(s, 0, sizeof *s);
            memcpy(s->name, g->name, sizeof s->name - 1);
            s->next_seq = shm__load_acquire(&g->next);
            s->tail_seq = shm__load_acquire(&g->tail);
            s->lag = head > s->tail_seq ? head - s->tail_seq : 0;
            s->utilization = s->lag >= seg->slot_count ? 1.0 : (double)s->lag / seg->slot_count;
            s->consumed = shm__load_relaxed(&g->consumed);
            s->lost = shm__load_relaxed(&g->lost);
            s->redelivered = shm__load_relaxed(&g->redelivered);
            s->batches = shm__load_relaxed(&g->batches);
            s->invalid = shm__load_relaxed(&g->invalid);
            s->lost_events = shm__load_relaxed(&g->lost_events);
            s->padded = shm__load_relaxed(&g->padded);
            s->orphans = shm__load_relaxed(&g->orphans);
            for (int w = 0; w < 4; w++) {
                uint64_t bits = shm__load_acquire(&g->member_bits[w]);
                while (bits) {
                    uint32_t m = (uint32_t)w * 64 + (uint32_t)__builtin_ctzll(bits);
                    bits &= bits - 1;
                    const struct shm__member *mb = &seg->members[m];
                    if (m < seg->hdr->max_members &&
                        SHM__MEMBER_KIND(shm__load_acquire(&mb->state)) == SHM_MEMBER_ACTIVE &&
                        shm__member_alive(mb))
                        s->members++;
                }
            }
        }
        n++;
    }
    return n;
}

int shm_member_stats_get(const shm_segment *seg, shm_member_stats *out, int max)
{
    if (!seg || (!out && max > 0))
        return shm__fail(SHM_EINVAL, "shm_member_stats_get: NULL argument");
    uint32_t used = shm__load_acquire(&seg->hdr->members_used);
    int n = 0;
    for (uint32_t i = 0; i < used && i < seg->hdr->max_members; i++) {
        const struct shm__member *m = &seg->members[i];
        uint32_t st = SHM__MEMBER_KIND(shm__load_acquire(&m->state));
        if (st != SHM_MEMBER_ACTIVE && st != SHM_MEMBER_DEAD)
            continue;
        if (n < max) {
            shm_member_stats *s = &out[n];
            memset(s, 0, sizeof *s);
            s->index = i;
            s->state = st;
            s->role = m->role;
            s->pid = m->pid;
            s->start_time = m->start_time;
            memcpy(s->name, m->name, sizeof s->name - 1);
            if (m->group < SHM_MAX_GROUPS)
                memcpy(s->group, seg->groups[m->group].name, sizeof s->group - 1);
            s->joined_ns = shm__load_relaxed(&m->joined_ns);
            s->heartbeat_ns = shm__load_relaxed(&m->heartbeat_ns);
            s->records = shm__load_relaxed(&m->records);
            s->batches = shm__load_relaxed(&m->batches);
            s->bytes = shm__load_relaxed(&m->bytes);
            for (int b = 0; b < SHM_MEMBER_BATCHES; b++)
                if (shm__load_relaxed(&m->batch[b].state) != SHM__BATCH_NONE)
                    s->batches_held++;
            s->alive = shm_process_alive(m->pid, m->start_time);
        }
        n++;
    }
    return n;
}

int shm_ring_peek(const shm_segment *seg, uint32_t max, shm_record *out, void *buf, size_t buf_len)
{
    if (!seg || (!out && max) || (!buf && max))
        return shm__fail(SHM_EINVAL, "shm_ring_peek: NULL argument");
    if (buf_len / seg->payload < max)
        max = (uint32_t)(buf_len / seg->payload);
    uint64_t head = shm__load_acquire(&seg->hdr->head);
    uint64_t first_valid = seg->hdr->initial_seq;
    uint64_t window = seg->slot_count / 2; /* never reach into a slot being rewritten */
    uint64_t from = head > first_valid + window ? head - window : first_valid;
    /* Walk back from the newest, collecting committed records, then emit
     * them oldest first. */
    uint32_t got = 0;
    uint8_t *dst = buf;
    for (uint64_t s = head; s > from && got < max;) {
        s--;
        struct shm__slot *slot = shm__slot(seg, s);
        uint64_t st = shm__load_acquire(&slot->stamp);
        if (st != SHM__STAMP_DONE(s))
            continue;
        uint32_t len = shm__load_relaxed(&slot->len);
        uint16_t flags = shm__load_relaxed(&slot->flags);
        if ((flags & SHM__SLOT_PAD) || len == 0 || len > seg->payload)
            continue;
        uint8_t *copy = dst + (size_t)got * seg->payload;
        memcpy(copy, shm__slot_payload(slot), len);
        shm__fence_acquire();
        if (shm__load_relaxed(&slot->stamp) != st)
            continue; /* overwritten while copied */
        out[got].seq = s;
        out[got].data = copy;
        out[got].len = len;
        got++;
    }
    /* Reverse into oldest-first order. */
    for (uint32_t i = 0; i < got / 2; i++) {
        shm_record t = out[i];
        out[i] = out[got - 1 - i];
        out[got - 1 - i] = t;
    }
    return (int)got;
}

/*
 * counters.c — named counters and the tag catalog in the segment.
 *
 * Named counters are self-describing (name, kind, value) so shmstat and the
 * controller's /metrics export counters of services they know nothing about.
 * A slot is taken with a CAS FREE -> WRITING, its name written, then READY
 * (release); it is never freed, so a restarted process finds its totals by
 * name. Values are 64-bit atomics: several processes may add to one.
 *
 * Catalog entries are seqlocked: the writer makes the sequence odd, writes,
 * makes it even (release); a reader retries a bounded number of times while
 * the sequence is odd or changed during its copy (Varnish's pattern).
 */
#include "internal.h"

#include <sched.h>
#include <string.h>
#include <unistd.h>

struct shm_counter {
    struct shm__named slot; /* shm_counter pointers point at shm__named */
};

static int valid_counter_name(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > SHM_COUNTER_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return 0;
    return 1;
}

int shm_counter_open(shm_segment *seg, const char *name, int kind, shm_counter **out)
{
    if (!seg || !out || (kind != SHM_COUNTER && kind != SHM_GAUGE))
        return shm__fail(SHM_EINVAL, "shm_counter_open: bad argument");
    if (!valid_counter_name(name))
        return shm__fail(SHM_EINVAL, "counter name: 1..%d printable characters",
                         SHM_COUNTER_NAME_MAX);
    if (seg->readonly)
        return shm__fail(SHM_EREADONLY, "segment %s is attached read-only", seg->name);
    uint32_t writing = SHM__NAMED_WRITING | ((uint32_t)getpid() << 8);
    for (uint32_t i = 0; i < seg->hdr->counter_capacity; i++) {
        struct shm__named *n = &seg->named[i];
        uint32_t st = shm__load_acquire(&n->state);
        while (SHM__NAMED_KIND(st) == SHM__NAMED_WRITING) {
            /* Someone names this slot: wait for it, or take the slot over
             * if that process died half-way. */
            if (!shm__pid_running(SHM__NAMED_WRITER(st)) && shm__cas(&n->state, &st, writing))
                goto write_name;
            sched_yield();
            st = shm__load_acquire(&n->state);
        }
        if (st == SHM__NAMED_READY) {
            if (strcmp(n->name, name) == 0) {
                *out = (shm_counter *)n;
                return 0;
            }
            continue;
        }
        if (!shm__cas(&n->state, &st, writing)) {
            i--; /* lost the race for this slot: look at it again */
            continue;
        }
    write_name:
        memset(n->name, 0, sizeof n->name);
        memcpy(n->name, name, strlen(name));
        n->kind = (uint32_t)kind;
        shm__store_relaxed(&n->value, 0);
        shm__store_release(&n->state, SHM__NAMED_READY);
        *out = (shm_counter *)n;
        return 0;
    }
    return shm__fail(SHM_ENOSPACE, "segment %s: all %u named counters are taken", seg->name,
                     seg->hdr->counter_capacity);
}

void shm_counter_add(shm_counter *c, uint64_t delta)
{
    if (c)
        shm__fetch_add_relaxed(&c->slot.value, delta);
}

void shm_counter_set(shm_counter *c, uint64_t value)
{
    if (c)
        shm__store_relaxed(&c->slot.value, value);
}

uint64_t shm_counter_get(const shm_counter *c)
{
    return c ? shm__load_relaxed(&((struct shm_counter *)c)->slot.value) : 0;
}

int shm_counter_foreach(const shm_segment *seg, shm_counter_visit_fn fn, void *ctx)
{
    if (!seg || !fn)
        return shm__fail(SHM_EINVAL, "shm_counter_foreach: NULL argument");
    for (uint32_t i = 0; i < seg->hdr->counter_capacity; i++) {
        struct shm__named *n = &seg->named[i];
        uint32_t st = shm__load_acquire(&n->state);
        if (st == SHM__NAMED_FREE)
            break;
        if (st != SHM__NAMED_READY)
            continue;
        char name[SHM_COUNTER_NAME_MAX + 1];
        memcpy(name, n->name, sizeof name);
        name[SHM_COUNTER_NAME_MAX] = '\0';
        int r = fn(ctx, name, (int)n->kind, shm__load_relaxed(&n->value));
        if (r)
            return r;
    }
    return 0;
}

int shm_catalog_put(shm_segment *seg, uint32_t tag_id, const void *rec, uint32_t len)
{
    if (!seg || (!rec && len))
        return shm__fail(SHM_EINVAL, "shm_catalog_put: NULL argument");
    if (seg->readonly)
        return shm__fail(SHM_EREADONLY, "segment %s is attached read-only", seg->name);
    if (tag_id >= seg->hdr->catalog_capacity)
        return shm__fail(SHM_EINVAL, "tag id %u: the catalog holds ids 0..%u", tag_id,
                         seg->hdr->catalog_capacity - 1);
    if (len > SHM_CATALOG_ENTRY_MAX)
        return shm__fail(SHM_ETOOBIG, "catalog record of %u bytes; at most %d", len,
                         SHM_CATALOG_ENTRY_MAX);
    struct shm__catalog_entry *e = &seg->catalog[tag_id];
    /* Writers of one entry are serialised by `writer` (a pid); a lock whose
     * holder died is taken over, and the sequence it left odd is simply
     * made even by our own write. */
    int32_t me = (int32_t)getpid();
    for (;;) {
        int32_t holder = 0;
        if (shm__cas(&e->writer, &holder, me))
            break;
        if (holder == me || !shm__pid_running(holder)) {
            if (shm__cas(&e->writer, &holder, me))
                break;
            continue;
        }
        sched_yield();
    }
    uint32_t seq = shm__load_relaxed(&e->seq);
    uint32_t odd = seq | 1u;
    shm__store_relaxed(&e->seq, odd);
    shm__fence_release(); /* odd sequence before the data (seqlock writer) */
    if (len)
        memcpy(e->data, rec, len); /* rec may be NULL for an empty entry */
    shm__store_relaxed(&e->len, len);
    shm__store_release(&e->seq, odd + 1);
    shm__store_release(&e->writer, 0);
    return 0;
}

int shm_catalog_get(const shm_segment *seg, uint32_t tag_id, void *buf, uint32_t cap)
{
    if (!seg || (!buf && cap))
        return shm__fail(SHM_EINVAL, "shm_catalog_get: NULL argument");
    if (tag_id >= seg->hdr->catalog_capacity)
        return shm__fail(SHM_EINVAL, "tag id %u: the catalog holds ids 0..%u", tag_id,
                         seg->hdr->catalog_capacity - 1);
    struct shm__catalog_entry *e = &seg->catalog[tag_id];
    for (int attempt = 0; attempt < 1000; attempt++) {
        uint32_t s1 = shm__load_acquire(&e->seq);
        if (s1 & 1u) {
            sched_yield();
            continue;
        }
        uint32_t len = shm__load_relaxed(&e->len);
        if (len > SHM_CATALOG_ENTRY_MAX)
            len = SHM_CATALOG_ENTRY_MAX; /* validated below by the seqlock */
        if (len > cap)
            return shm__fail(SHM_ETOOBIG, "catalog entry %u is %u bytes; buffer holds %u", tag_id,
                             len, cap);
        memcpy(buf, e->data, len);
        shm__fence_acquire();
        if (shm__load_relaxed(&e->seq) == s1)
            return (int)len;
    }
    return shm__fail(SHM_ETIMEDOUT, "catalog entry %u kept changing while read", tag_id);
}

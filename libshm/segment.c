/*
 * segment.c — creating, attaching, validating and removing a segment.
 *
 * The creator takes the name with O_CREAT|O_EXCL, sizes and initialises every
 * region, and only then stores header.ready = 1 with release order; an
 * attacher acquires `ready` before trusting anything else. An attach checks
 * magic, layout version, sizes and the region offsets against what the
 * header's own capacities imply, so a truncated, foreign or differently
 * built segment is refused with its own code and never misread.
 *
 * Ownership: the handle is process-local and may be shared by threads; the
 * mapping lives until shm_segment_close().
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_SLOT_SIZE 128u
#define DEFAULT_SLOT_COUNT 65536u
#define DEFAULT_MAX_MEMBERS 128u
#define MAX_MEMBERS 256u
#define DEFAULT_CATALOG 4096u
#define DEFAULT_COUNTERS 2048u
#define DEFAULT_MODE 0660u
#define DEFAULT_UTIL_WARN 80u
#define MAX_SLOT_COUNT (1u << 28)
#define READY_WAIT_MS 1000

struct geometry {
    uint32_t slot_size, slot_count, max_members, catalog_capacity, counter_capacity;
    uint64_t off_counters, off_groups, off_members, off_named, off_catalog, off_ring, total;
};

static uint64_t round_page(uint64_t v)
{
    return (v + 4095u) & ~(uint64_t)4095u;
}

static void compute_layout(struct geometry *g)
{
    g->off_counters = SHM__HEADER_SIZE;
    g->off_groups = round_page(g->off_counters + sizeof(struct shm__counters));
    g->off_members = round_page(g->off_groups + SHM_MAX_GROUPS * sizeof(struct shm__group));
    g->off_named = round_page(g->off_members + (uint64_t)g->max_members * sizeof(struct shm__member));
    g->off_catalog =
        round_page(g->off_named + (uint64_t)g->counter_capacity * sizeof(struct shm__named));
    g->off_ring = round_page(g->off_catalog +
                             (uint64_t)g->catalog_capacity * sizeof(struct shm__catalog_entry));
    g->total = g->off_ring + (uint64_t)g->slot_count * g->slot_size;
}

static int valid_name(const char *name)
{
    if (!name || !*name || strlen(name) > SHM_NAME_MAX)
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int object_name(const char *name, char *buf, size_t len)
{
    if (!valid_name(name))
        return shm__fail(SHM_ENAME,
                         "segment name '%s': use 1..%d characters of [A-Za-z0-9._-] (no '/')",
                         name ? name : "(null)", SHM_NAME_MAX);
    snprintf(buf, len, "/shmbus.%s", name);
    return 0;
}

static int geometry_from_options(const shm_segment_options *o, struct geometry *g, uint32_t *policy,
                                 uint32_t *mode, uint32_t *warn)
{
    shm_segment_options d = {0};
    if (!o)
        o = &d;
    g->slot_size = o->slot_size ? o->slot_size : DEFAULT_SLOT_SIZE;
    g->slot_count = o->slot_count ? o->slot_count : DEFAULT_SLOT_COUNT;
    g->max_members = o->max_members ? o->max_members : DEFAULT_MAX_MEMBERS;
    g->catalog_capacity = o->catalog_capacity ? o->catalog_capacity : DEFAULT_CATALOG;
    g->counter_capacity = o->counter_capacity ? o->counter_capacity : DEFAULT_COUNTERS;
    *policy = o->policy ? o->policy : SHM_POLICY_DROP_OLDEST;
    *mode = o->mode ? o->mode : DEFAULT_MODE;
    *warn = o->util_warn_pct ? o->util_warn_pct : DEFAULT_UTIL_WARN;
    if (g->slot_size < SHM_SLOT_MIN || g->slot_size > SHM_SLOT_MAX || g->slot_size % 64 != 0)
        return shm__fail(SHM_EGEOMETRY, "slot size %u: must be a multiple of 64 in %d..%d",
                         g->slot_size, SHM_SLOT_MIN, SHM_SLOT_MAX);
    if (g->slot_count < 2 || g->slot_count > MAX_SLOT_COUNT ||
        (g->slot_count & (g->slot_count - 1)) != 0)
        return shm__fail(SHM_EGEOMETRY, "slot count %u: must be a power of two in 2..%u",
                         g->slot_count, MAX_SLOT_COUNT);
    if (g->max_members > MAX_MEMBERS)
        return shm__fail(SHM_EGEOMETRY, "max_members %u: at most %u", g->max_members, MAX_MEMBERS);
    if (*policy != SHM_POLICY_DROP_OLDEST && *policy != SHM_POLICY_BACKPRESSURE)
        return shm__fail(SHM_EINVAL, "overflow policy %u: expected drop-oldest (1) or backpressure (2)",
                         *policy);
    if (*warn > 100)
        return shm__fail(SHM_EINVAL, "utilization warning %u%%: at most 100", *warn);
    compute_layout(g);
    return 0;
}

static void bind_handle(shm_segment *seg, uint8_t *base, size_t size, int readonly)
{
    struct shm__header *h = (struct shm__header *)base;
    seg->base = base;
    seg->size = size;
    seg->readonly = readonly;
    seg->hdr = h;
    seg->ctr = (struct shm__counters *)(base + h->off_counters);
    seg->groups = (struct shm__group *)(base + h->off_groups);
    seg->members = (struct shm__member *)(base + h->off_members);
    seg->named = (struct shm__named *)(base + h->off_named);
    seg->catalog = (struct shm__catalog_entry *)(base + h->off_catalog);
    seg->ring = base + h->off_ring;
    seg->slot_size = h->slot_size;
    seg->slot_count = h->slot_count;
    seg->mask = (uint64_t)h->slot_count - 1;
    seg->payload = h->slot_size - SHM_SLOT_HEADER;
    seg->policy = h->policy;
    snprintf(seg->name, sizeof seg->name, "%.*s", (int)sizeof h->name, h->name);
}

/* Checks a mapped header against the object's size; the mapping must cover
 * at least SHM__HEADER_SIZE bytes. */
static int validate_header(const char *obj, const struct shm__header *h, uint64_t st_size)
{
    if (memcmp(h->magic, SHM__MAGIC, sizeof h->magic) != 0)
        return shm__fail(SHM_EFOREIGN, "%s: not a shmbus segment (bad magic)", obj);
    if (h->layout_version != SHM__LAYOUT_VERSION)
        return shm__fail(SHM_EVERSION, "%s: layout version %u, this build reads %u", obj,
                         h->layout_version, SHM__LAYOUT_VERSION);
    if (h->header_size != SHM__HEADER_SIZE)
        return shm__fail(SHM_ECORRUPT, "%s: header size %u, expected %u", obj, h->header_size,
                         SHM__HEADER_SIZE);
    struct geometry g = {.slot_size = h->slot_size,
                         .slot_count = h->slot_count,
                         .max_members = h->max_members,
                         .catalog_capacity = h->catalog_capacity,
                         .counter_capacity = h->counter_capacity};
    if (g.slot_size < SHM_SLOT_MIN || g.slot_size > SHM_SLOT_MAX || g.slot_size % 64 ||
        g.slot_count < 2 || g.slot_count > MAX_SLOT_COUNT || (g.slot_count & (g.slot_count - 1)) ||
        g.max_members > MAX_MEMBERS || h->max_groups != SHM_MAX_GROUPS ||
        h->catalog_entry_size != sizeof(struct shm__catalog_entry) ||
        h->counter_entry_size != sizeof(struct shm__named) ||
        (h->policy != SHM_POLICY_DROP_OLDEST && h->policy != SHM_POLICY_BACKPRESSURE))
        return shm__fail(SHM_ECORRUPT, "%s: header geometry is inconsistent", obj);
    compute_layout(&g);
    if (g.off_counters != h->off_counters || g.off_groups != h->off_groups ||
        g.off_members != h->off_members || g.off_named != h->off_named ||
        g.off_catalog != h->off_catalog || g.off_ring != h->off_ring || g.total != h->total_size)
        return shm__fail(SHM_ECORRUPT, "%s: region offsets do not match the header's capacities",
                         obj);
    if (st_size < h->total_size)
        return shm__fail(SHM_ETRUNCATED, "%s: %llu bytes, header says %llu", obj,
                         (unsigned long long)st_size, (unsigned long long)h->total_size);
    if (st_size > h->total_size)
        return shm__fail(SHM_ECORRUPT, "%s: %llu bytes, header says %llu", obj,
                         (unsigned long long)st_size, (unsigned long long)h->total_size);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Attaches to an existing object. Returns 0 or a code; *never_ready is set
 * when the object exists but its creator never finished initialising it. */
static int attach(const char *obj, const shm_segment_options *opts,
                  unsigned flags, shm_segment **out, int *never_ready)
{
    int readonly = (flags & SHM_OPEN_READONLY) != 0;
    *never_ready = 0;
    int fd = shm_open(obj, (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return shm__fail(SHM_ENOENT, "%s: no such segment", obj);
        if (errno == EACCES)
            return shm__fail(SHM_EPERM, "%s: permission denied", obj);
        return shm__fail(SHM_ESYS, "%s: shm_open: %s", obj, strerror(errno));
    }
    int rc;
    struct stat st;
    uint8_t *base = MAP_FAILED;
    size_t mapped = 0;
    /* A creator sizes the object right after creating it; wait briefly. */
    for (int waited = 0;; waited += 10) {
        if (fstat(fd, &st) != 0) {
            rc = shm__fail(SHM_ESYS, "%s: fstat: %s", obj, strerror(errno));
            goto fail;
        }
        if ((uint64_t)st.st_size >= SHM__HEADER_SIZE || waited >= READY_WAIT_MS)
            break;
        sleep_ms(10);
    }
    if ((uint64_t)st.st_size < SHM__HEADER_SIZE) {
        *never_ready = st.st_size == 0;
        rc = shm__fail(SHM_ETRUNCATED, "%s: %lld bytes, smaller than a segment header", obj,
                       (long long)st.st_size);
        goto fail;
    }
    mapped = (size_t)st.st_size;
    base = mmap(NULL, mapped, readonly ? PROT_READ : PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = shm__fail(SHM_ESYS, "%s: mmap: %s", obj, strerror(errno));
        goto fail;
    }
    struct shm__header *h = (struct shm__header *)base;
    /* ready (acquire) pairs with the creator's release store: once it reads
     * 1, every header field and region initialisation is visible. */
    for (int waited = 0; shm__load_acquire(&h->ready) != 1; waited += 10) {
        if (memcmp(h->magic, SHM__MAGIC, sizeof h->magic) != 0 &&
            memcmp(h->magic, "\0\0\0\0\0\0\0\0", 8) != 0) {
            rc = shm__fail(SHM_EFOREIGN, "%s: not a shmbus segment (bad magic)", obj);
            goto fail;
        }
        if (waited >= READY_WAIT_MS) {
            *never_ready = 1;
            rc = shm__fail(SHM_ECORRUPT, "%s: never finished initialising (creator died?)", obj);
            goto fail;
        }
        sleep_ms(10);
    }
    rc = validate_header(obj, h, (uint64_t)st.st_size);
    if (rc)
        goto fail;
    if (opts) {
        shm_segment_options o = *opts;
        /* Only fields the caller set are compared. */
        if ((o.slot_size && o.slot_size != h->slot_size) ||
            (o.slot_count && o.slot_count != h->slot_count) ||
            (o.policy && o.policy != h->policy) ||
            (o.max_members && o.max_members != h->max_members) ||
            (o.catalog_capacity && o.catalog_capacity != h->catalog_capacity) ||
            (o.counter_capacity && o.counter_capacity != h->counter_capacity)) {
            rc = shm__fail(SHM_EEXIST,
                           "%s exists with slot size %u, %u slots, policy %s; asked for %u, %u, %s",
                           obj, h->slot_size, h->slot_count,
                           h->policy == SHM_POLICY_BACKPRESSURE ? "backpressure" : "drop-oldest",
                           o.slot_size, o.slot_count,
                           o.policy == SHM_POLICY_BACKPRESSURE ? "backpressure" : "drop-oldest");
            goto fail;
        }
    }
    shm_segment *seg = calloc(1, sizeof *seg);
    if (!seg) {
        rc = shm__fail(SHM_ENOMEM, "out of memory");
        goto fail;
    }
    close(fd);
    bind_handle(seg, base, mapped, readonly);
    *out = seg;
    return 0;
fail:
    if (base != MAP_FAILED)
        munmap(base, mapped);
    close(fd);
    return rc;
}

static int create(const char *name, const char *obj, const struct geometry *g, uint32_t policy,
                  uint32_t mode, uint32_t warn, uint64_t min_seq, shm_segment **out)
{
    int fd = shm_open(obj, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            return SHM_EEXIST; /* caller attaches instead */
        if (errno == EACCES)
            return shm__fail(SHM_EPERM, "%s: permission denied", obj);
        return shm__fail(SHM_ESYS, "%s: shm_open: %s", obj, strerror(errno));
    }
    int rc;
    uint8_t *base = MAP_FAILED;
    if (fchmod(fd, mode) != 0) { /* the umask must not narrow the group's access */
        rc = shm__fail(SHM_ESYS, "%s: fchmod: %s", obj, strerror(errno));
        goto fail;
    }
    if (ftruncate(fd, (off_t)g->total) != 0) {
        rc = shm__fail(SHM_ESYS, "%s: ftruncate to %llu bytes: %s", obj,
                       (unsigned long long)g->total, strerror(errno));
        goto fail;
    }
    /* MAP_POPULATE: the creator faults the whole segment in now, rather
     * than its first lap of the ring paying a page fault every 4 KiB. */
    base = mmap(NULL, g->total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (base == MAP_FAILED) {
        rc = shm__fail(SHM_ESYS, "%s: mmap of %llu bytes: %s", obj, (unsigned long long)g->total,
                       strerror(errno));
        goto fail;
    }
    struct shm__header *h = (struct shm__header *)base;
    memcpy(h->magic, SHM__MAGIC, sizeof h->magic);
    h->layout_version = SHM__LAYOUT_VERSION;
    h->header_size = SHM__HEADER_SIZE;
    h->total_size = g->total;
    h->slot_size = g->slot_size;
    h->slot_count = g->slot_count;
    h->max_groups = SHM_MAX_GROUPS;
    h->max_members = g->max_members;
    h->catalog_capacity = g->catalog_capacity;
    h->catalog_entry_size = sizeof(struct shm__catalog_entry);
    h->counter_capacity = g->counter_capacity;
    h->counter_entry_size = sizeof(struct shm__named);
    h->off_counters = g->off_counters;
    h->off_groups = g->off_groups;
    h->off_members = g->off_members;
    h->off_named = g->off_named;
    h->off_catalog = g->off_catalog;
    h->off_ring = g->off_ring;
    h->policy = policy;
    h->util_warn_pct = warn;
    h->created_ns = shm__now_ns();
    h->creator_pid = (int32_t)getpid();
    h->mode = mode;
    h->creator_start_time = shm_process_start_time(h->creator_pid);
    /* Sequences start at the creation time in ns (see layout.h), and never
     * below where a replaced segment stopped. */
    uint64_t seq0 = (uint64_t)h->created_ns;
    h->initial_seq = seq0 > min_seq ? seq0 : min_seq;
    snprintf(h->name, sizeof h->name, "%s", name);
    shm__store_relaxed(&h->head, h->initial_seq);
    struct shm__group *groups = (struct shm__group *)(base + g->off_groups);
    for (uint32_t i = 0; i < SHM_MAX_GROUPS; i++)
        groups[i].index = i;
    /* Publish: everything written above happens-before any attacher's
     * acquire load of ready == 1. */
    shm__store_release(&h->ready, 1u);
    shm_segment *seg = calloc(1, sizeof *seg);
    if (!seg) {
        rc = shm__fail(SHM_ENOMEM, "out of memory");
        goto fail;
    }
    close(fd);
    bind_handle(seg, base, g->total, 0);
    *out = seg;
    return 0;
fail:
    if (base != MAP_FAILED)
        munmap(base, g->total);
    close(fd);
    shm_unlink(obj);
    return rc;
}

/* Live members of an attached segment (for reset decisions). */
static int count_live_members(const shm_segment *seg)
{
    int live = 0;
    uint32_t used = shm__load_acquire(&seg->hdr->members_used);
    for (uint32_t i = 0; i < used && i < seg->hdr->max_members; i++) {
        const struct shm__member *m = &seg->members[i];
        if (SHM__MEMBER_KIND(shm__load_acquire(&m->state)) == SHM_MEMBER_ACTIVE &&
            shm__member_alive(m))
            live++;
    }
    return live;
}

int shm_segment_open(const char *name, const shm_segment_options *opts, unsigned flags,
                     shm_segment **out)
{
    char obj[64];
    int rc;
    if (!out)
        return shm__fail(SHM_EINVAL, "shm_segment_open: out is NULL");
    *out = NULL;
    if ((rc = object_name(name, obj, sizeof obj)) != 0)
        return rc;
    if ((flags & SHM_OPEN_READONLY) && (flags & (SHM_OPEN_CREATE | SHM_OPEN_RESET)))
        return shm__fail(SHM_EINVAL, "%s: read-only open cannot create or reset", obj);
    if ((flags & SHM_OPEN_RESET) && !(flags & SHM_OPEN_CREATE))
        return shm__fail(SHM_EINVAL, "%s: reset needs SHM_OPEN_CREATE", obj);

    struct geometry g = {0};
    uint32_t policy = 0, mode = 0, warn = 0;
    if (flags & SHM_OPEN_CREATE) {
        if ((rc = geometry_from_options(opts, &g, &policy, &mode, &warn)) != 0)
            return rc;
    }
    uint64_t min_seq = 0;
    int never_ready = 0;
    if (flags & SHM_OPEN_RESET) {
        shm_segment *old = NULL;
        rc = attach(obj, NULL, 0, &old, &never_ready);
        if (rc == 0) {
            int live = count_live_members(old);
            min_seq = shm__load_acquire(&old->hdr->head);
            shm_segment_close(&old);
            if (live > 0 && !(flags & SHM_OPEN_FORCE))
                return shm__fail(SHM_EBUSY, "%s: %d live member(s); stop them or force the reset",
                                 obj, live);
        }
        if (rc != SHM_ENOENT)
            shm_unlink(obj); /* a foreign, truncated or stale object is replaced on request */
    }
    for (int attempt = 0; attempt < 3; attempt++) {
        if (flags & SHM_OPEN_CREATE) {
            rc = create(name, obj, &g, policy, mode, warn, min_seq, out);
            if (rc != SHM_EEXIST)
                return rc;
        }
        rc = attach(obj, (flags & SHM_OPEN_CREATE) ? opts : NULL, flags, out, &never_ready);
        if (rc == 0) {
            if (!(flags & SHM_OPEN_READONLY))
                shm_reclaim(*out, NULL); /* continue after dead members */
            return 0;
        }
        if (rc == SHM_ENOENT && (flags & SHM_OPEN_CREATE))
            continue; /* removed between our create and attach: try again */
        if (never_ready && (flags & SHM_OPEN_CREATE)) {
            shm_unlink(obj); /* a creator died half-way; nobody can have used it */
            continue;
        }
        return rc;
    }
    return rc;
}

void shm_segment_close(shm_segment **segp)
{
    if (!segp || !*segp)
        return;
    shm_segment *seg = *segp;
    munmap(seg->base, seg->size);
    free(seg);
    *segp = NULL;
}

int shm_segment_unlink(const char *name)
{
    char obj[64];
    int rc = object_name(name, obj, sizeof obj);
    if (rc)
        return rc;
    if (shm_unlink(obj) != 0) {
        if (errno == ENOENT)
            return shm__fail(SHM_ENOENT, "%s: no such segment", obj);
        return shm__fail(SHM_ESYS, "%s: shm_unlink: %s", obj, strerror(errno));
    }
    return 0;
}

int shm_segment_info_get(const shm_segment *seg, shm_segment_info *out)
{
    if (!seg || !out)
        return shm__fail(SHM_EINVAL, "shm_segment_info_get: NULL argument");
    const struct shm__header *h = seg->hdr;
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", seg->name);
    out->layout_version = h->layout_version;
    out->slot_size = h->slot_size;
    out->slot_payload = seg->payload;
    out->slot_count = h->slot_count;
    out->policy = h->policy;
    out->max_members = h->max_members;
    out->catalog_capacity = h->catalog_capacity;
    out->counter_capacity = h->counter_capacity;
    out->util_warn_pct = h->util_warn_pct;
    out->total_bytes = h->total_size;
    out->created_ns = h->created_ns;
    out->creator_pid = h->creator_pid;
    out->initial_seq = h->initial_seq;
    out->readonly = seg->readonly;
    return 0;
}

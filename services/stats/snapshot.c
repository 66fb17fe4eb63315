/*
 * snapshot.c — write and read the stats snapshot (format in snapshot.h).
 */
#include "snapshot.h"

#include "crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_POINTS (1u << 28) /* per tag and part; a sanity bound for readers */

static void set_err(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t len, const char *fmt, ...)
{
    if (!err || !len)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static int64_t realtime_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------- encoding */

static void le_put(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t le_get(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static uint64_t f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_f64(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* ---------------------------------------------------------------- writer */

typedef struct writer {
    int fd;
    int error; /* first -errno */
    uint64_t body_len;
    uint32_t crc;
    size_t len;
    uint8_t buf[1 << 16];
} writer;

static void w_flush(writer *w)
{
    size_t off = 0;
    while (off < w->len && !w->error) {
        ssize_t n = write(w->fd, w->buf + off, w->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            w->error = n < 0 ? -errno : -EIO;
        else
            off += (size_t)n;
    }
    w->len = 0;
}

static void w_bytes(writer *w, const void *p, size_t n)
{
    w->crc = stats_crc32c(w->crc, p, n);
    w->body_len += n;
    const uint8_t *b = p;
    while (n > 0) {
        if (w->len == sizeof w->buf)
            w_flush(w);
        size_t k = sizeof w->buf - w->len < n ? sizeof w->buf - w->len : n;
        memcpy(w->buf + w->len, b, k);
        w->len += k;
        b += k;
        n -= k;
    }
}

static void w_int(writer *w, uint64_t v, int bytes)
{
    uint8_t b[8];
    le_put(b, v, bytes);
    w_bytes(w, b, (size_t)bytes);
}

static void w_point(writer *w, stat_point p)
{
    uint8_t b[16];
    le_put(b, (uint64_t)p.t_ns, 8);
    le_put(b + 8, f64_bits(p.v), 8);
    w_bytes(w, b, sizeof b);
}

static void write_tag(writer *w, tag_state *t)
{
    size_t name_len = strlen(t->name);
    w_int(w, t->id, 4);
    w_int(w, name_len, 2);
    w_bytes(w, t->name, name_len);
    uint8_t flags[4] = {(uint8_t)t->has_meta, t->data_type, (uint8_t)t->mode, 0};
    w_bytes(w, flags, sizeof flags);
    w_int(w, t->roll.next + t->roll.added_base, 8);
    w_int(w, t->roll.excluded_nonfinite, 8);
    w_int(w, t->roll.excluded_quality, 8);
    w_int(w, t->roll.count, 4);
    for (uint32_t i = 0; i < t->roll.count; i++)
        w_point(w, rolling_at(&t->roll, i));
    const timebuf *h = &t->hist;
    w_int(w, (uint64_t)h->compacted_until_ns, 8);
    const uint64_t counters[7] = {h->appended, h->inserted,    h->replaced,        h->too_old,
                                  h->purged,   h->compactions, h->downsampled_away};
    for (int i = 0; i < 7; i++)
        w_int(w, counters[i], 8);
    w_int(w, h->count, 4);
    for (uint32_t i = 0; i < h->count; i++)
        w_point(w, timebuf_at(h, i));
}

static void build_header(uint8_t *hdr, const tagstore *s, const snapshot_identity *id,
                         uint64_t body_len, uint32_t body_crc)
{
    memset(hdr, 0, SNAPSHOT_HEADER_LEN);
    memcpy(hdr, SNAPSHOT_MAGIC, 8);
    le_put(hdr + 8, SNAPSHOT_VERSION, 4);
    le_put(hdr + 12, SNAPSHOT_HEADER_LEN, 4);
    le_put(hdr + 16, body_len, 8);
    le_put(hdr + 24, body_crc, 4);
    le_put(hdr + 28, s->n_tags, 4);
    le_put(hdr + 32, (uint64_t)realtime_ns(), 8);
    le_put(hdr + 40, (uint64_t)id->segment_created_ns, 8);
    le_put(hdr + 48, id->segment_initial_seq, 8);
    le_put(hdr + 56, id->next_seq, 8);
    le_put(hdr + 64, id->shard_k, 4);
    le_put(hdr + 68, id->shard_n, 4);
    memcpy(hdr + 72, id->segment, strnlen(id->segment, 31)); /* NUL-padded by memset */
    le_put(hdr + 108, stats_crc32c(0, hdr, 108), 4);
}

static int fsync_dir_of(const char *path)
{
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    int rc = fsync(dfd) == 0 ? 0 : -errno;
    close(dfd);
    return rc;
}

int snapshot_write(const char *path, const tagstore *s, const snapshot_identity *id,
                   uint64_t *bytes, char *err, size_t err_len)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
        set_err(err, err_len, "snapshot path too long: %s", path);
        return -ENAMETOOLONG;
    }
    writer *w = malloc(sizeof *w);
    if (!w) {
        set_err(err, err_len, "out of memory");
        return -ENOMEM;
    }
    w->error = 0;
    w->body_len = 0;
    w->crc = 0;
    w->len = 0;
    int rc;
    w->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (w->fd < 0) {
        rc = -errno;
        set_err(err, err_len, "create %s: %s", tmp, strerror(-rc));
        goto out_free;
    }
    /* Body after a placeholder header; the header goes in last, with the
     * body's length and CRC. */
    if (lseek(w->fd, SNAPSHOT_HEADER_LEN, SEEK_SET) < 0) {
        rc = -errno;
        set_err(err, err_len, "seek %s: %s", tmp, strerror(-rc));
        goto out_close;
    }
    for (uint32_t i = 0; i < s->n_tags && !w->error; i++)
        write_tag(w, tagstore_at(s, i));
    w_flush(w);
    if (w->error) {
        rc = w->error;
        set_err(err, err_len, "write %s: %s", tmp, strerror(-rc));
        goto out_close;
    }
    uint8_t hdr[SNAPSHOT_HEADER_LEN];
    build_header(hdr, s, id, w->body_len, w->crc);
    if (pwrite(w->fd, hdr, sizeof hdr, 0) != (ssize_t)sizeof hdr) {
        rc = errno ? -errno : -EIO;
        set_err(err, err_len, "write header of %s: %s", tmp, strerror(-rc));
        goto out_close;
    }
    if (fsync(w->fd) != 0) {
        rc = -errno;
        set_err(err, err_len, "fsync %s: %s", tmp, strerror(-rc));
        goto out_close;
    }
    if (close(w->fd) != 0) {
        w->fd = -1;
        rc = -errno;
        set_err(err, err_len, "close %s: %s", tmp, strerror(-rc));
        goto out_unlink;
    }
    w->fd = -1;
    if (rename(tmp, path) != 0) {
        rc = -errno;
        set_err(err, err_len, "rename %s to %s: %s", tmp, path, strerror(-rc));
        goto out_unlink;
    }
    rc = fsync_dir_of(path);
    if (rc) {
        set_err(err, err_len, "fsync directory of %s: %s", path, strerror(-rc));
        goto out_free;
    }
    if (bytes)
        *bytes = SNAPSHOT_HEADER_LEN + w->body_len;
    free(w);
    return 0;

out_close:
    close(w->fd);
out_unlink:
    unlink(tmp);
out_free:
    free(w);
    return rc;
}

/* ---------------------------------------------------------------- reader */

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
    int short_read;
} reader;

static uint64_t r_int(reader *r, int bytes)
{
    if (r->len - r->pos < (size_t)bytes) {
        r->short_read = 1;
        r->pos = r->len;
        return 0;
    }
    uint64_t v = le_get(r->p + r->pos, bytes);
    r->pos += (size_t)bytes;
    return v;
}

static int r_point(reader *r, stat_point *out)
{
    out->t_ns = (int64_t)r_int(r, 8);
    out->v = bits_f64(r_int(r, 8));
    return !r->short_read && isfinite(out->v);
}

/* Reads one tag into s; returns 0 or -EBADMSG with err set. */
static int read_tag(reader *r, tagstore *s, char *err, size_t err_len)
{
    size_t at = r->pos;
    uint32_t id = (uint32_t)r_int(r, 4);
    uint32_t name_len = (uint32_t)r_int(r, 2);
    char name[TAG_NAME_MAX + 1];
    if (r->short_read || name_len > TAG_NAME_MAX || r->len - r->pos < name_len) {
        set_err(err, err_len, "tag at body offset %zu: bad name length %u", at, name_len);
        return -EBADMSG;
    }
    memcpy(name, r->p + r->pos, name_len);
    name[name_len] = '\0';
    r->pos += name_len;
    if (memchr(name, '\0', name_len)) {
        set_err(err, err_len, "tag %u: name contains NUL", id);
        return -EBADMSG;
    }
    uint8_t has_meta = (uint8_t)r_int(r, 1), data_type = (uint8_t)r_int(r, 1);
    uint8_t mode = (uint8_t)r_int(r, 1);
    (void)r_int(r, 1);
    uint64_t added = r_int(r, 8), nonfinite = r_int(r, 8), quality = r_int(r, 8);
    uint32_t n = (uint32_t)r_int(r, 4);
    if (r->short_read || has_meta > 1 || mode > 1 || n > MAX_POINTS || (r->len - r->pos) / 16 < n) {
        set_err(err, err_len, "tag %u: bad header (meta %u, mode %u, %u window values)", id,
                has_meta, mode, n);
        return -EBADMSG;
    }
    tag_state *t;
    if (id >= s->p.max_tags || s->by_id[id] || !tagstore_owns(s, id)) {
        set_err(err, err_len, "tag %u: %s", id,
                id >= s->p.max_tags ? "id beyond the catalog capacity"
                : s->by_id[id]      ? "appears twice"
                                    : "belongs to another shard");
        return -EBADMSG;
    }
    int rc = tagstore_ensure(s, id, &t);
    if (rc) {
        set_err(err, err_len, "tag %u: %s", id, strerror(-rc));
        return rc == -ENOMEM ? -ENOMEM : -EBADMSG;
    }
    if (has_meta)
        tagstore_set_meta(s, t, name, data_type); /* mode from today's settings */
    else
        t->mode = mode;
    /* If the window shrank, the newest values are the ones to keep. */
    uint32_t skip = n > t->roll.window ? n - t->roll.window : 0;
    for (uint32_t i = 0; i < n; i++) {
        stat_point p;
        if (!r_point(r, &p)) {
            set_err(err, err_len, "tag %u: window value %u is %s", id, i,
                    r->short_read ? "cut off" : "not finite");
            return -EBADMSG;
        }
        if (i >= skip)
            rolling_add(&t->roll, p.t_ns, p.v);
    }
    rolling_restore_counts(&t->roll, added, nonfinite, quality);

    int64_t compacted_until = (int64_t)r_int(r, 8);
    uint64_t c[7];
    for (int i = 0; i < 7; i++)
        c[i] = r_int(r, 8);
    uint32_t m = (uint32_t)r_int(r, 4);
    if (r->short_read || m > MAX_POINTS || (r->len - r->pos) / 16 < m) {
        set_err(err, err_len, "tag %u: bad history length %u", id, m);
        return -EBADMSG;
    }
    for (uint32_t i = 0; i < m; i++) {
        stat_point p;
        if (!r_point(r, &p)) {
            set_err(err, err_len, "tag %u: history point %u is %s", id, i,
                    r->short_read ? "cut off" : "not finite");
            return -EBADMSG;
        }
        timebuf_insert(&t->hist, p.t_ns, p.v);
    }
    timebuf *h = &t->hist;
    h->compacted_until_ns = compacted_until;
    h->appended = c[0];
    h->inserted = c[1];
    h->replaced = c[2];
    h->too_old = c[3];
    h->purged = c[4];
    h->compactions = c[5];
    h->downsampled_away = c[6];
    return 0;
}

static int check_header(const uint8_t *hdr, size_t file_len, const snapshot_identity *expect,
                        snapshot_identity *found, uint64_t *body_len, uint32_t *body_crc, char *err,
                        size_t err_len)
{
    size_t magic_len = file_len < 8 ? file_len : 8;
    if (memcmp(hdr, SNAPSHOT_MAGIC, magic_len) != 0) {
        set_err(err, err_len, "not a stats snapshot (bad magic)");
        return -EILSEQ;
    }
    if (file_len < SNAPSHOT_HEADER_LEN) {
        set_err(err, err_len, "%zu bytes, shorter than the %d-byte header (truncated)", file_len,
                SNAPSHOT_HEADER_LEN);
        return -EBADMSG;
    }
    uint32_t version = (uint32_t)le_get(hdr + 8, 4);
    if (version != SNAPSHOT_VERSION) {
        set_err(err, err_len, "snapshot version %u, this build reads %d", version,
                SNAPSHOT_VERSION);
        return -EILSEQ;
    }
    if (le_get(hdr + 108, 4) != stats_crc32c(0, hdr, 108) ||
        le_get(hdr + 12, 4) != SNAPSHOT_HEADER_LEN) {
        set_err(err, err_len, "header checksum mismatch");
        return -EBADMSG;
    }
    memset(found, 0, sizeof *found);
    memcpy(found->segment, hdr + 72, 31);
    found->shard_k = (uint32_t)le_get(hdr + 64, 4);
    found->shard_n = (uint32_t)le_get(hdr + 68, 4);
    found->written_ns = (int64_t)le_get(hdr + 32, 8);
    found->segment_created_ns = (int64_t)le_get(hdr + 40, 8);
    found->segment_initial_seq = le_get(hdr + 48, 8);
    found->next_seq = le_get(hdr + 56, 8);
    found->tags = (uint32_t)le_get(hdr + 28, 4);
    if (strcmp(found->segment, expect->segment) != 0 || found->shard_k != expect->shard_k ||
        found->shard_n != expect->shard_n) {
        set_err(err, err_len, "snapshot of segment '%s' shard %u/%u, expected '%s' shard %u/%u",
                found->segment, found->shard_k, found->shard_n, expect->segment, expect->shard_k,
                expect->shard_n);
        return -EILSEQ;
    }
    *body_len = le_get(hdr + 16, 8);
    *body_crc = (uint32_t)le_get(hdr + 24, 4);
    if (*body_len != file_len - SNAPSHOT_HEADER_LEN) {
        set_err(err, err_len, "body is %zu bytes, header says %llu (truncated or extended)",
                file_len - SNAPSHOT_HEADER_LEN, (unsigned long long)*body_len);
        return -EBADMSG;
    }
    return 0;
}

int snapshot_read(const char *path, tagstore *into, const snapshot_identity *expect,
                  snapshot_identity *found, char *err, size_t err_len)
{
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        set_err(err, err_len, "open %s: %s", path, strerror(-rc));
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        set_err(err, err_len, "stat %s: %s", path, strerror(-rc));
        goto out_close;
    }
    size_t len = (size_t)st.st_size;
    if (len == 0) {
        set_err(err, err_len, "empty file");
        rc = -EBADMSG;
        goto out_close;
    }
    const uint8_t *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = -errno;
        set_err(err, err_len, "mmap %s: %s", path, strerror(-rc));
        goto out_close;
    }
    uint8_t hdr[SNAPSHOT_HEADER_LEN] = {0};
    memcpy(hdr, map, len < sizeof hdr ? len : sizeof hdr);
    uint64_t body_len;
    uint32_t body_crc;
    rc = check_header(hdr, len, expect, found, &body_len, &body_crc, err, err_len);
    if (rc)
        goto out_unmap;
    if (stats_crc32c(0, map + SNAPSHOT_HEADER_LEN, body_len) != body_crc) {
        set_err(err, err_len, "body checksum mismatch");
        rc = -EBADMSG;
        goto out_unmap;
    }
    reader r = {.p = map + SNAPSHOT_HEADER_LEN, .len = body_len};
    /* Plan for the saved tags at once rather than growing tag by tag. */
    char why[64];
    snprintf(why, sizeof why, "the snapshot holds %u tags", found->tags);
    tagstore_plan_for(into, found->tags, why); /* nothing to resize yet */
    for (uint32_t i = 0; i < found->tags; i++) {
        rc = read_tag(&r, into, err, err_len);
        if (rc)
            goto out_unmap;
    }
    if (r.pos != r.len) {
        set_err(err, err_len, "%zu bytes after the last tag", r.len - r.pos);
        rc = -EBADMSG;
    }
out_unmap:
    munmap((void *)map, len);
out_close:
    close(fd);
    return rc;
}

int snapshot_move_aside(const char *path, char *moved_to, size_t len)
{
    char target[PATH_MAX];
    snprintf(target, sizeof target, "%s.bad-%lld", path, (long long)realtime_ns());
    if (rename(path, target) != 0)
        return -errno;
    if (moved_to && len)
        snprintf(moved_to, len, "%s", target);
    fsync_dir_of(path);
    return 0;
}

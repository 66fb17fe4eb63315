/*
 * spool.c — the export's local spool: what a member took off a drop-oldest
 * ring while its target was away, kept on disk until the target confirms it.
 *
 * File layout (host byte order; the header records the order and sizes):
 *
 *   header  64 bytes: magic "SHMBSPL1", version, header and row sizes,
 *           byte-order mark, read_offset, creation time, CRC32C of the rest
 *   block   24-byte head {magic "SBLK", count, first_seq, crc32c} followed
 *           by count export_rows; the CRC covers count, first_seq and rows
 *   block ...
 *
 * Rules:
 *  - append writes one whole block and fdatasyncs before returning; only
 *    then may the caller acknowledge the ring batch. A crash mid-append
 *    leaves a torn tail whose records were never acknowledged (the ring
 *    re-delivers them): open truncates the file at the first block that
 *    fails its checks and never looks past it.
 *  - read_offset (in the header) is advanced only after the target
 *    confirmed the blocks before it; the header is rewritten in place (one
 *    64-byte pwrite, within one sector) and fdatasynced. A crash before
 *    that replays the blocks again: the targets tolerate repeats (ON
 *    CONFLICT in PostgreSQL, at-least-once in MQTT).
 *  - when everything is delivered the file is truncated to its header
 *    (then the header is rewritten; a read offset past the end means all
 *    was delivered);
 *    when a long delivered prefix piles up under steady inflow, the pending
 *    tail is copied to a new file that atomically replaces the old one.
 *  - the file is flock()ed while open: one process per spool, and other
 *    members may adopt a spool whose owner is gone.
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPOOL_MAGIC "SHMBSPL1"
#define SPOOL_VERSION 1
#define SPOOL_BLOCK_MAGIC 0x4B4C4253u /* "SBLK" */
#define SPOOL_BYTE_ORDER 0x01020304u
#define SPOOL_MAX_BLOCK_ROWS (1u << 22)
#define SPOOL_COMPACT_BYTES (64u << 20) /* delivered prefix that triggers a rewrite */

typedef struct spool_header {
    char magic[8];
    uint32_t version;
    uint32_t header_len;
    uint32_t row_size;
    uint32_t byte_order;
    uint64_t read_offset;
    int64_t created_ns;
    uint8_t reserved[20];
    uint32_t crc; /* CRC32C of the 60 bytes before it */
} spool_header;
_Static_assert(sizeof(spool_header) == 64, "spool header is 64 bytes");
_Static_assert(offsetof(spool_header, crc) == 60, "CRC closes the header");

typedef struct spool_block {
    uint32_t magic;
    uint32_t count;
    uint64_t first_seq;
    uint32_t crc; /* CRC32C of count, first_seq and the rows */
    uint32_t reserved;
} spool_block;
_Static_assert(sizeof(spool_block) == 24, "spool block head is 24 bytes");

struct export_spool {
    int fd;
    char *path;
    spool_header hdr;
    uint64_t end;       /* file size: where the next block goes */
    uint64_t peek_end;  /* end of what the last peek returned */
};

static uint32_t header_crc(const spool_header *h)
{
    return export_crc32c(0, h, offsetof(spool_header, crc));
}

static uint32_t block_crc(const spool_block *b, const export_row *rows)
{
    uint32_t c = export_crc32c(0, &b->count, sizeof b->count);
    c = export_crc32c(c, &b->first_seq, sizeof b->first_seq);
    return export_crc32c(c, rows, (size_t)b->count * sizeof(export_row));
}

static int pwrite_all(int fd, const void *buf, size_t len, uint64_t off)
{
    const char *p = buf;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Returns bytes read (short at end of file) or -errno. */
static ssize_t pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    char *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = pread(fd, p + got, len - got, (off_t)(off + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static int fsync_dir_of(const char *path)
{
    char *copy = strdup(path);
    if (!copy)
        return -ENOMEM;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(copy);
    if (fd < 0)
        return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int write_header(export_spool *s)
{
    s->hdr.crc = header_crc(&s->hdr);
    int rc = pwrite_all(s->fd, &s->hdr, sizeof s->hdr, 0);
    if (rc == 0 && fdatasync(s->fd) < 0)
        rc = -errno;
    return rc;
}

static void init_header(spool_header *h)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, SPOOL_MAGIC, 8);
    h->version = SPOOL_VERSION;
    h->header_len = sizeof *h;
    h->row_size = sizeof(export_row);
    h->byte_order = SPOOL_BYTE_ORDER;
    h->read_offset = sizeof *h;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    h->created_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Checks the block at off: 1 valid (fills *b, rows are read into *scratch
 * when given), 0 not a whole valid block, or -errno. */
static int check_block(export_spool *s, uint64_t off, spool_block *b, export_row **scratch,
                       size_t *scratch_cap)
{
    ssize_t n = pread_all(s->fd, b, sizeof *b, off);
    if (n < 0)
        return (int)n;
    if ((size_t)n < sizeof *b || b->magic != SPOOL_BLOCK_MAGIC || b->count == 0 ||
        b->count > SPOOL_MAX_BLOCK_ROWS)
        return 0;
    size_t bytes = (size_t)b->count * sizeof(export_row);
    if (off + sizeof *b + bytes > s->end)
        return 0;
    if (*scratch_cap < b->count) {
        export_row *p = realloc(*scratch, bytes);
        if (!p)
            return -ENOMEM;
        *scratch = p;
        *scratch_cap = b->count;
    }
    n = pread_all(s->fd, *scratch, bytes, off + sizeof *b);
    if (n < 0)
        return (int)n;
    if ((size_t)n < bytes || block_crc(b, *scratch) != b->crc)
        return 0;
    return 1;
}

/* Walks the blocks from read_offset; truncates at the first that fails. */
static int recover(export_spool *s, char *reason, size_t len)
{
    export_row *scratch = NULL;
    size_t cap = 0;
    uint64_t off = s->hdr.read_offset;
    int rc = 0;
    while (off < s->end) {
        spool_block b;
        /* rc: 1 valid block, 0 damaged (truncate here), <0 I/O error */
        rc = check_block(s, off, &b, &scratch, &cap);
        if (rc < 0)
            break;
        if (rc == 0) {
            snprintf(reason, len, "spool %s: torn or damaged tail at byte %llu: %llu bytes dropped",
                     s->path, (unsigned long long)off, (unsigned long long)(s->end - off));
            if (ftruncate(s->fd, (off_t)off) < 0 || fdatasync(s->fd) < 0) {
                rc = -errno;
                break;
            }
            s->end = off;
            rc = 1; /* recovered with a loss report */
            break;
        }
        rc = 0;
        off += sizeof b + (uint64_t)b.count * sizeof(export_row);
    }
    free(scratch);
    return rc;
}

int export_spool_open(const char *path, export_spool **out, char *reason, size_t len)
{
    *out = NULL;
    reason[0] = '\0';
    export_spool *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return -ENOMEM;
    }
    int rc = 0;
    s->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->fd < 0) {
        rc = -errno;
        snprintf(reason, len, "spool %s: %s", path, strerror(errno));
        goto fail_free;
    }
    if (flock(s->fd, LOCK_EX | LOCK_NB) < 0) {
        rc = -errno;
        snprintf(reason, len, "spool %s: held by another process", path);
        goto fail_close;
    }
    struct stat st;
    if (fstat(s->fd, &st) < 0) {
        rc = -errno;
        snprintf(reason, len, "spool %s: %s", path, strerror(errno));
        goto fail_close;
    }
    s->end = (uint64_t)st.st_size;
    if (s->end < sizeof(spool_header)) {
        /* New, or created and never completed: start it afresh. */
        init_header(&s->hdr);
        rc = ftruncate(s->fd, 0) < 0 ? -errno : 0;
        if (rc == 0)
            rc = write_header(s);
        if (rc == 0)
            rc = fsync_dir_of(path);
        if (rc < 0) {
            snprintf(reason, len, "spool %s: cannot initialise: %s", path, strerror(-rc));
            goto fail_close;
        }
        s->end = sizeof s->hdr;
    } else {
        ssize_t n = pread_all(s->fd, &s->hdr, sizeof s->hdr, 0);
        if (n < 0) {
            rc = (int)n;
            snprintf(reason, len, "spool %s: %s", path, strerror(-rc));
            goto fail_close;
        }
        if (memcmp(s->hdr.magic, SPOOL_MAGIC, 8) != 0 || s->hdr.version != SPOOL_VERSION ||
            s->hdr.header_len != sizeof s->hdr || s->hdr.row_size != sizeof(export_row) ||
            s->hdr.byte_order != SPOOL_BYTE_ORDER || header_crc(&s->hdr) != s->hdr.crc ||
            s->hdr.read_offset < sizeof s->hdr) {
            rc = EXPORT_ECORRUPT;
            snprintf(reason, len,
                     "spool %s: not a shmbus spool of this version and machine, or its header "
                     "failed its checksum; move it away to start a new one",
                     path);
            goto fail_close;
        }
        /* A read offset past the end is what a crash between the two steps
         * of emptying the file leaves (see export_spool_consume): all of it
         * was delivered. */
        if (s->hdr.read_offset > s->end)
            s->hdr.read_offset = s->end;
        rc = recover(s, reason, len);
        if (rc < 0) {
            snprintf(reason, len, "spool %s: %s", path, strerror(-rc));
            goto fail_close;
        }
    }
    s->peek_end = s->hdr.read_offset;
    *out = s;
    return 0;
fail_close:
    close(s->fd);
fail_free:
    free(s->path);
    free(s);
    return rc;
}

void export_spool_close(export_spool **sp)
{
    if (!sp || !*sp)
        return;
    close((*sp)->fd); /* releases the flock */
    free((*sp)->path);
    free(*sp);
    *sp = NULL;
}

int export_spool_append(export_spool *s, const export_row *rows, size_t n, uint64_t max_bytes)
{
    if (n == 0)
        return 0;
    if (n > SPOOL_MAX_BLOCK_ROWS)
        return -EINVAL;
    size_t bytes = sizeof(spool_block) + n * sizeof(export_row);
    if (export_spool_pending_bytes(s) + bytes > max_bytes)
        return -ENOSPC;
    char *buf = malloc(bytes);
    if (!buf)
        return -ENOMEM;
    spool_block b = {.magic = SPOOL_BLOCK_MAGIC, .count = (uint32_t)n, .first_seq = rows[0].seq};
    memcpy(buf + sizeof b, rows, n * sizeof(export_row));
    b.crc = block_crc(&b, (const export_row *)(buf + sizeof b));
    memcpy(buf, &b, sizeof b);
    int rc = pwrite_all(s->fd, buf, bytes, s->end);
    free(buf);
    if (rc == 0 && fdatasync(s->fd) < 0)
        rc = -errno;
    if (rc < 0) {
        /* Leave no half block behind; a crash here is handled by recover(). */
        if (ftruncate(s->fd, (off_t)s->end) == 0)
            (void)fdatasync(s->fd);
        return rc;
    }
    s->end += bytes;
    return 0;
}

int export_spool_peek(export_spool *s, export_batch *b, size_t max_rows)
{
    b->n = 0;
    b->may_repeat = true; /* a replay may follow a delivery whose offset update was lost */
    uint64_t off = s->hdr.read_offset;
    while (off < s->end) {
        spool_block blk;
        ssize_t n = pread_all(s->fd, &blk, sizeof blk, off);
        if (n < 0)
            return (int)n;
        if ((size_t)n < sizeof blk || blk.magic != SPOOL_BLOCK_MAGIC || blk.count == 0 ||
            blk.count > SPOOL_MAX_BLOCK_ROWS)
            return EXPORT_ECORRUPT;
        if (b->n > 0 && b->n + blk.count > max_rows)
            break;
        if (export_batch_reserve(b, blk.count) != 0)
            return EXPORT_ENOMEM;
        size_t bytes = (size_t)blk.count * sizeof(export_row);
        n = pread_all(s->fd, b->rows + b->n, bytes, off + sizeof blk);
        if (n < 0)
            return (int)n;
        if ((size_t)n < bytes || block_crc(&blk, b->rows + b->n) != blk.crc)
            return EXPORT_ECORRUPT;
        b->n += blk.count;
        off += sizeof blk + bytes;
    }
    s->peek_end = off;
    return (int)b->n;
}

/* Copies the pending tail into a fresh file that replaces this one. */
static int compact(export_spool *s)
{
    size_t plen = strlen(s->path) + 5;
    char *tmp = malloc(plen);
    if (!tmp)
        return -ENOMEM;
    snprintf(tmp, plen, "%s.tmp", s->path);
    int rc = 0;
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        rc = -errno;
        goto out_close;
    }
    spool_header h = s->hdr;
    h.read_offset = sizeof h;
    h.crc = header_crc(&h);
    if ((rc = pwrite_all(fd, &h, sizeof h, 0)) < 0)
        goto out_close;
    char buf[1 << 16];
    uint64_t src = s->hdr.read_offset, dst = sizeof h;
    while (src < s->end) {
        size_t want = s->end - src < sizeof buf ? (size_t)(s->end - src) : sizeof buf;
        ssize_t n = pread_all(s->fd, buf, want, src);
        if (n <= 0) {
            rc = n < 0 ? (int)n : -EIO;
            goto out_close;
        }
        if ((rc = pwrite_all(fd, buf, (size_t)n, dst)) < 0)
            goto out_close;
        src += (uint64_t)n;
        dst += (uint64_t)n;
    }
    if (fdatasync(fd) < 0 || rename(tmp, s->path) < 0) {
        rc = -errno;
        goto out_close;
    }
    (void)fsync_dir_of(s->path);
    close(s->fd);
    s->fd = fd;
    s->hdr = h;
    s->end = dst;
    s->peek_end = h.read_offset;
    fd = -1;
out_close:
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
out:
    free(tmp);
    return rc;
}

int export_spool_consume(export_spool *s)
{
    if (s->peek_end <= s->hdr.read_offset)
        return 0;
    s->hdr.read_offset = s->peek_end;
    if (s->hdr.read_offset >= s->end) {
        /* All delivered: back to an empty file. Truncate first: a crash
         * before the header is rewritten leaves a read offset past the end,
         * which open reads as "all delivered". */
        if (ftruncate(s->fd, (off_t)sizeof s->hdr) < 0)
            return -errno;
        s->end = sizeof s->hdr;
        s->hdr.read_offset = sizeof s->hdr;
        s->peek_end = s->hdr.read_offset;
        return write_header(s);
    }
    int rc = write_header(s);
    if (rc < 0)
        return rc;
    if (s->hdr.read_offset >= SPOOL_COMPACT_BYTES)
        return compact(s);
    return 0;
}

uint64_t export_spool_pending_bytes(const export_spool *s)
{
    return s->end - s->hdr.read_offset;
}

const char *export_spool_path(const export_spool *s)
{
    return s->path;
}

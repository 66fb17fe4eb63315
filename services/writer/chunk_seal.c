/*
 * chunk_seal.c — sealing: turning an unsealed chunk into an immutable one
 * with an index and a footer.
 *
 * Blocks written for durability are as small as a group commit: at low
 * rates a few points per tag, where per-column headers would dominate. So
 * a chunk of small blocks is rewritten: its points are decoded in file
 * order and re-encoded in windows of up to 8192 points per tag, one block
 * per group of tags sharing timestamps (a query then reads and checks only
 * its own group's blocks). A chunk of large blocks keeps them and gets its
 * index and footer appended in place.
 *
 * Crash safety, step by step: a rewrite goes to <writer>.<no>.tmp (removed
 * and redone if we die), is fsynced, atomically renamed to .chunk, and the
 * directory fsynced; only then is the .open file removed (a restart that
 * finds both drops the .open). An in-place seal appends index and footer,
 * fsyncs and renames; a restart that finds them in an .open file finishes
 * the rename.
 */
#include "chunk_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMPACT_WINDOW_POINTS 8192u      /* per tag per output block */
#define COMPACT_BUILDER_POINTS 2000000u  /* all tags, bounds memory */
#define COMPACT_WHEN_AVG_BELOW 1024u     /* points per column per block */
#define OUT_BUFFER (1u << 20)

static int sys_fail(int e, const char *what, const char *name)
{
    return chunk__fail(chunk_errno_code(e), "%s %s: %s", what, name, strerror(e));
}

static int write_all(int fd, const char *name, const uint8_t *p, size_t len, uint64_t off)
{
    while (len) {
        ssize_t w = pwrite(fd, p, len, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return sys_fail(errno, "write", name);
        }
        if (w == 0)
            return sys_fail(ENOSPC, "write", name);
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* The output side of a rewrite: buffered appends plus the index. */
struct out_file {
    int fd;
    const char *name;
    uint64_t off; /* file offset of buf[0] */
    uint8_t *buf;
    size_t len;
    chunk_index index;
    chunk_footer footer;
};

static int out_flush(struct out_file *o)
{
    int rc = write_all(o->fd, o->name, o->buf, o->len, o->off);
    o->off += o->len;
    o->len = 0;
    return rc;
}

static int out_append(struct out_file *o, const uint8_t *p, size_t len)
{
    if (o->len + len > OUT_BUFFER) {
        int rc = out_flush(o);
        if (rc < 0)
            return rc;
    }
    if (len > OUT_BUFFER) {
        int rc = write_all(o->fd, o->name, p, len, o->off);
        o->off += len;
        return rc;
    }
    memcpy(o->buf + o->len, p, len);
    o->len += len;
    return 0;
}

static int emit_block(void *ctx, const uint8_t *block, size_t len, const chunk_block_info *info)
{
    struct out_file *o = ctx;
    uint64_t at = o->off + o->len;
    int rc = chunk_index_add_block(&o->index, block, len, at);
    if (rc < 0)
        return rc;
    chunk_footer *f = &o->footer;
    f->data_blocks++;
    f->points += info->points;
    f->data_bytes += len;
    f->ts_min = info->ts_min < f->ts_min ? info->ts_min : f->ts_min;
    f->ts_max = info->ts_max > f->ts_max ? info->ts_max : f->ts_max;
    f->seq_min = info->seq_min < f->seq_min ? info->seq_min : f->seq_min;
    f->seq_max = info->seq_max > f->seq_max ? info->seq_max : f->seq_max;
    return out_append(o, block, len);
}

/* Appends index and footer (at o->off + o->len) and flushes. */
static int out_finish(struct out_file *o)
{
    chunk_index_sort(&o->index);
    size_t ilen = chunk_index_block_size(&o->index);
    uint8_t *ib = malloc(ilen + CHUNK_FOOTER_SIZE);
    if (!ib)
        return chunk__fail(CHUNK_ENOMEM, "out of memory for the index of %s", o->name);
    chunk_index_encode(&o->index, ib);
    o->footer.index_offset = o->off + o->len;
    o->footer.index_len = (uint32_t)ilen;
    chunk_footer_write(&o->footer, ib + ilen);
    int rc = out_append(o, ib, ilen + CHUNK_FOOTER_SIZE);
    free(ib);
    if (rc == 0)
        rc = out_flush(o);
    return rc;
}

static void footer_init(chunk_footer *f)
{
    memset(f, 0, sizeof *f);
    f->ts_min = INT64_MAX;
    f->ts_max = INT64_MIN;
    f->seq_min = UINT64_MAX;
}

/* Rewrites the data blocks of `in` into o (after its file header). */
static int rewrite_blocks(int in, const char *name, const chunk_scan *s, struct out_file *o)
{
    chunk_builder *b = NULL;
    int rc = chunk_builder_new(&b);
    if (rc < 0)
        return rc;
    chunk_series col = {0};
    uint8_t *blk = NULL;
    size_t blk_cap = 0;
    for (size_t i = 0; i < s->n_blocks && rc == 0; i++) {
        const chunk_block_ref *ref = &s->blocks[i];
        if (blk_cap < ref->len) {
            uint8_t *p = realloc(blk, ref->len);
            if (!p) {
                rc = chunk__fail(CHUNK_ENOMEM, "out of memory reading %s", name);
                break;
            }
            blk = p;
            blk_cap = ref->len;
        }
        ssize_t r = pread(in, blk, ref->len, (off_t)ref->offset);
        if (r != (ssize_t)ref->len) {
            rc = sys_fail(r < 0 ? errno : EIO, "read", name);
            break;
        }
        chunk_data_view v;
        rc = chunk_data_view_open(blk, ref->len, &v);
        if (rc == 0 && chunk_crc32c(0, v.payload, v.payload_len) != v.info.payload_crc)
            rc = chunk__fail(CHUNK_ECORRUPT, "%s: block at offset %llu changed while sealing",
                             name, (unsigned long long)ref->offset);
        for (uint32_t c = 0; rc == 0 && c < v.ncols; c++) {
            chunk_column_ref cref;
            chunk_data_view_column(&v, c, &cref);
            chunk_series_clear(&col);
            int n = chunk_data_decode_column(&v, c, CHUNK_F_ALL, &col);
            if (n < 0) {
                rc = chunk__fail(n, "%s: block at offset %llu: %s", name,
                                 (unsigned long long)ref->offset, chunk_last_error());
                break;
            }
            rc = chunk_builder_add_series(b, cref.tag_id, cref.device_id, &col, 0, col.n);
        }
        if (rc == 0 && (chunk_builder_max_column(b) >= COMPACT_WINDOW_POINTS ||
                        chunk_builder_points(b) >= COMPACT_BUILDER_POINTS))
            rc = chunk_builder_encode_groups(b, emit_block, o);
    }
    if (rc == 0)
        rc = chunk_builder_encode_groups(b, emit_block, o);
    chunk_series_free(&col);
    free(blk);
    chunk_builder_free(&b);
    return rc;
}

static int seal_rewrite(int dirfd, int in, const char *name, const chunk_scan *s,
                        const char *tmp, chunk_seal_report *rep)
{
    struct out_file o = {.name = tmp};
    footer_init(&o.footer);
    o.buf = malloc(OUT_BUFFER);
    if (!o.buf)
        return chunk__fail(CHUNK_ENOMEM, "out of memory sealing %s", name);
    o.fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    int rc = o.fd < 0 ? sys_fail(errno, "create", tmp) : 0;
    if (rc == 0) {
        uint8_t hdr[CHUNK_FILE_HEADER_SIZE];
        chunk_file_header_write(&s->header, hdr);
        rc = out_append(&o, hdr, sizeof hdr);
    }
    if (rc == 0)
        rc = rewrite_blocks(in, name, s, &o);
    if (rc == 0)
        rc = out_finish(&o);
    if (rc == 0 && fsync(o.fd) != 0)
        rc = sys_fail(errno, "fsync", tmp);
    if (o.fd >= 0)
        close(o.fd);
    if (rc < 0)
        unlinkat(dirfd, tmp, 0);
    rep->bytes_after = o.off;
    rep->blocks_after = o.footer.data_blocks;
    chunk_index_free(&o.index);
    free(o.buf);
    return rc;
}

/* The sequence range of the blocks, from their headers. */
static void seq_range(int fd, const chunk_scan *s, uint64_t *lo, uint64_t *hi)
{
    *lo = UINT64_MAX;
    *hi = 0;
    for (size_t i = 0; i < s->n_blocks; i++) {
        uint8_t h[CHUNK_BLOCK_HEADER_SIZE];
        chunk_block_info info;
        if (pread(fd, h, sizeof h, (off_t)s->blocks[i].offset) == (ssize_t)sizeof h &&
            chunk_block_header_parse(h, sizeof h, &info) == 0) {
            *lo = info.seq_min < *lo ? info.seq_min : *lo;
            *hi = info.seq_max > *hi ? info.seq_max : *hi;
        }
    }
}

static int seal_in_place(int fd, const char *name, const chunk_scan *s, chunk_seal_report *rep)
{
    struct out_file o = {.fd = fd, .name = name, .off = s->good_end, .index = s->index};
    footer_init(&o.footer);
    o.buf = malloc(OUT_BUFFER);
    if (!o.buf)
        return chunk__fail(CHUNK_ENOMEM, "out of memory sealing %s", name);
    for (size_t i = 0; i < s->n_blocks; i++) {
        o.footer.data_blocks++;
        o.footer.data_bytes += s->blocks[i].len;
    }
    o.footer.points = s->points;
    seq_range(fd, s, &o.footer.seq_min, &o.footer.seq_max);
    for (size_t i = 0; i < s->index.n; i++) {
        const chunk_index_entry *e = &s->index.e[i];
        o.footer.ts_min = e->ts_min < o.footer.ts_min ? e->ts_min : o.footer.ts_min;
        o.footer.ts_max = e->ts_max > o.footer.ts_max ? e->ts_max : o.footer.ts_max;
    }
    int rc = out_finish(&o);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = sys_fail(errno, "fsync", name);
    if (rc < 0 && ftruncate(fd, (off_t)s->good_end) != 0)
        rc = sys_fail(errno, "truncate after a failed seal", name);
    rep->bytes_after = o.off;
    rep->blocks_after = o.footer.data_blocks;
    free(o.buf);
    return rc;
}

int chunk_seal(int dirfd, const char *name, unsigned flags, chunk_seal_report *rep)
{
    memset(rep, 0, sizeof *rep);
    char writer[CHUNK_NAME_MAX + 1], sealed[64], tmp[64];
    uint32_t no = 0;
    if (chunk_name_parse(name, writer, &no) != CHUNK_NAME_OPEN)
        return chunk__fail(CHUNK_EINVAL, "%s is not the name of an unsealed chunk", name);
    chunk_name_format(sealed, sizeof sealed, writer, no, CHUNK_NAME_SEALED);
    chunk_name_format(tmp, sizeof tmp, writer, no, CHUNK_NAME_TMP);
    snprintf(rep->sealed_name, sizeof rep->sealed_name, "%s", sealed);
    int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return sys_fail(errno, "open", name);
    chunk_scan s;
    int rc = chunk_scan_fd(fd, name, 0, &s);
    if (rc == 0 && s.good_end < s.file_size)
        rc = chunk__fail(CHUNK_ECORRUPT, "%s: damaged at offset %llu; recover it before sealing",
                         name, (unsigned long long)s.good_end);
    if (rc < 0)
        goto out;
    rep->bytes_before = s.file_size;
    rep->blocks_before = (uint32_t)s.n_blocks;
    rep->points = s.points;
    if (!s.sealed) {
        uint64_t avg = s.index.n ? s.points / s.index.n : 0;
        int compact = (flags & CHUNK_SEAL_COMPACT) ||
                      (!(flags & CHUNK_SEAL_NO_COMPACT) && s.n_blocks > 1 &&
                       avg < COMPACT_WHEN_AVG_BELOW) ||
                      chunk_index_block_size(&s.index) > CHUNK_BLOCK_MAX_PAYLOAD;
        if (s.n_blocks == 0)
            compact = 0;
        rep->compacted = compact;
        if (compact) {
            rc = seal_rewrite(dirfd, fd, name, &s, tmp, rep);
            if (rc == 0 && renameat(dirfd, tmp, dirfd, sealed) != 0)
                rc = sys_fail(errno, "rename", tmp);
            if (rc == 0)
                rc = chunk_fsync_dir(dirfd, sealed);
            if (rc == 0 && unlinkat(dirfd, name, 0) != 0)
                rc = sys_fail(errno, "remove", name);
            if (rc == 0)
                rc = chunk_fsync_dir(dirfd, name);
            goto out;
        }
        rc = seal_in_place(fd, name, &s, rep);
        if (rc < 0)
            goto out;
    } else {
        rep->bytes_after = s.file_size;
        rep->blocks_after = (uint32_t)s.n_blocks;
    }
    if (renameat(dirfd, name, dirfd, sealed) != 0)
        rc = sys_fail(errno, "rename", name);
    if (rc == 0)
        rc = chunk_fsync_dir(dirfd, sealed);
out:
    chunk_scan_free(&s);
    close(fd);
    return rc;
}

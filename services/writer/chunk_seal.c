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
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMPACT_WINDOW_POINTS 8192u      /* per tag per output block */
#define COMPACT_BUILDER_POINTS 524288u   /* all tags: bounds memory (~20 MiB) */
#define COMPACT_WHEN_AVG_BELOW 1024u     /* points per column per block */
#define OUT_BUFFER (1u << 20)

/* Memory kept from one seal to the next (a writer seals every chunk it
 * fills): the builder's columns, the decode buffers and the output buffer
 * are allocated once, not faulted in again for every chunk. */
struct chunk_seal_ctx {
    chunk_builder *b;
    chunk_series col;
    chunk_stream_cache cache;
    uint8_t *out;
};

int chunk_seal_ctx_new(chunk_seal_ctx **out)
{
    chunk_seal_ctx *c = calloc(1, sizeof *c);
    if (!c || chunk_builder_new(&c->b) < 0 || !(c->out = malloc(OUT_BUFFER))) {
        chunk_seal_ctx_free(&c);
        return chunk__fail(CHUNK_ENOMEM, "out of memory for sealing");
    }
    *out = c;
    return 0;
}

void chunk_seal_ctx_free(chunk_seal_ctx **cp)
{
    chunk_seal_ctx *c = *cp;
    if (!c)
        return;
    chunk_builder_free(&c->b);
    chunk_series_free(&c->col);
    chunk_stream_cache_free(&c->cache);
    free(c->out);
    free(c);
    *cp = NULL;
}

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

/* Rewrites the data blocks of the file (in memory at `file`) into o. */
static int rewrite_blocks(chunk_seal_ctx *ctx, const uint8_t *file, const char *name,
                          const chunk_scan *s, struct out_file *o)
{
    chunk_builder *b = ctx->b;
    chunk_builder_reset(b);
    int rc = 0;
    for (size_t i = 0; i < s->n_blocks && rc == 0; i++) {
        const chunk_block_ref *ref = &s->blocks[i];
        chunk_data_view v;
        rc = chunk_data_view_open(file + ref->offset, ref->len, &v); /* CRC checked by the scan */
        for (uint32_t c = 0; rc == 0 && c < v.ncols; c++) {
            int n = chunk_builder_add_column(b, &v, c, &ctx->cache);
            if (n < 0)
                rc = chunk__fail(n, "%s: block at offset %llu: %s", name,
                                 (unsigned long long)ref->offset, chunk_last_error());
        }
        if (rc == 0 && (chunk_builder_max_column(b) >= COMPACT_WINDOW_POINTS ||
                        chunk_builder_points(b) >= COMPACT_BUILDER_POINTS))
            rc = chunk_builder_encode_groups(b, emit_block, o);
    }
    if (rc == 0)
        rc = chunk_builder_encode_groups(b, emit_block, o);
    chunk_builder_reset(b);
    ctx->cache.payload = NULL; /* the mapping goes away */
    return rc;
}

static int seal_rewrite(chunk_seal_ctx *ctx, int dirfd, const uint8_t *file, const char *name,
                        const chunk_scan *s, const char *tmp, chunk_seal_report *rep)
{
    struct out_file o = {.name = tmp, .buf = ctx->out};
    footer_init(&o.footer);
    o.fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    int rc = o.fd < 0 ? sys_fail(errno, "create", tmp) : 0;
    if (rc == 0) {
        uint8_t hdr[CHUNK_FILE_HEADER_SIZE];
        chunk_file_header_write(&s->header, hdr);
        rc = out_append(&o, hdr, sizeof hdr);
    }
    if (rc == 0)
        rc = rewrite_blocks(ctx, file, name, s, &o);
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
    return rc;
}

/* The sequence range of the blocks, from their headers. */
static void seq_range(const uint8_t *file, const chunk_scan *s, uint64_t *lo, uint64_t *hi)
{
    *lo = UINT64_MAX;
    *hi = 0;
    for (size_t i = 0; i < s->n_blocks; i++) {
        chunk_block_info info;
        if (chunk_block_header_parse(file + s->blocks[i].offset, CHUNK_BLOCK_HEADER_SIZE, &info) ==
            0) {
            *lo = info.seq_min < *lo ? info.seq_min : *lo;
            *hi = info.seq_max > *hi ? info.seq_max : *hi;
        }
    }
}

static int seal_in_place(chunk_seal_ctx *ctx, int fd, const uint8_t *file, const char *name,
                         const chunk_scan *s, chunk_seal_report *rep)
{
    struct out_file o = {.fd = fd, .name = name, .off = s->good_end, .buf = ctx->out};
    for (size_t i = 0; i < s->n_blocks; i++) {
        int rc = chunk_index_add_block(&o.index, file + s->blocks[i].offset, s->blocks[i].len,
                                       s->blocks[i].offset);
        if (rc < 0) {
            chunk_index_free(&o.index);
            return rc;
        }
    }
    footer_init(&o.footer);
    for (size_t i = 0; i < s->n_blocks; i++) {
        o.footer.data_blocks++;
        o.footer.data_bytes += s->blocks[i].len;
    }
    o.footer.points = s->points;
    seq_range(file, s, &o.footer.seq_min, &o.footer.seq_max);
    for (size_t i = 0; i < o.index.n; i++) {
        const chunk_index_entry *e = &o.index.e[i];
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
    chunk_index_free(&o.index);
    return rc;
}

int chunk_seal(int dirfd, const char *name, unsigned flags, chunk_seal_report *rep)
{
    chunk_seal_ctx *ctx = NULL;
    int err = chunk_seal_ctx_new(&ctx);
    if (err == 0)
        err = chunk_seal_with(ctx, dirfd, name, flags, rep);
    chunk_seal_ctx_free(&ctx);
    return err;
}

int chunk_seal_with(chunk_seal_ctx *ctx, int dirfd, const char *name, unsigned flags,
                    chunk_seal_report *rep)
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
    /* The file is ours and closed: nobody truncates it while it is mapped. */
    struct stat st;
    chunk_scan s;
    memset(&s, 0, sizeof s);
    uint8_t *file = NULL;
    size_t size = 0;
    int rc = fstat(fd, &st) == 0 ? 0 : sys_fail(errno, "stat", name);
    if (rc == 0) {
        size = (size_t)st.st_size;
        file = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0) : NULL;
        if (size && file == MAP_FAILED) {
            file = NULL;
            rc = sys_fail(errno, "map", name);
        }
    }
    if (rc == 0)
        rc = file ? chunk_scan_mem(file, size, name, CHUNK_SCAN_BLOCKS, &s)
                  : chunk__fail(CHUNK_ETRUNCATED, "%s: empty file", name);
    if (rc == 0 && s.good_end < s.file_size)
        rc = chunk__fail(CHUNK_ECORRUPT, "%s: damaged at offset %llu; recover it before sealing",
                         name, (unsigned long long)s.good_end);
    if (rc < 0)
        goto out;
    rep->bytes_before = s.file_size;
    rep->blocks_before = (uint32_t)s.n_blocks;
    rep->points = s.points;
    if (!s.sealed) {
        uint64_t avg = s.columns ? s.points / s.columns : 0;
        int compact = (flags & CHUNK_SEAL_COMPACT) ||
                      (!(flags & CHUNK_SEAL_NO_COMPACT) && s.n_blocks > 1 &&
                       avg < COMPACT_WHEN_AVG_BELOW) ||
                      CHUNK_BLOCK_HEADER_SIZE + 8 + s.columns * CHUNK_INDEX_ENTRY >
                          CHUNK_BLOCK_MAX_PAYLOAD;
        if (s.n_blocks == 0)
            compact = 0;
        rep->compacted = compact;
        if (compact) {
            rc = seal_rewrite(ctx, dirfd, file, name, &s, tmp, rep);
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
        rc = seal_in_place(ctx, fd, file, name, &s, rep);
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
    if (file)
        munmap(file, size);
    chunk_scan_free(&s);
    close(fd);
    return rc;
}

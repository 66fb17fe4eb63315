/*
 * chunk_seal.c — sealing: turning an unsealed chunk into an immutable one
 * with an index and a footer.
 *
 * Blocks written for durability are as small as a group commit: at low
 * rates a few points per tag, where per-column headers would dominate. So
 * a chunk of small blocks is rewritten (chunk_rewrite.c): its points are
 * regrouped into blocks of up to 8192 points per tag, one block per group
 * of tags sharing timestamps (a query then reads and checks only its own
 * group's blocks). A chunk of large blocks keeps them and gets its index
 * and footer appended in place.
 *
 * Memory is bounded whatever the chunk's size: the file is read through a
 * window (chunk_reader.c), output goes through a small buffer, and the
 * points in memory at once are limited by the context's budget.
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

#define COMPACT_WHEN_AVG_BELOW 1024u /* points per column per block */

int chunk_seal_ctx_new(chunk_seal_ctx **out, size_t memory)
{
    chunk_seal_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return chunk__fail(CHUNK_ENOMEM, "out of memory for sealing");
    c->memory = memory ? memory : CHUNK_SEAL_MEMORY_DEFAULT;
    chunk_reader_init(&c->in, CHUNK_READ_WINDOW);
    chunk_reader_init(&c->mid, CHUNK_MID_WINDOW);
    for (int i = 0; i < 2; i++)
        c->out[i] = malloc(CHUNK_OUT_BUFFER);
    if (chunk_builder_new(&c->b) < 0 || !c->out[0] || !c->out[1]) {
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
    chunk_stream_cache_free(&c->cache);
    chunk_reader_free(&c->in);
    chunk_reader_free(&c->mid);
    free(c->out[0]);
    free(c->out[1]);
    free(c);
    *cp = NULL;
}

int chunk__sys_fail(int e, const char *what, const char *name)
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
            return chunk__sys_fail(errno, "write", name);
        }
        if (w == 0)
            return chunk__sys_fail(ENOSPC, "write", name);
        p += w;
        len -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

int chunk__out_flush(chunk_out *o)
{
    int rc = write_all(o->fd, o->name, o->buf, o->len, o->off);
    o->off += o->len;
    o->len = 0;
    return rc;
}

int chunk__out_append(chunk_out *o, const uint8_t *p, size_t len)
{
    if (o->len + len > CHUNK_OUT_BUFFER) {
        int rc = chunk__out_flush(o);
        if (rc < 0)
            return rc;
    }
    if (len > CHUNK_OUT_BUFFER) {
        int rc = write_all(o->fd, o->name, p, len, o->off);
        o->off += len;
        return rc;
    }
    memcpy(o->buf + o->len, p, len);
    o->len += len;
    return 0;
}

int chunk__out_block(void *ctx, const uint8_t *block, size_t len, const chunk_block_info *info)
{
    chunk_out *o = ctx;
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
    return chunk__out_append(o, block, len);
}

/* Appends index and footer (at o->off + o->len) and flushes. */
static int out_finish(chunk_out *o)
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
    int rc = chunk__out_append(o, ib, ilen + CHUNK_FOOTER_SIZE);
    free(ib);
    if (rc == 0)
        rc = chunk__out_flush(o);
    return rc;
}

void chunk__footer_init(chunk_footer *f)
{
    memset(f, 0, sizeof *f);
    f->ts_min = INT64_MAX;
    f->ts_max = INT64_MIN;
    f->seq_min = UINT64_MAX;
}

/* The rewrite goes to tmp; when it needs an intermediate file, that is
 * created first under the same name and unlinked at once (a crash leaves at
 * most a .tmp, which recovery removes). */
static int seal_rewrite(chunk_seal_ctx *ctx, int dirfd, const chunk_scan *s, const char *tmp,
                        chunk_seal_report *rep)
{
    chunk_out o = {.fd = -1, .name = tmp, .buf = ctx->out[0]};
    chunk__footer_init(&o.footer);
    int mid = -1, rc = 0;
    char mid_name[80];
    snprintf(mid_name, sizeof mid_name, "%s (intermediate)", tmp);
    if (chunk__rewrite_merges(ctx, s)) {
        rep->merged = 1;
        mid = openat(dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (mid < 0)
            rc = chunk__sys_fail(errno, "create", mid_name);
        else if (unlinkat(dirfd, tmp, 0) != 0)
            rc = chunk__sys_fail(errno, "remove", mid_name);
    }
    if (rc == 0) {
        o.fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        rc = o.fd < 0 ? chunk__sys_fail(errno, "create", tmp) : 0;
    }
    if (rc == 0) {
        uint8_t hdr[CHUNK_FILE_HEADER_SIZE];
        chunk_file_header_write(&s->header, hdr);
        rc = chunk__out_append(&o, hdr, sizeof hdr);
    }
    if (rc == 0)
        rc = chunk__rewrite_blocks(ctx, s, mid, mid_name, &o);
    if (rc == 0)
        rc = out_finish(&o);
    if (rc == 0 && fsync(o.fd) != 0)
        rc = chunk__sys_fail(errno, "fsync", tmp);
    if (mid >= 0)
        close(mid);
    if (o.fd >= 0)
        close(o.fd);
    if (rc < 0 && o.fd >= 0)
        unlinkat(dirfd, tmp, 0);
    rep->bytes_after = o.off;
    rep->blocks_after = o.footer.data_blocks;
    chunk_index_free(&o.index);
    return rc;
}

/* Index and footer appended after the blocks, each block read (and its CRC
 * checked) once more through the window. */
static int seal_in_place(chunk_seal_ctx *ctx, int fd, const char *name, const chunk_scan *s,
                         chunk_seal_report *rep)
{
    chunk_out o = {.fd = fd, .name = name, .off = s->good_end, .buf = ctx->out[0]};
    chunk__footer_init(&o.footer);
    int rc = 0;
    for (size_t i = 0; i < s->n_blocks && rc == 0; i++) {
        const chunk_block_ref *ref = &s->blocks[i];
        const uint8_t *blk;
        chunk_block_info info;
        bool damaged;
        rc = chunk__read_block(&ctx->in, ref->offset, ref->offset + ref->len, &blk, &info,
                               &damaged);
        if (rc == 0)
            rc = chunk_index_add_block(&o.index, blk, ref->len, ref->offset);
        else if (damaged)
            rc = chunk__fail(rc, "%s: block at offset %llu changed since the scan: %s", name,
                             (unsigned long long)ref->offset, chunk_last_error());
        if (rc < 0)
            break;
        o.footer.data_blocks++;
        o.footer.data_bytes += ref->len;
        o.footer.seq_min = info.seq_min < o.footer.seq_min ? info.seq_min : o.footer.seq_min;
        o.footer.seq_max = info.seq_max > o.footer.seq_max ? info.seq_max : o.footer.seq_max;
    }
    o.footer.points = s->points;
    for (size_t i = 0; i < o.index.n; i++) {
        const chunk_index_entry *e = &o.index.e[i];
        o.footer.ts_min = e->ts_min < o.footer.ts_min ? e->ts_min : o.footer.ts_min;
        o.footer.ts_max = e->ts_max > o.footer.ts_max ? e->ts_max : o.footer.ts_max;
    }
    if (rc == 0)
        rc = out_finish(&o);
    if (rc == 0 && fdatasync(fd) != 0)
        rc = chunk__sys_fail(errno, "fsync", name);
    if (rc < 0 && ftruncate(fd, (off_t)s->good_end) != 0)
        rc = chunk__sys_fail(errno, "truncate after a failed seal", name);
    rep->bytes_after = o.off;
    rep->blocks_after = o.footer.data_blocks;
    chunk_index_free(&o.index);
    return rc;
}

int chunk_seal(int dirfd, const char *name, unsigned flags, chunk_seal_report *rep)
{
    chunk_seal_ctx *ctx = NULL;
    int err = chunk_seal_ctx_new(&ctx, 0);
    if (err == 0)
        err = chunk_seal_with(ctx, dirfd, name, flags, rep);
    chunk_seal_ctx_free(&ctx);
    return err;
}

static bool should_rewrite(const chunk_scan *s, unsigned flags)
{
    if (s->n_blocks == 0)
        return false;
    if (flags & CHUNK_SEAL_COMPACT)
        return true;
    uint64_t avg = s->columns ? s->points / s->columns : 0;
    bool small = !(flags & CHUNK_SEAL_NO_COMPACT) && s->n_blocks > 1 &&
                 avg < COMPACT_WHEN_AVG_BELOW;
    /* an index too large for one block cannot be appended */
    bool huge_index = CHUNK_BLOCK_HEADER_SIZE + 8 + s->columns * CHUNK_INDEX_ENTRY >
                      CHUNK_BLOCK_MAX_PAYLOAD;
    return small || huge_index;
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
        return chunk__sys_fail(errno, "open", name);
    /* The file is ours and closed: nobody else writes it while we read. */
    struct stat st;
    chunk_scan s;
    memset(&s, 0, sizeof s);
    int rc = fstat(fd, &st) == 0 ? 0 : chunk__sys_fail(errno, "stat", name);
    if (rc == 0) {
        chunk_reader_attach(&ctx->in, fd, name, (uint64_t)st.st_size);
        rc = st.st_size ? chunk__scan(&ctx->in, CHUNK_SCAN_BLOCKS, &s)
                        : chunk__fail(CHUNK_ETRUNCATED, "%s: empty file", name);
    }
    if (rc == 0 && s.good_end < s.file_size)
        rc = chunk__fail(CHUNK_ECORRUPT, "%s: damaged at offset %llu; recover it before sealing",
                         name, (unsigned long long)s.good_end);
    if (rc < 0)
        goto out;
    rep->bytes_before = s.file_size;
    rep->blocks_before = (uint32_t)s.n_blocks;
    rep->points = s.points;
    if (!s.sealed) {
        rep->compacted = should_rewrite(&s, flags);
        if (rep->compacted) {
            rc = seal_rewrite(ctx, dirfd, &s, tmp, rep);
            if (rc == 0 && renameat(dirfd, tmp, dirfd, sealed) != 0)
                rc = chunk__sys_fail(errno, "rename", tmp);
            if (rc == 0)
                rc = chunk_fsync_dir(dirfd, sealed);
            if (rc == 0 && unlinkat(dirfd, name, 0) != 0)
                rc = chunk__sys_fail(errno, "remove", name);
            if (rc == 0)
                rc = chunk_fsync_dir(dirfd, name);
            goto out;
        }
        rc = seal_in_place(ctx, fd, name, &s, rep);
        if (rc < 0)
            goto out;
    } else {
        rep->bytes_after = s.file_size;
        rep->blocks_after = (uint32_t)s.n_blocks;
    }
    if (renameat(dirfd, name, dirfd, sealed) != 0)
        rc = chunk__sys_fail(errno, "rename", name);
    if (rc == 0)
        rc = chunk_fsync_dir(dirfd, sealed);
out:
    /* Whatever one large block or file needed is given back; the builder
     * keeps at most its budget for the next seal. */
    chunk_reader_attach(&ctx->in, -1, NULL, 0);
    chunk_reader_shrink(&ctx->in);
    chunk_reader_shrink(&ctx->mid);
    chunk_builder_reset(ctx->b);
    chunk_builder_trim(ctx->b, ctx->memory);
    ctx->cache.payload = NULL;
    chunk_scan_free(&s);
    close(fd);
    return rc;
}

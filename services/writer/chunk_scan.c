/*
 * chunk_scan.c — reading a chunk file's structure: its header, its blocks
 * in order, and (when sealed) its index and footer; every damaged range is
 * reported with its offset and the reason.
 *
 * A sealed chunk is trusted through its footer and index unless a full
 * check is asked for (blocks are then still verified one by one when they
 * are read). Anything else is read block by block from the file header on.
 * At the first block that fails its checks the intact prefix ends
 * (good_end: recovery truncates there, never skipping past a bad block).
 * Readers that want every intact block (CHUNK_SCAN_RESYNC) then look for
 * the next block whose header and payload CRCs hold and carry on from
 * there; without it the blocks found past the damage are only counted, so a
 * report can say what a truncation drops.
 *
 * The file is read through a bounded window (chunk_reader.c), never whole:
 * memory is the window, the largest block, and what the scan reports.
 */
#include "chunk_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE_BYTES (4ull << 30)

static int read_at(int fd, const char *path, uint8_t *buf, size_t len, uint64_t off)
{
    size_t done = 0;
    while (done < len) {
        ssize_t r = pread(fd, buf + done, len - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            return chunk__fail(chunk_errno_code(e), "%s: read at offset %llu: %s", path,
                               (unsigned long long)(off + done), strerror(e));
        }
        if (r == 0)
            return chunk__fail(CHUNK_ETRUNCATED, "%s: file ends at offset %llu", path,
                               (unsigned long long)(off + done));
        done += (size_t)r;
    }
    return 0;
}

static int add_damage(chunk_scan *s, uint64_t off, uint64_t len, const char *what)
{
    if (s->n_damage == s->cap_damage) {
        size_t cap = s->cap_damage ? s->cap_damage * 2 : 8;
        chunk_damage *d = realloc(s->damage, cap * sizeof *d);
        if (!d)
            return chunk__fail(CHUNK_ENOMEM, "out of memory for a damage report");
        s->damage = d;
        s->cap_damage = cap;
    }
    chunk_damage *d = &s->damage[s->n_damage++];
    d->offset = off;
    d->length = len;
    snprintf(d->what, sizeof d->what, "%s", what);
    s->bytes_dropped += len;
    return 0;
}

static int add_block(chunk_scan *s, uint64_t off, uint32_t len, uint32_t points)
{
    if (s->n_blocks == s->cap_blocks) {
        size_t cap = s->cap_blocks ? s->cap_blocks * 2 : 64;
        chunk_block_ref *b = realloc(s->blocks, cap * sizeof *b);
        if (!b)
            return chunk__fail(CHUNK_ENOMEM, "out of memory for a block list");
        s->blocks = b;
        s->cap_blocks = cap;
    }
    s->blocks[s->n_blocks++] = (chunk_block_ref){off, len, points};
    return 0;
}

void chunk_scan_free(chunk_scan *s)
{
    chunk_index_free(&s->index);
    free(s->blocks);
    free(s->damage);
    memset(s, 0, sizeof *s);
}

/* Tries the footer and index at the end of the file. Returns 1 when they
 * are valid (index loaded), 0 when not, or a negative I/O error. */
static int load_sealed(int fd, const char *path, chunk_scan *s)
{
    uint64_t size = s->file_size;
    if (size < CHUNK_FILE_HEADER_SIZE + CHUNK_FOOTER_SIZE + CHUNK_BLOCK_HEADER_SIZE)
        return 0;
    uint8_t fb[CHUNK_FOOTER_SIZE];
    int rc = read_at(fd, path, fb, sizeof fb, size - CHUNK_FOOTER_SIZE);
    if (rc < 0)
        return rc;
    chunk_footer f;
    if (chunk_footer_parse(fb, sizeof fb, &f) < 0)
        return 0;
    if (f.index_offset < CHUNK_FILE_HEADER_SIZE ||
        f.index_offset + f.index_len != size - CHUNK_FOOTER_SIZE ||
        f.index_len > CHUNK_BLOCK_HEADER_SIZE + CHUNK_BLOCK_MAX_PAYLOAD)
        return 0;
    uint8_t *ib = malloc(f.index_len ? f.index_len : 1);
    if (!ib)
        return chunk__fail(CHUNK_ENOMEM, "%s: out of memory for the index", path);
    rc = read_at(fd, path, ib, f.index_len, f.index_offset);
    if (rc == 0) {
        chunk_index ix = {0};
        if (chunk_index_decode(ib, f.index_len, f.index_offset, &ix) == 0) {
            chunk_index_free(&s->index);
            s->index = ix;
            s->footer = f;
            rc = 1;
        } else {
            chunk_index_free(&ix);
            rc = 0;
        }
    }
    free(ib);
    return rc;
}

/* Next offset from `from` where an intact block starts (or `end`), looked
 * for window by window. */
static int find_next_block(chunk_reader *r, uint64_t from, uint64_t end, uint64_t *next)
{
    uint64_t off = from;
    while (off + CHUNK_BLOCK_HEADER_SIZE <= end) {
        size_t want = end - off < r->window ? (size_t)(end - off) : r->window;
        const uint8_t *p;
        int rc = chunk_reader_get(r, off, want, &p);
        if (rc < 0)
            return rc;
        const uint8_t *hit = memmem(p, want, CHUNK_BLOCK_MAGIC, 4);
        if (!hit) {
            off += want - 3; /* a magic may straddle the windows */
            continue;
        }
        uint64_t at = off + (uint64_t)(hit - p);
        if (at + CHUNK_BLOCK_HEADER_SIZE > end)
            break;
        const uint8_t *blk;
        chunk_block_info info;
        bool damaged;
        rc = chunk__read_block(r, at, end, &blk, &info, &damaged);
        if (rc == 0) {
            *next = at;
            return 0;
        }
        if (!damaged)
            return rc;
        off = at + 1;
    }
    *next = end;
    return 0;
}

static int compare_indexes(chunk_scan *s, const chunk_index *stored)
{
    chunk_index_sort(&s->index);
    if (stored->n != s->index.n)
        return 1;
    for (size_t i = 0; i < stored->n; i++) {
        const chunk_index_entry *a = &stored->e[i], *b = &s->index.e[i];
        if (a->tag_id != b->tag_id || a->device_id != b->device_id ||
            a->block_offset != b->block_offset || a->block_len != b->block_len ||
            a->points != b->points || a->ts_min != b->ts_min || a->ts_max != b->ts_max)
            return 1;
    }
    return 0;
}

/* Checks the footer (the file's last block) against the last index block;
 * marks the scan sealed when they agree. */
static int check_footer(chunk_reader *r, chunk_scan *s, const chunk_footer *f, bool damaged,
                        unsigned flags)
{
    const uint8_t *ib;
    int rc = chunk_reader_get(r, f->index_offset, f->index_len, &ib);
    if (rc < 0)
        return rc;
    chunk_index stored = {0};
    rc = chunk_index_decode(ib, f->index_len, f->index_offset, &stored);
    if (rc == 0 && (damaged || (flags & CHUNK_SCAN_BLOCKS) || compare_indexes(s, &stored) == 0)) {
        s->sealed = 1;
        s->footer = *f;
    } else if (rc == 0) {
        add_damage(s, f->index_offset, f->index_len, "index does not match the blocks");
    }
    chunk_index_free(&stored);
    return 0;
}

/* Walks every block of the file, reading it through r. */
static int walk_blocks(chunk_reader *r, chunk_scan *s, unsigned flags)
{
    const uint64_t size = s->file_size;
    uint64_t off = CHUNK_FILE_HEADER_SIZE;
    uint64_t last_index_off = UINT64_MAX;
    bool damaged = false;
    s->good_end = off;
    while (off < size) {
        chunk_block_info info;
        const uint8_t *blk;
        bool bad;
        int rc = chunk__read_block(r, off, size, &blk, &info, &bad);
        if (rc < 0 && !bad)
            return rc;
        if (rc == 0) {
            uint64_t len = CHUNK_BLOCK_HEADER_SIZE + (uint64_t)info.payload_len;
            if (damaged && !(flags & CHUNK_SCAN_RESYNC)) {
                if (info.kind == CHUNK_BLOCK_DATA)
                    s->blocks_dropped_after++;
            } else if (info.kind == CHUNK_BLOCK_DATA) {
                rc = flags & CHUNK_SCAN_BLOCKS
                         ? 0
                         : chunk_index_add_block(&s->index, blk, (size_t)len, off);
                if (rc == 0)
                    rc = add_block(s, off, (uint32_t)len, info.points);
                s->columns += info.columns;
                if (rc < 0)
                    return rc;
                s->points += info.points;
                s->data_bytes += len;
            } else if (info.kind == CHUNK_BLOCK_INDEX) {
                last_index_off = off;
            } else if (info.kind == CHUNK_BLOCK_FOOTER && off + len == size &&
                       (!damaged || (flags & CHUNK_SCAN_RESYNC))) {
                /* A reader still calls a chunk sealed when a block inside it
                 * is damaged (reported on its own); the index is compared
                 * with the blocks only when every block is intact. */
                chunk_footer f;
                if (chunk_footer_parse(blk, (size_t)len, &f) == 0 &&
                    f.index_offset == last_index_off && f.index_offset + f.index_len == off &&
                    (rc = check_footer(r, s, &f, damaged, flags)) < 0)
                    return rc;
            }
            off += len;
            if (!damaged)
                s->good_end = off;
            continue;
        }
        /* Damage: name it, then find where intact blocks resume. */
        char what[120];
        snprintf(what, sizeof what, "%s", chunk_last_error());
        uint64_t next = size;
        if ((rc = find_next_block(r, off + 1, size, &next)) < 0)
            return rc;
        if ((rc = add_damage(s, off, next - off, what)) < 0)
            return rc;
        damaged = true;
        off = next;
    }
    return 0;
}

/* The file header; on damage, readers go on (see chunk_scan_fd). Returns
 * the header's own result (0 or why it failed) through *header_rc. */
static int scan_header(const uint8_t *hb, size_t hlen, const char *path, unsigned *flags,
                       chunk_scan *s, int *header_rc)
{
    int rc = chunk_file_header_parse(hb, hlen, &s->header);
    *header_rc = rc;
    if (rc == 0)
        return 0;
    /* A newer format cannot be read; a writer never works past a bad header.
     * A reader reports the damage and still looks for intact blocks after it. */
    if (rc == CHUNK_EVERSION || !(*flags & CHUNK_SCAN_RESYNC) ||
        s->file_size <= CHUNK_FILE_HEADER_SIZE)
        return chunk__fail(rc, "%s: %s", path, chunk_last_error());
    char what[120];
    snprintf(what, sizeof what, "file header: %s", chunk_last_error());
    rc = add_damage(s, 0, CHUNK_FILE_HEADER_SIZE, what);
    if (rc < 0)
        return rc;
    memset(&s->header, 0, sizeof s->header);
    *flags |= CHUNK_SCAN_FULL;
    return 0;
}

static int scan_finish(chunk_reader *r, chunk_scan *s, unsigned flags, int header_rc)
{
    int rc = walk_blocks(r, s, flags);
    if (rc < 0)
        return rc;
    if (header_rc == CHUNK_EFOREIGN && s->n_blocks == 0)
        return chunk__fail(CHUNK_EFOREIGN, "%s: not a shmbus chunk (no magic, no blocks)", r->path);
    if (header_rc < 0)
        s->good_end = 0;
    chunk_index_sort(&s->index);
    return 0;
}

int chunk__scan(chunk_reader *r, unsigned flags, chunk_scan *s)
{
    memset(s, 0, sizeof *s);
    const char *path = r->path;
    s->file_size = r->size;
    if (s->file_size > MAX_FILE_BYTES)
        return chunk__fail(CHUNK_ETOOBIG, "%s: %llu bytes is larger than a chunk can be", path,
                           (unsigned long long)s->file_size);
    uint8_t hb[CHUNK_FILE_HEADER_MAX];
    size_t hlen = s->file_size < sizeof hb ? (size_t)s->file_size : sizeof hb;
    int rc = read_at(r->fd, path, hb, hlen, 0);
    if (rc < 0)
        return rc;
    int header_rc;
    rc = scan_header(hb, hlen, path, &flags, s, &header_rc);
    if (rc < 0)
        return rc;
    if (!(flags & CHUNK_SCAN_FULL)) {
        /* A sealed chunk: footer and index only, blocks checked when read. */
        rc = load_sealed(r->fd, path, s);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            s->sealed = 1;
            s->good_end = s->file_size;
            s->points = s->footer.points;
            s->data_bytes = s->footer.data_bytes;
            return 0;
        }
    }
    return scan_finish(r, s, flags, header_rc);
}

int chunk_scan_fd(int fd, const char *path, unsigned flags, chunk_scan *s)
{
    memset(s, 0, sizeof *s);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        return chunk__fail(chunk_errno_code(e), "%s: %s", path, strerror(e));
    }
    chunk_reader r;
    chunk_reader_init(&r, CHUNK_READ_WINDOW);
    chunk_reader_attach(&r, fd, path, (uint64_t)st.st_size);
    int rc = chunk__scan(&r, flags, s);
    chunk_reader_free(&r);
    return rc;
}

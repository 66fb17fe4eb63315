/*
 * chunk_reader.c — reading a chunk file through one bounded buffer, so that
 * scanning, recovering and sealing a chunk of any size costs a window of
 * memory rather than the file (they used to map or read it whole: up to
 * 64 MiB resident per seal).
 *
 * chunk_reader_get() gives a range of the file in memory, reading a
 * window ahead from its start: walking blocks in file order reads the file
 * once, in window-sized preads. Only a range larger than the window (one
 * block) grows the buffer; chunk_reader_shrink() gives that back.
 * Ownership: one reader per thread; a pointer it returns stays valid until
 * the next get.
 */
#include "chunk_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

void chunk_reader_init(chunk_reader *r, size_t window)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->window = window;
}

void chunk_reader_attach(chunk_reader *r, int fd, const char *path, uint64_t size)
{
    r->fd = fd;
    r->path = path;
    r->size = size;
    r->len = 0;
    r->off = 0;
}

int chunk_reader_get(chunk_reader *r, uint64_t off, size_t len, const uint8_t **out)
{
    if (off > r->size || len > r->size - off)
        return chunk__fail(CHUNK_ETRUNCATED, "%s: file ends at offset %llu", r->path,
                           (unsigned long long)r->size);
    if (off >= r->off && off + len <= r->off + r->len) {
        *out = r->buf + (off - r->off);
        return 0;
    }
    size_t want = len > r->window ? len : r->window;
    if (want > r->size - off)
        want = (size_t)(r->size - off);
    if (r->cap < want) {
        size_t cap = want > r->window ? want : r->window;
        uint8_t *b = malloc(cap ? cap : 1);
        if (!b)
            return chunk__fail(CHUNK_ENOMEM, "%s: out of memory for %zu bytes", r->path, cap);
        free(r->buf);
        r->buf = b;
        r->cap = cap;
    }
    r->len = 0;
    size_t done = 0;
    while (done < want) {
        ssize_t n = pread(r->fd, r->buf + done, want - done, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            return chunk__fail(chunk_errno_code(e), "%s: read at offset %llu: %s", r->path,
                               (unsigned long long)(off + done), strerror(e));
        }
        if (n == 0)
            return chunk__fail(CHUNK_ETRUNCATED, "%s: file ends at offset %llu", r->path,
                               (unsigned long long)(off + done));
        done += (size_t)n;
    }
    r->off = off;
    r->len = want;
    *out = r->buf;
    return 0;
}

int chunk__read_block(chunk_reader *r, uint64_t off, uint64_t end, const uint8_t **block,
                      chunk_block_info *info, bool *damaged)
{
    *damaged = false;
    uint64_t avail = end - off;
    size_t hlen = avail < CHUNK_BLOCK_HEADER_SIZE ? (size_t)avail : CHUNK_BLOCK_HEADER_SIZE;
    const uint8_t *p = NULL;
    int rc = chunk_reader_get(r, off, hlen, &p);
    if (rc < 0)
        return rc;
    chunk_block_info h;
    rc = chunk_block_header_parse(p, hlen, &h);
    if (rc == 0) {
        uint64_t total = CHUNK_BLOCK_HEADER_SIZE + (uint64_t)h.payload_len;
        size_t len = (size_t)(total < avail ? total : avail);
        if ((rc = chunk_reader_get(r, off, len, &p)) < 0)
            return rc;
        rc = chunk_block_check(p, len, info);
    }
    if (rc < 0) {
        *damaged = true;
        return rc;
    }
    *block = p;
    return 0;
}

void chunk_reader_shrink(chunk_reader *r)
{
    if (r->cap <= r->window)
        return;
    free(r->buf);
    r->buf = NULL;
    r->cap = r->len = 0;
}

void chunk_reader_free(chunk_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = r->len = 0;
}

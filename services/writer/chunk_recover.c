/*
 * chunk_recover.c — bringing an unsealed chunk back to a consistent state
 * after its writer died.
 *
 * A writer appends a block, syncs, and only then acknowledges what the
 * block holds, so everything acknowledged lies in the intact prefix of the
 * file. Recovery keeps exactly that prefix: it truncates at the end of the
 * last block whose CRC holds and never skips past a bad block (a later
 * block that looks intact after damage is not trusted to belong to the same
 * history; RocksDB's point-in-time recovery and Prometheus' WAL repair make
 * the same choice). When intact blocks do follow the damage — bit rot
 * rather than a torn write — the whole file is first copied aside as
 * <writer>.<no>.damaged, so nothing is destroyed silently. A file that ends
 * in a valid index and footer was sealed in place just before the crash
 * and is renamed to .chunk. A file too short to hold its header was
 * created and never written: it is removed. A file whose header is damaged
 * is renamed to .damaged as a whole (readers still read its intact blocks);
 * a file of a newer format version is refused.
 */
#include "chunk_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define COPY_BUFFER (256u << 10)

/* Copies src (open fd) to a new file `dst` in dirfd and syncs it. */
static int copy_aside(int dirfd, int src, uint64_t size, const char *dst)
{
    int out = openat(dirfd, dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (out < 0)
        return chunk__sys_fail(errno, "create", dst);
    uint8_t *buf = malloc(COPY_BUFFER);
    int rc = buf ? 0 : chunk__fail(CHUNK_ENOMEM, "out of memory copying to %s", dst);
    for (uint64_t off = 0; rc == 0 && off < size;) {
        size_t want = size - off < COPY_BUFFER ? (size_t)(size - off) : COPY_BUFFER;
        ssize_t r = pread(src, buf, want, (off_t)off);
        if (r <= 0) {
            rc = r < 0 ? chunk__sys_fail(errno, "read for copy to", dst) : 0;
            break;
        }
        ssize_t w = pwrite(out, buf, (size_t)r, (off_t)off);
        if (w != r)
            rc = chunk__sys_fail(w < 0 ? errno : ENOSPC, "write", dst);
        off += (uint64_t)r;
    }
    free(buf);
    if (rc == 0 && fsync(out) != 0)
        rc = chunk__sys_fail(errno, "fsync", dst);
    close(out);
    if (rc < 0)
        unlinkat(dirfd, dst, 0);
    return rc;
}

/* A file with no byte set (pre-allocated or torn at creation). */
static int all_zero(int fd, uint64_t size)
{
    uint8_t buf[4096];
    for (uint64_t off = 0; off < size;) {
        ssize_t r = pread(fd, buf, sizeof buf, (off_t)off);
        if (r <= 0)
            return r == 0;
        for (ssize_t i = 0; i < r; i++)
            if (buf[i])
                return 0;
        off += (uint64_t)r;
    }
    return 1;
}

int chunk_recover(int dirfd, const char *name, chunk_recover_report *rep)
{
    memset(rep, 0, sizeof *rep);
    rep->truncated_at = UINT64_MAX;
    char writer[CHUNK_NAME_MAX + 1];
    uint32_t no = 0;
    if (chunk_name_parse(name, writer, &no) != CHUNK_NAME_OPEN)
        return chunk__fail(CHUNK_EINVAL, "%s is not the name of an unsealed chunk", name);
    int fd = openat(dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return chunk__sys_fail(errno, "open", name);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return chunk__sys_fail(e, "stat", name);
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size <= CHUNK_FILE_HEADER_SIZE || all_zero(fd, size)) {
        close(fd);
        if (unlinkat(dirfd, name, 0) != 0)
            return chunk__sys_fail(errno, "remove", name);
        rep->removed_empty = 1;
        return chunk_fsync_dir(dirfd, name);
    }
    /* Blocks only: recovery needs where the intact prefix ends, not a
     * per-column index (which for a chunk of small blocks can be larger
     * than the file). A file ending in index and footer is taken as sealed
     * when they are intact and agree in position. */
    chunk_scan s;
    int rc = chunk_scan_fd(fd, name, CHUNK_SCAN_BLOCKS, &s);
    if (rc == CHUNK_ECORRUPT || rc == CHUNK_EFOREIGN) {
        /* The header itself is damaged: keep the whole file aside (readers
         * still find its intact blocks) and let the writer start afresh. */
        char why[256];
        snprintf(why, sizeof why, "%s", chunk_last_error());
        close(fd);
        chunk_scan_free(&s);
        chunk_name_format(rep->damaged_copy, sizeof rep->damaged_copy, writer, no,
                          CHUNK_NAME_DAMAGED);
        if (renameat(dirfd, name, dirfd, rep->damaged_copy) != 0)
            return chunk__sys_fail(errno, "rename", name);
        rep->moved_aside = 1;
        rc = chunk_fsync_dir(dirfd, rep->damaged_copy);
        if (rc == 0)
            chunk__fail(0, "%s", why);
        return rc;
    }
    if (rc < 0) {
        close(fd);
        chunk_scan_free(&s);
        return rc;
    }
    if (s.sealed) {
        close(fd);
        chunk_scan_free(&s);
        char sealed[64];
        chunk_name_format(sealed, sizeof sealed, writer, no, CHUNK_NAME_SEALED);
        if (renameat(dirfd, name, dirfd, sealed) != 0)
            return chunk__sys_fail(errno, "rename", name);
        rep->was_sealed = 1;
        return chunk_fsync_dir(dirfd, sealed);
    }
    rep->blocks_kept = (uint32_t)s.n_blocks;
    rep->points_kept = s.points;
    if (s.good_end < size) {
        rep->truncated_at = s.good_end;
        rep->bytes_dropped = size - s.good_end;
        rep->blocks_dropped = s.blocks_dropped_after;
        if (s.blocks_dropped_after > 0) {
            chunk_name_format(rep->damaged_copy, sizeof rep->damaged_copy, writer, no,
                              CHUNK_NAME_DAMAGED);
            rc = copy_aside(dirfd, fd, size, rep->damaged_copy);
        }
        if (rc == 0 && ftruncate(fd, (off_t)s.good_end) != 0)
            rc = chunk__sys_fail(errno, "truncate", name);
        if (rc == 0 && fsync(fd) != 0)
            rc = chunk__sys_fail(errno, "fsync", name);
        if (rc == 0 && rep->damaged_copy[0])
            rc = chunk_fsync_dir(dirfd, rep->damaged_copy);
    }
    chunk_scan_free(&s);
    close(fd);
    return rc;
}

/*
 * chunk_create.c — creating a new unsealed chunk so that its existence is
 * durable before any record in it is acknowledged: the header is written
 * and fsynced, then the directory is fsynced.
 */
#include "chunk_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int chunk_create(int dirfd, const chunk_file_header *h, char *name, size_t name_len)
{
    chunk_name_format(name, name_len, h->writer, h->chunk_no, CHUNK_NAME_OPEN);
    int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        int e = errno;
        return chunk__fail(chunk_errno_code(e), "create %s: %s", name, strerror(e));
    }
    uint8_t hdr[CHUNK_FILE_HEADER_SIZE];
    chunk_file_header_write(h, hdr);
    int rc = 0;
    ssize_t w = pwrite(fd, hdr, sizeof hdr, 0);
    if (w != (ssize_t)sizeof hdr) {
        int e = w < 0 ? errno : ENOSPC;
        rc = chunk__fail(chunk_errno_code(e), "write %s: %s", name, strerror(e));
    } else if (fdatasync(fd) != 0) {
        int e = errno;
        rc = chunk__fail(chunk_errno_code(e), "fsync %s: %s", name, strerror(e));
    } else {
        rc = chunk_fsync_dir(dirfd, name);
    }
    if (rc == 0)
        return fd;
    close(fd);
    unlinkat(dirfd, name, 0);
    return rc;
}

/*
 * chunk_retention.c — deleting sealed chunks beyond an age limit or a byte
 * budget, oldest first.
 *
 * "Oldest" is by the newest point a chunk holds (its footer), so a chunk is
 * deleted only when everything in it is past the limit; the byte budget
 * counts sealed and unsealed chunks but only sealed ones are deleted: an
 * unsealed chunk may be the one a writer is appending to. The .damaged
 * copies recovery keeps are evidence for an operator: neither counted nor
 * deleted. Several writers may run retention on the same
 * directory at once; a file another one removed first is skipped.
 */
#include "chunk_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct sealed_file {
    char name[64];
    uint64_t bytes;
    int64_t newest; /* newest point, ns */
};

static int cmp_oldest(const void *pa, const void *pb)
{
    const struct sealed_file *a = pa, *b = pb;
    if (a->newest != b->newest)
        return a->newest < b->newest ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* The footer's newest timestamp, or the file's mtime when it has none. */
static int64_t newest_point(int dirfd, const char *name, const struct stat *st)
{
    int64_t fallback = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    if ((uint64_t)st->st_size < CHUNK_FILE_HEADER_SIZE + CHUNK_FOOTER_SIZE)
        return fallback;
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fallback;
    uint8_t fb[CHUNK_FOOTER_SIZE];
    chunk_footer f;
    int64_t newest = fallback;
    if (pread(fd, fb, sizeof fb, st->st_size - (off_t)CHUNK_FOOTER_SIZE) == (ssize_t)sizeof fb &&
        chunk_footer_parse(fb, sizeof fb, &f) == 0 && f.points > 0)
        newest = f.ts_max;
    close(fd);
    return newest;
}

int chunk_retention(int dirfd, uint64_t max_age_s, uint64_t max_bytes, int64_t now_ns,
                    chunk_retention_fn on_delete, void *ctx)
{
    if (!max_age_s && !max_bytes)
        return 0;
    int dup_fd = dup(dirfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        if (dup_fd >= 0)
            close(dup_fd);
        return chunk_errno_code(errno);
    }
    rewinddir(d);
    struct sealed_file *files = NULL;
    size_t n = 0, cap = 0;
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        int kind = chunk_name_parse(de->d_name, NULL, NULL);
        if (kind != CHUNK_NAME_SEALED && kind != CHUNK_NAME_OPEN)
            continue;
        struct stat st;
        if (fstatat(dirfd, de->d_name, &st, 0) != 0)
            continue;
        total += (uint64_t)st.st_size;
        if (kind != CHUNK_NAME_SEALED)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            struct sealed_file *f = realloc(files, cap * sizeof *f);
            if (!f)
                break;
            files = f;
        }
        snprintf(files[n].name, sizeof files[n].name, "%.63s", de->d_name);
        files[n].bytes = (uint64_t)st.st_size;
        files[n].newest = newest_point(dirfd, de->d_name, &st);
        n++;
    }
    closedir(d);
    if (n)
        qsort(files, n, sizeof *files, cmp_oldest);
    int deleted = 0;
    int64_t cutoff = max_age_s ? now_ns - (int64_t)max_age_s * 1000000000 : INT64_MIN;
    for (size_t i = 0; i < n; i++) {
        bool too_old = files[i].newest < cutoff;
        bool over = max_bytes && total > max_bytes;
        if (!too_old && !over)
            break;
        if (unlinkat(dirfd, files[i].name, 0) != 0) {
            int e = errno;
            if (e != ENOENT && on_delete) /* ENOENT: another writer deleted it first */
                on_delete(ctx, files[i].name, files[i].bytes, -e);
            continue;
        }
        if (on_delete)
            on_delete(ctx, files[i].name, files[i].bytes, too_old ? 1 : 2);
        total -= files[i].bytes;
        deleted++;
    }
    free(files);
    if (deleted)
        chunk_fsync_dir(dirfd, "(retention)");
    return deleted;
}


/*
 * writer_dir.c — the writer's part of the data directory at start-up.
 *
 * Chunks live in <data_dir>/chunks (data_dir also holds other services'
 * files). The writer takes <name>.lock with flock — the kernel drops it when
 * the process dies, so a second writer of the same name is refused while
 * the first lives and a restart never waits on a stale lock. Then it puts
 * its own files in order: leftover .tmp files (a seal interrupted) are
 * removed, an .open whose .chunk exists (a rewrite finished, the removal
 * not) is removed, every other .open is recovered (torn tail truncated) and
 * handed to the sealer. Other writers' files are left alone: they may be
 * running. Foreign files are reported once, by path, and left alone.
 */
#include "log.h"
#include "writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

static int make_dirs(const writer_options *o)
{
    const char *dirs[] = {o->data_dir, o->chunk_dir};
    for (int i = 0; i < 2; i++) {
        if (mkdir(dirs[i], 0770) != 0 && errno != EEXIST) {
            log_error("data directory %s: %s", dirs[i], strerror(errno));
            return chunk_errno_code(errno);
        }
    }
    return 0;
}

static int take_lock(writer_dir *d, const char *name)
{
    char lock[64];
    chunk_name_format(lock, sizeof lock, name, 0, CHUNK_NAME_LOCK);
    d->lockfd = openat(d->dirfd, lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (d->lockfd < 0) {
        int e = errno;
        log_error("%s/%s: %s", d->path, lock, strerror(e));
        return chunk_errno_code(e);
    }
    if (flock(d->lockfd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK)
            log_error("writer name '%s' is in use by another running writer (lock %s/%s is held)",
                      name, d->path, lock);
        else
            log_error("%s/%s: lock: %s", d->path, lock, strerror(e));
        return e == EWOULDBLOCK ? CHUNK_EBUSY : chunk_errno_code(e);
    }
    return 0;
}

/* Whether the directory lets us create files: a clear error up front
 * instead of a failure at the first chunk. */
static int check_writable(writer_dir *d)
{
    if (faccessat(d->dirfd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
        int e = errno;
        log_error("data directory %s: %s", d->path, strerror(e));
        return chunk_errno_code(e);
    }
    return 0;
}

struct own_file {
    char name[64];
    uint32_t no;
    int kind;
};

static int cmp_own(const void *pa, const void *pb)
{
    const struct own_file *a = pa, *b = pb;
    if (a->no != b->no)
        return a->no < b->no ? -1 : 1;
    return a->kind - b->kind;
}

static int list_own(writer_dir *d, const char *me, struct own_file **out, size_t *n_out)
{
    int dup_fd = dup(d->dirfd);
    DIR *dir = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!dir) {
        int e = errno;
        if (dup_fd >= 0)
            close(dup_fd);
        log_error("data directory %s: %s", d->path, strerror(e));
        return chunk_errno_code(e);
    }
    rewinddir(dir);
    struct own_file *files = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char writer[CHUNK_NAME_MAX + 1];
        uint32_t no = 0;
        int kind = chunk_name_parse(de->d_name, writer, &no);
        if (kind == CHUNK_NAME_FOREIGN) {
            log_warn("%s/%s: foreign file in the chunk directory (not a shmbus chunk name); "
                     "left alone",
                     d->path, de->d_name);
            continue;
        }
        if (strcmp(writer, me) != 0 || kind == CHUNK_NAME_CATALOG || kind == CHUNK_NAME_LOCK)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct own_file *f = realloc(files, cap * sizeof *f);
            if (!f) {
                free(files);
                closedir(dir);
                return CHUNK_ENOMEM;
            }
            files = f;
        }
        snprintf(files[n].name, sizeof files[n].name, "%.63s", de->d_name);
        files[n].no = no;
        files[n].kind = kind;
        n++;
    }
    closedir(dir);
    if (n)
        qsort(files, n, sizeof *files, cmp_own);
    *out = files;
    *n_out = n;
    return 0;
}

static bool has_sealed(const struct own_file *f, size_t n, uint32_t no)
{
    for (size_t i = 0; i < n; i++)
        if (f[i].no == no && f[i].kind == CHUNK_NAME_SEALED)
            return true;
    return false;
}

static int recover_one(writer_dir *d, const char *name,
                       void (*on_recovered)(void *ctx, const char *name), void *ctx)
{
    chunk_recover_report rep;
    int rc = chunk_recover(d->dirfd, name, &rep);
    if (rc < 0) {
        log_error("%s/%s: %s", d->path, name, chunk_last_error());
        return rc;
    }
    if (rep.removed_empty) {
        log_info("%s/%s: created but never written; removed", d->path, name);
    } else if (rep.moved_aside) {
        log_error("%s/%s: %s; kept aside as %s (its intact blocks stay readable)", d->path, name,
                  chunk_last_error(), rep.damaged_copy);
    } else if (rep.was_sealed) {
        log_info("%s/%s: was sealed; rename finished", d->path, name);
    } else {
        if (rep.truncated_at != UINT64_MAX)
            log_warn("%s/%s: torn tail: truncated at offset %llu (%llu bytes dropped, %u intact "
                     "blocks after the damage%s%s)",
                     d->path, name, (unsigned long long)rep.truncated_at,
                     (unsigned long long)rep.bytes_dropped, rep.blocks_dropped,
                     rep.damaged_copy[0] ? ", copy kept as " : "", rep.damaged_copy);
        log_info("%s/%s: recovered %u blocks, %llu points", d->path, name, rep.blocks_kept,
                 (unsigned long long)rep.points_kept);
        on_recovered(ctx, name);
    }
    return 0;
}

int writer_dir_open(writer_dir *d, const writer_options *o,
                    void (*on_recovered)(void *ctx, const char *name), void *ctx)
{
    memset(d, 0, sizeof *d);
    d->dirfd = d->lockfd = -1;
    snprintf(d->path, sizeof d->path, "%s", o->chunk_dir);
    int rc = make_dirs(o);
    if (rc < 0)
        return rc;
    d->dirfd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->dirfd < 0) {
        int e = errno;
        log_error("data directory %s: %s", d->path, strerror(e));
        return chunk_errno_code(e);
    }
    if ((rc = check_writable(d)) < 0 || (rc = take_lock(d, o->name)) < 0)
        return rc;
    struct own_file *files = NULL;
    size_t n = 0;
    if ((rc = list_own(d, o->name, &files, &n)) < 0)
        return rc;
    d->next_no = 1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const struct own_file *f = &files[i];
        if (f->no >= d->next_no)
            d->next_no = f->no + 1;
        if (f->kind == CHUNK_NAME_TMP || (f->kind == CHUNK_NAME_OPEN && has_sealed(files, n, f->no))) {
            log_info("%s/%s: left over from an interrupted seal; removed", d->path, f->name);
            if (unlinkat(d->dirfd, f->name, 0) != 0 && errno != ENOENT) {
                int e = errno;
                log_error("%s/%s: remove: %s", d->path, f->name, strerror(e));
                rc = chunk_errno_code(e);
            }
        } else if (f->kind == CHUNK_NAME_OPEN) {
            rc = recover_one(d, f->name, on_recovered, ctx);
        }
    }
    free(files);
    if (rc == 0)
        rc = chunk_fsync_dir(d->dirfd, d->path);
    return rc;
}

void writer_dir_close(writer_dir *d)
{
    if (d->dirfd >= 0)
        close(d->dirfd);
    if (d->lockfd >= 0)
        close(d->lockfd); /* releases the flock */
    d->dirfd = d->lockfd = -1;
}

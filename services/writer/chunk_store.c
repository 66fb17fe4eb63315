/*
 * chunk_store.c — the read side of a data directory: every writer's chunk
 * files, sealed and unsealed, opened together so one tag can be read across
 * all of them, merged in time order with repeated sequence numbers removed.
 *
 * Nothing here writes. Readers keep every intact block: a sealed chunk is
 * read through its index (a damaged block is skipped and reported, the
 * others still read); an unsealed chunk, or a sealed one whose index is
 * damaged, is scanned block by block and resynchronised past damage; the
 * .damaged copies recovery keeps are read the same way (their records also
 * in the truncated chunk are removed as duplicates). Every
 * problem is kept as a line naming the file and offset, for the caller to
 * print; a problem never stops the other files from being read.
 */
#include "chunk_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int chunk_store_problem(chunk_store *s, const char *fmt, ...)
{
    if (s->nproblems == s->cap_problems) {
        size_t cap = s->cap_problems ? s->cap_problems * 2 : 16;
        char **p = realloc(s->problems, cap * sizeof *p);
        if (!p)
            return CHUNK_ENOMEM;
        s->problems = p;
        s->cap_problems = cap;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char *copy = strdup(line);
    if (!copy)
        return CHUNK_ENOMEM;
    s->problems[s->nproblems++] = copy;
    return 0;
}

static int cmp_files(const void *pa, const void *pb)
{
    const chunk_store_file *a = pa, *b = pb;
    int c = strcmp(a->writer, b->writer);
    if (c)
        return c;
    return a->no < b->no ? -1 : a->no > b->no;
}

static int add_file(chunk_store *s, const char *name, const char *writer, uint32_t no, int kind)
{
    if (s->nfiles == s->cap_files) {
        size_t cap = s->cap_files ? s->cap_files * 2 : 32;
        chunk_store_file *f = realloc(s->files, cap * sizeof *f);
        if (!f)
            return chunk__fail(CHUNK_ENOMEM, "out of memory listing %s", s->dir);
        s->files = f;
        s->cap_files = cap;
    }
    chunk_store_file *f = &s->files[s->nfiles++];
    memset(f, 0, sizeof *f);
    /* valid chunk names are at most 50 bytes, writer names 31 */
    memcpy(f->name, name, strnlen(name, sizeof f->name - 1));
    memcpy(f->writer, writer, strnlen(writer, sizeof f->writer - 1));
    f->no = no;
    f->kind = kind;
    f->fd = -1;
    return 0;
}

/* Opens one listed file and reads its structure. */
static void open_file(chunk_store *s, chunk_store_file *f, unsigned flags)
{
    char path[PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/%s", s->dir, f->name);
    f->fd = openat(s->dirfd, f->name, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        int e = errno;
        f->err = chunk_errno_code(e);
        if (e == ENOENT) { /* removed meanwhile (retention, a finished seal) */
            f->gone = 1;
            return;
        }
        chunk_store_problem(s, "%s: %s", path, strerror(e));
        return;
    }
    int rc = chunk_scan_fd(f->fd, path, flags | CHUNK_SCAN_RESYNC, &f->scan);
    if (rc < 0) {
        f->err = rc;
        chunk_store_problem(s, "%s", chunk_last_error());
        close(f->fd);
        f->fd = -1;
        return;
    }
    uint64_t tail = chunk_store_torn_tail(f);
    for (size_t i = 0; i < f->scan.n_damage; i++) {
        const chunk_damage *d = &f->scan.damage[i];
        if (tail && i + 1 == f->scan.n_damage)
            chunk_store_problem(s,
                                "%s: offset %llu: incomplete tail of %llu bytes in an unsealed chunk "
                                "(a write in progress, or a writer that died: it truncates this at "
                                "its next start)",
                                path, (unsigned long long)d->offset, (unsigned long long)d->length);
        else
            chunk_store_problem(s, "%s: offset %llu: %llu bytes dropped: %s", path,
                                (unsigned long long)d->offset, (unsigned long long)d->length,
                                d->what);
    }
    if (f->kind == CHUNK_NAME_SEALED && !f->scan.sealed)
        chunk_store_problem(s, "%s: sealed chunk without a valid index and footer; read block by block",
                            path);
}

int chunk_store_open(const char *dir, unsigned flags, chunk_progress_fn progress, void *ctx,
                     chunk_store **out)
{
    *out = NULL;
    chunk_store *s = calloc(1, sizeof *s);
    if (!s)
        return chunk__fail(CHUNK_ENOMEM, "out of memory opening %s", dir);
    snprintf(s->dir, sizeof s->dir, "%s", dir);
    s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dirfd < 0) {
        int e = errno;
        free(s);
        return chunk__fail(chunk_errno_code(e), "data directory %s: %s", dir, strerror(e));
    }
    int dup_fd = dup(s->dirfd);
    DIR *d = dup_fd >= 0 ? fdopendir(dup_fd) : NULL;
    if (!d) {
        int e = errno;
        if (dup_fd >= 0)
            close(dup_fd);
        chunk_store_close(&s);
        return chunk__fail(chunk_errno_code(e), "data directory %s: %s", dir, strerror(e));
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char writer[CHUNK_NAME_MAX + 1];
        uint32_t no = 0;
        int kind = chunk_name_parse(de->d_name, writer, &no);
        switch (kind) {
        case CHUNK_NAME_SEALED:
        case CHUNK_NAME_OPEN:
            rc = add_file(s, de->d_name, writer, no, kind);
            break;
        case CHUNK_NAME_FOREIGN:
            chunk_store_problem(s, "%s/%s: foreign file (not a shmbus chunk name); ignored", dir,
                                de->d_name);
            break;
        case CHUNK_NAME_DAMAGED:
            chunk_store_problem(s, "%s/%s: damaged chunk kept aside by recovery; its intact blocks are read",
                                dir, de->d_name);
            rc = add_file(s, de->d_name, writer, no, kind);
            break;
        default: /* .tmp, catalog, lock */
            break;
        }
    }
    closedir(d);
    if (rc < 0) {
        chunk_store_close(&s);
        return rc;
    }
    if (s->nfiles)
        qsort(s->files, s->nfiles, sizeof *s->files, cmp_files);
    /* A .open beside its .chunk is a finished rewrite not yet removed. */
    for (size_t i = 0; i < s->nfiles; i++) {
        chunk_store_file *a = &s->files[i];
        for (size_t j = i + 1; j < s->nfiles && s->files[j].no == a->no &&
                               strcmp(s->files[j].writer, a->writer) == 0;
             j++) {
            chunk_store_file *b = &s->files[j];
            if (a->kind == CHUNK_NAME_OPEN && b->kind == CHUNK_NAME_SEALED)
                a->superseded = 1;
            if (b->kind == CHUNK_NAME_OPEN && a->kind == CHUNK_NAME_SEALED)
                b->superseded = 1;
        }
    }
    for (size_t i = 0; i < s->nfiles; i++) {
        if (!s->files[i].superseded)
            open_file(s, &s->files[i], flags);
        if (progress)
            progress(ctx, i + 1, s->nfiles);
    }
    *out = s;
    return 0;
}

void chunk_store_close(chunk_store **sp)
{
    chunk_store *s = *sp;
    if (!s)
        return;
    for (size_t i = 0; i < s->nfiles; i++) {
        if (s->files[i].fd >= 0)
            close(s->files[i].fd);
        chunk_scan_free(&s->files[i].scan);
    }
    for (size_t i = 0; i < s->nproblems; i++)
        free(s->problems[i]);
    free(s->problems);
    free(s->files);
    if (s->dirfd >= 0)
        close(s->dirfd);
    free(s->block);
    free(s);
    *sp = NULL;
}

uint64_t chunk_store_torn_tail(const chunk_store_file *f)
{
    if (f->kind != CHUNK_NAME_OPEN || f->scan.n_damage == 0)
        return 0;
    const chunk_damage *d = &f->scan.damage[f->scan.n_damage - 1];
    /* only the end of the file, with nothing intact after it */
    return d->offset + d->length == f->scan.file_size && d->offset >= f->scan.good_end &&
                   f->scan.n_damage == 1
               ? d->length
               : 0;
}

int chunk_store_file_usable(const chunk_store_file *f)
{
    return f->fd >= 0 && !f->err && !f->superseded && !f->gone;
}

/* Reads the block at `off` into s->block and checks it. */
static int load_block(chunk_store *s, chunk_store_file *f, uint64_t off, uint32_t len)
{
    if (s->block_cap < len) {
        uint8_t *b = realloc(s->block, len);
        if (!b)
            return chunk__fail(CHUNK_ENOMEM, "out of memory for a %u-byte block", len);
        s->block = b;
        s->block_cap = len;
    }
    ssize_t r = pread(f->fd, s->block, len, (off_t)off);
    if (r != (ssize_t)len)
        return chunk__fail(r < 0 ? chunk_errno_code(errno) : CHUNK_ETRUNCATED,
                           "%s/%s: offset %llu: block cannot be read", s->dir, f->name,
                           (unsigned long long)off);
    int rc = chunk_block_check(s->block, len, NULL);
    if (rc < 0)
        return chunk__fail(rc, "%s/%s: offset %llu: %s", s->dir, f->name,
                           (unsigned long long)off, chunk_last_error());
    return 0;
}

/* Keeps the points of out[from..] that lie in [t_from, t_to]. */
static void keep_range(chunk_series *out, size_t from, int64_t t_from, int64_t t_to)
{
    size_t w = from;
    for (size_t i = from; i < out->n; i++) {
        if (out->ts[i] < t_from || out->ts[i] > t_to)
            continue;
        if (w != i) {
            out->ts[w] = out->ts[i];
            out->seq[w] = out->seq[i];
            out->value[w] = out->value[i];
            out->raw[w] = out->raw[i];
            out->quality[w] = out->quality[i];
            out->exception[w] = out->exception[i];
            out->flags[w] = out->flags[i];
        }
        w++;
    }
    out->n = w;
}

static int read_file_tag(chunk_store *s, chunk_store_file *f, uint32_t tag, int64_t t_from,
                         int64_t t_to, unsigned fields, chunk_series *out, chunk_read_stats *st)
{
    const chunk_index *ix = &f->scan.index;
    /* entries are sorted by tag: binary search for the first */
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ix->e[mid].tag_id < tag)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint64_t last_block = UINT64_MAX;
    for (size_t i = lo; i < ix->n && ix->e[i].tag_id == tag; i++) {
        const chunk_index_entry *e = &ix->e[i];
        if (e->ts_max < t_from || e->ts_min > t_to || e->block_offset == last_block)
            continue;
        last_block = e->block_offset;
        int rc = load_block(s, f, e->block_offset, e->block_len);
        if (rc == CHUNK_ENOMEM)
            return rc;
        if (rc < 0) {
            chunk_store_problem(s, "%s (%u points of tag %u dropped)", chunk_last_error(),
                                e->points, tag);
            st->points_dropped += e->points;
            st->blocks_bad++;
            continue;
        }
        st->blocks_read++;
        st->bytes_read += e->block_len;
        chunk_data_view v;
        chunk_data_view_open(s->block, e->block_len, &v);
        for (uint32_t c = 0; c < v.ncols; c++) {
            chunk_column_ref ref;
            chunk_data_view_column(&v, c, &ref);
            if (ref.tag_id != tag)
                continue;
            size_t before = out->n;
            int n = chunk_data_decode_column(&v, c, fields | CHUNK_F_TS | CHUNK_F_SEQ, out);
            if (n == CHUNK_ENOMEM)
                return n;
            if (n < 0) {
                chunk_store_problem(s, "%s/%s: offset %llu: %s (%u points dropped)", s->dir,
                                    f->name, (unsigned long long)e->block_offset,
                                    chunk_last_error(), ref.count);
                st->points_dropped += ref.count;
                out->n = before;
                continue;
            }
            st->points_decoded += (uint64_t)n;
            keep_range(out, before, t_from, t_to);
        }
    }
    return 0;
}

/* Points of tag in [t_from, t_to] according to the indexes: one allocation
 * for the whole result instead of growing it block by block. */
static uint64_t expected_points(const chunk_store *s, uint32_t tag, int64_t t_from, int64_t t_to)
{
    uint64_t n = 0;
    for (size_t i = 0; i < s->nfiles; i++) {
        const chunk_store_file *f = &s->files[i];
        if (!chunk_store_file_usable(f))
            continue;
        const chunk_index *ix = &f->scan.index;
        for (size_t k = 0; k < ix->n; k++)
            if (ix->e[k].tag_id == tag && ix->e[k].ts_max >= t_from && ix->e[k].ts_min <= t_to)
                n += ix->e[k].points;
    }
    return n;
}

int chunk_store_read(chunk_store *s, uint32_t tag, int64_t t_from, int64_t t_to, unsigned fields,
                     chunk_series *out, chunk_read_stats *st)
{
    chunk_read_stats local = {0};
    if (!st)
        st = &local;
    uint64_t expect = expected_points(s, tag, t_from, t_to);
    if (expect && chunk_series_reserve(out, (size_t)expect) < 0)
        return CHUNK_ENOMEM;
    for (size_t i = 0; i < s->nfiles; i++) {
        chunk_store_file *f = &s->files[i];
        if (!chunk_store_file_usable(f))
            continue;
        int rc = read_file_tag(s, f, tag, t_from, t_to, fields, out, st);
        if (rc < 0)
            return rc;
    }
    size_t removed = 0;
    int rc = chunk_series_sort_dedupe(out, &removed);
    st->duplicates_removed += removed;
    return rc;
}

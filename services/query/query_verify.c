/*
 * query_verify.c — --verify: every block's CRCs and directory, every
 * sealed chunk's index against its blocks, and every column decoded. Each
 * problem is printed with the file and offset; the exit status is 1 when
 * anything is damaged or unreadable.
 */
#include "query.h"

#include <stdlib.h>
#include <unistd.h>

/* Decodes every column of every intact block; reports failures. */
static uint64_t decode_all(chunk_store *s, chunk_store_file *f, uint64_t *points)
{
    uint64_t bad = 0;
    chunk_series col = {0};
    uint8_t *buf = NULL;
    size_t cap = 0;
    for (size_t b = 0; b < f->scan.n_blocks; b++) {
        const chunk_block_ref *ref = &f->scan.blocks[b];
        if (cap < ref->len) {
            uint8_t *p = realloc(buf, ref->len);
            if (!p)
                break;
            buf = p;
            cap = ref->len;
        }
        chunk_data_view v;
        if (pread(f->fd, buf, ref->len, (off_t)ref->offset) != (ssize_t)ref->len ||
            chunk_block_check(buf, ref->len, NULL) < 0 ||
            chunk_data_view_open(buf, ref->len, &v) < 0) {
            chunk_store_problem(s, "%s/%s: offset %llu: block changed or unreadable while verifying",
                                s->dir, f->name, (unsigned long long)ref->offset);
            bad++;
            continue;
        }
        for (uint32_t c = 0; c < v.ncols; c++) {
            chunk_series_clear(&col);
            int n = chunk_data_decode_column(&v, c, CHUNK_F_ALL, &col);
            if (n < 0) {
                chunk_store_problem(s, "%s/%s: offset %llu: %s", s->dir, f->name,
                                    (unsigned long long)ref->offset, chunk_last_error());
                bad++;
            } else {
                *points += (uint64_t)n;
            }
        }
    }
    free(buf);
    chunk_series_free(&col);
    return bad;
}

int query_verify(const char *dir)
{
    chunk_store *s = NULL;
    if (chunk_store_open(dir, CHUNK_SCAN_FULL, query_progress, NULL, &s) < 0) {
        query_progress_end();
        fprintf(stderr, "shmbus-query: %s\n", chunk_last_error());
        return 2;
    }
    query_progress_end();
    uint64_t damaged_files = 0, files = 0, points = 0, bytes = 0;
    for (size_t i = 0; i < s->nfiles; i++) {
        chunk_store_file *f = &s->files[i];
        if (f->superseded || f->gone)
            continue;
        files++;
        if (f->err) {
            printf("%s/%s: UNREADABLE\n", s->dir, f->name);
            damaged_files++;
            continue;
        }
        uint64_t p = 0;
        uint64_t tail = chunk_store_torn_tail(f);
        uint64_t bad = decode_all(s, f, &p) + f->scan.n_damage - (tail ? 1 : 0);
        if (f->kind == CHUNK_NAME_SEALED && !f->scan.sealed)
            bad++;
        points += p;
        bytes += f->scan.file_size;
        if (bad || f->kind == CHUNK_NAME_DAMAGED) {
            damaged_files++;
            printf("%s/%s: DAMAGED (%llu problems, %llu bytes dropped; %zu intact blocks, %llu "
                   "points readable)\n",
                   s->dir, f->name, (unsigned long long)bad,
                   (unsigned long long)f->scan.bytes_dropped, f->scan.n_blocks,
                   (unsigned long long)p);
        } else {
            printf("%s/%s: ok, %s, %zu blocks, %llu points, %llu bytes%s\n", s->dir, f->name,
                   f->scan.sealed ? "sealed" : "unsealed", f->scan.n_blocks,
                   (unsigned long long)p, (unsigned long long)f->scan.file_size,
                   tail ? " (and an incomplete tail)" : "");
        }
    }
    query_print_problems(s);
    printf("%llu chunk files, %llu damaged, %llu points, %llu bytes\n", (unsigned long long)files,
           (unsigned long long)damaged_files, (unsigned long long)points,
           (unsigned long long)bytes);
    chunk_store_close(&s);
    return damaged_files ? 1 : 0;
}

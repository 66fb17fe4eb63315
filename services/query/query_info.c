/*
 * query_info.c — --info and --list: what the data directory holds per
 * writer (chunks, bytes, points, time range, bytes per point) and which
 * tags, from the files' headers, footers and indexes (no block is decoded).
 */
#include "query.h"

#include <stdlib.h>
#include <string.h>

struct writer_info {
    char name[CHUNK_NAME_MAX + 1];
    uint64_t sealed, unsealed, damaged, bytes, points;
    int64_t oldest, newest;
};

static void add_file(struct writer_info *w, const chunk_store_file *f)
{
    if (f->kind == CHUNK_NAME_SEALED)
        w->sealed++;
    else if (f->kind == CHUNK_NAME_OPEN)
        w->unsealed++;
    else
        w->damaged++;
    w->bytes += f->scan.file_size;
    if (f->kind == CHUNK_NAME_DAMAGED)
        return; /* its points are mostly also in the truncated chunk */
    w->points += f->scan.points;
    for (size_t i = 0; i < f->scan.index.n; i++) {
        const chunk_index_entry *e = &f->scan.index.e[i];
        w->oldest = e->ts_min < w->oldest ? e->ts_min : w->oldest;
        w->newest = e->ts_max > w->newest ? e->ts_max : w->newest;
    }
}

static void print_writer(const struct writer_info *w, int format, bool last)
{
    char a[48] = "-", b[48] = "-";
    if (w->points) {
        query_format_time(w->oldest, a, sizeof a);
        query_format_time(w->newest, b, sizeof b);
    }
    double bpp = w->points ? (double)w->bytes / (double)w->points : 0;
    if (format == QUERY_JSON) {
        printf("{\"writer\":\"%s\",\"chunks\":%llu,\"sealed\":%llu,\"unsealed\":%llu,"
               "\"damaged\":%llu,\"bytes\":%llu,\"points\":%llu,\"bytes_per_point\":%.3f,"
               "\"oldest\":\"%s\",\"newest\":\"%s\"}%s",
               w->name, (unsigned long long)(w->sealed + w->unsealed + w->damaged),
               (unsigned long long)w->sealed, (unsigned long long)w->unsealed,
               (unsigned long long)w->damaged, (unsigned long long)w->bytes,
               (unsigned long long)w->points, bpp, a, b, last ? "" : ",");
    } else {
        printf("%-20s %7llu %7llu %7llu %14llu %14llu %9.3f  %s  %s\n", w->name,
               (unsigned long long)(w->sealed + w->unsealed + w->damaged),
               (unsigned long long)w->sealed, (unsigned long long)w->unsealed,
               (unsigned long long)w->bytes, (unsigned long long)w->points, bpp, a, b);
    }
}

int query_info(const char *dir, int format)
{
    chunk_store *s = NULL;
    if (chunk_store_open(dir, 0, query_progress, NULL, &s) < 0) {
        query_progress_end();
        fprintf(stderr, "shmbus-query: %s\n", chunk_last_error());
        return 2;
    }
    query_progress_end();
    struct writer_info *ws = calloc(s->nfiles + 1, sizeof *ws);
    size_t nw = 0;
    struct writer_info total = {.oldest = INT64_MAX, .newest = INT64_MIN};
    snprintf(total.name, sizeof total.name, "total");
    for (size_t i = 0; ws && i < s->nfiles; i++) {
        const chunk_store_file *f = &s->files[i];
        if (!chunk_store_file_usable(f))
            continue;
        if (nw == 0 || strcmp(ws[nw - 1].name, f->writer) != 0) {
            ws[nw] = (struct writer_info){.oldest = INT64_MAX, .newest = INT64_MIN};
            snprintf(ws[nw].name, sizeof ws[nw].name, "%s", f->writer);
            nw++;
        }
        add_file(&ws[nw - 1], f);
        add_file(&total, f);
    }
    total.sealed = total.unsealed = total.damaged = 0;
    for (size_t i = 0; i < nw; i++) {
        total.sealed += ws[i].sealed;
        total.unsealed += ws[i].unsealed;
        total.damaged += ws[i].damaged;
    }
    if (format == QUERY_JSON) {
        printf("{\"dir\":\"%s\",\"writers\":[", s->dir);
        for (size_t i = 0; i < nw; i++)
            print_writer(&ws[i], format, i + 1 == nw);
        printf("],\"total\":");
        print_writer(&total, format, true);
        printf("}\n");
    } else {
        printf("%-20s %7s %7s %7s %14s %14s %9s  %-30s  %s\n", "writer", "chunks", "sealed",
               "open", "bytes", "points", "B/point", "oldest", "newest");
        for (size_t i = 0; i < nw; i++)
            print_writer(&ws[i], format, false);
        print_writer(&total, format, false);
    }
    query_print_problems(s);
    free(ws);
    chunk_store_close(&s);
    return 0;
}

struct tag_count {
    uint32_t id;
    uint64_t points;
};

static int cmp_tag(const void *a, const void *b)
{
    const struct tag_count *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

int query_list(const char *dir, int format)
{
    chunk_store *s = NULL;
    if (chunk_store_open(dir, 0, query_progress, NULL, &s) < 0) {
        query_progress_end();
        fprintf(stderr, "shmbus-query: %s\n", chunk_last_error());
        return 2;
    }
    query_progress_end();
    chunk_catalog cat = {0};
    chunk_catalog_load(dir, &cat, s);
    size_t n = 0, cap = 0;
    struct tag_count *t = NULL;
    for (size_t i = 0; i < s->nfiles; i++) {
        const chunk_store_file *f = &s->files[i];
        if (!chunk_store_file_usable(f) || f->kind == CHUNK_NAME_DAMAGED)
            continue;
        for (size_t k = 0; k < f->scan.index.n; k++) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                struct tag_count *p = realloc(t, cap * sizeof *p);
                if (!p)
                    break;
                t = p;
            }
            t[n++] = (struct tag_count){f->scan.index.e[k].tag_id, f->scan.index.e[k].points};
        }
    }
    if (n)
        qsort(t, n, sizeof *t, cmp_tag);
    if (format == QUERY_CSV)
        puts("id,name,device,unit,points");
    for (size_t i = 0; i < n;) {
        size_t j = i;
        uint64_t points = 0;
        while (j < n && t[j].id == t[i].id)
            points += t[j++].points;
        const chunk_catalog_entry *e = chunk_catalog_get(&cat, t[i].id);
        if (format == QUERY_JSON)
            printf("{\"id\":%u,\"name\":\"%s\",\"device\":\"%s\",\"unit\":\"%s\",\"points\":%llu}\n",
                   t[i].id, e ? e->name : "", e ? e->device : "", e ? e->unit : "",
                   (unsigned long long)points);
        else
            printf("%u,%s,%s,%s,%llu\n", t[i].id, e ? e->name : "", e ? e->device : "",
                   e ? e->unit : "", (unsigned long long)points);
        i = j;
    }
    query_print_problems(s);
    free(t);
    chunk_catalog_free(&cat);
    chunk_store_close(&s);
    return 0;
}

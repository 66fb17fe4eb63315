/*
 * query_read.c — reading tags: every chunk of every writer, merged in time
 * order, records stored twice (a batch re-delivered after a writer died)
 * removed by sequence number; CSV or JSON lines on stdout.
 */
#include "query.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

size_t query_print_problems(const chunk_store *s)
{
    for (size_t i = 0; i < s->nproblems; i++)
        fprintf(stderr, "shmbus-query: %s\n", s->problems[i]);
    return s->nproblems;
}

static bool all_digits(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return false;
    return true;
}

/* The shortest decimal form that reads back as the same double (22.2, not
 * 22.199999999999999). */
static void format_double(double v, char *buf, size_t len)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, len, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            return;
    }
}

static void print_value_json(double v)
{
    char b[40];
    if (isnan(v)) {
        fputs("\"NaN\"", stdout);
    } else if (isinf(v)) {
        fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", stdout);
    } else {
        format_double(v, b, sizeof b);
        fputs(b, stdout);
    }
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void print_csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void print_points(const chunk_series *p, const char *label, int format)
{
    char t[48];
    for (size_t i = 0; i < p->n; i++) {
        query_format_time(p->ts[i], t, sizeof t);
        if (format == QUERY_JSON) {
            printf("{\"time\":\"%s\",\"time_ns\":%lld,\"tag\":", t, (long long)p->ts[i]);
            print_json_string(label);
            fputs(",\"value\":", stdout);
            print_value_json(p->value[i]);
            printf(",\"quality\":\"%s\",\"exception\":%u,\"seq\":%llu}\n",
                   shm_quality_name(p->quality[i]), p->exception[i],
                   (unsigned long long)p->seq[i]);
        } else {
            fputs(t, stdout);
            putchar(',');
            print_csv_field(label);
            char v[40];
            format_double(p->value[i], v, sizeof v);
            printf(",%s,%s,%u,%llu\n", v, shm_quality_name(p->quality[i]), p->exception[i],
                   (unsigned long long)p->seq[i]);
        }
    }
}

int query_read(const char *dir, const char *const *tags, int ntags, int64_t from, int64_t to,
               int format)
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
    int status = 0;
    uint32_t ids[64];
    char labels[64][96];
    for (int i = 0; i < ntags; i++) {
        if (all_digits(tags[i]) && strtoull(tags[i], NULL, 10) <= UINT32_MAX) {
            ids[i] = (uint32_t)strtoull(tags[i], NULL, 10);
            const chunk_catalog_entry *e = chunk_catalog_get(&cat, ids[i]);
            snprintf(labels[i], sizeof labels[i], "%s", e && e->name[0] ? e->name : tags[i]);
        } else if (chunk_catalog_lookup(&cat, tags[i], &ids[i]) == 0) {
            snprintf(labels[i], sizeof labels[i], "%s", tags[i]);
        } else {
            fprintf(stderr, "shmbus-query: unknown tag '%s' (no catalog in %s names it; give its id)\n",
                    tags[i], dir);
            status = 2;
        }
    }
    if (status) {
        chunk_catalog_free(&cat);
        chunk_store_close(&s);
        return status;
    }
    size_t before = s->nproblems;
    query_print_problems(s);
    if (format == QUERY_CSV)
        puts("time,tag,value,quality,exception,seq");
    chunk_series pts = {0};
    for (int i = 0; i < ntags && status != 2; i++) {
        chunk_series_clear(&pts);
        chunk_read_stats st = {0};
        int rc = chunk_store_read(s, ids[i], from, to,
                                  CHUNK_F_TS | CHUNK_F_SEQ | CHUNK_F_VALUE | CHUNK_F_QUALITY |
                                      CHUNK_F_EXCEPTION,
                                  &pts, &st);
        if (rc < 0) {
            fprintf(stderr, "shmbus-query: %s\n", chunk_last_error());
            status = 2;
            break;
        }
        print_points(&pts, labels[i], format);
        if (st.points_dropped)
            status = 1; /* and go on with the other tags */
    }
    for (size_t i = before; i < s->nproblems; i++)
        fprintf(stderr, "shmbus-query: %s\n", s->problems[i]);
    for (size_t i = 0; i < s->nfiles; i++)
        if (s->files[i].err && !s->files[i].gone)
            status = status ? status : 1; /* a file that could not be read may hold the tag */
    if (fflush(stdout) != 0)
        status = 2;
    chunk_series_free(&pts);
    chunk_catalog_free(&cat);
    chunk_store_close(&s);
    return status;
}

/*
 * shmstat.h — the parts of shmstat and how they meet: options (options.c),
 * renderers of a snapshot (text.c, json.c) and of the newest records
 * (tail.c). main.c attaches read-only and drives them.
 *
 * Exit statuses: 0 success; 1 an error while printing (stdout closed, out
 * of memory); 2 a usage error, or the segment cannot be attached (missing,
 * foreign, other layout version, truncated, permission).
 */
#ifndef SHMSTAT_H
#define SHMSTAT_H

#include "snapshot.h"

#include <shmbus/shm.h>

#include <stdio.h>

#define SHMSTAT_EXIT_OK 0
#define SHMSTAT_EXIT_RUNTIME 1
#define SHMSTAT_EXIT_ATTACH 2
#define SHMSTAT_EXIT_USAGE 2

#define SHMSTAT_TAIL_MAX 65536u

struct shmstat_options {
    char name[SHM_NAME_MAX + 1]; /* segment name (no "/shmbus." prefix) */
    int json;
    int watch;         /* -w given (or -n) */
    double interval_s; /* -w SECONDS */
    long count;        /* -n COUNT, 0 = until interrupted */
    uint32_t tail;     /* --tail N, 0 = no tail */
    int raw;           /* --raw */
};

/* Parses argv into o. Returns 0, or SHMSTAT_EXIT_USAGE after printing the
 * reason and the usage to stderr; -1 when --help printed the usage to
 * stdout (exit 0). */
int options_parse(int argc, char **argv, struct shmstat_options *o);
void options_usage(FILE *out);

/* Human-readable report of one snapshot. */
void text_render(FILE *out, const struct snapshot *s, const struct rates *r);

/* One JSON document for one snapshot; pretty = indented over several lines
 * (one-shot), else one line (watch mode prints JSON lines). */
void json_render(FILE *out, const struct snapshot *s, const struct rates *r, int pretty);

/* The newest n records: decoded or hex (text), a JSON document, or raw
 * size-prefixed buffers. Returns 0 or a negative SHM_E* code. */
int tail_render(FILE *out, const shm_segment *seg, uint32_t n, int json, int raw);

/* Formats ns since the epoch as "2026-11-23T16:40:01.123Z" into buf. */
const char *format_time(char *buf, size_t len, int64_t ns);
/* Formats a duration in seconds as "3h12m", "42.5s", "850ms". */
const char *format_age(char *buf, size_t len, double seconds);

#endif

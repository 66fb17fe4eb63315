/*
 * memprobe.h — measures shmbus-stats' own resident memory while it keeps
 * many tags: the probe creates a segment, names the tags in the catalog,
 * starts the real service with the asked window and history, takes its
 * resident memory once attached (the baseline), then puts `values`
 * records per tag into the ring (a random walk per tag, recent
 * timestamps) and samples the service's own resident memory (RssAnon +
 * RssFile: VmRSS without the segment's shared pages) every few thousand
 * records and once everything was applied. Used by t_stats_memory (which
 * asserts) and by `t_stats_memory --measure` (which prints the figures).
 */
#ifndef SHMBUS_TEST_MEMPROBE_H
#define SHMBUS_TEST_MEMPROBE_H

#include <jansson.h>
#include <stdint.h>

typedef struct memprobe_cfg {
    uint32_t tags;            /* tag ids 0..tags-1 */
    uint32_t values;          /* records per tag */
    uint32_t window;          /* --window */
    uint32_t history;         /* --history-capacity */
    uint32_t memory_limit_mb; /* --memory-limit-mb; 0: not given (the default applies) */
    int catalog;              /* name the tags in the catalog before the service starts */
} memprobe_cfg;

typedef struct memprobe_result {
    long baseline_kb; /* own RSS once attached, before any record */
    long peak_kb;     /* highest own RSS sampled while and after records flowed */
    long end_kb;      /* own RSS after every record was applied */
    uint64_t records; /* records the service applied */
    json_t *status;   /* the status reply at the end (caller decrefs) */
    json_t *tag0;     /* the stats reply for tag 0 at the end (caller decrefs) */
} memprobe_result;

/* Runs the probe; returns 0, or -1 after printing what went wrong. The
 * service is stopped (SIGTERM, then reaped) before returning. */
int memprobe_run(const memprobe_cfg *cfg, memprobe_result *out);

#endif

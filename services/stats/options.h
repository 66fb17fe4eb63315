/*
 * options.h — what shmbus-stats is told to do: the group configuration's
 * `segment`, `paths` and `stats` sections, overridden by command-line flags.
 */
#ifndef SHMBUS_STATS_OPTIONS_H
#define SHMBUS_STATS_OPTIONS_H

#include "tagstore.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define STATS_MAX_STEP_TAGS 256

typedef struct stats_options {
    const char *config_path;                    /* --config */
    char segment[32];                           /* --segment; "shmbus" */
    char run_dir[256];                          /* --run-dir; nng ipc sockets; /run/shmbus */
    char data_dir[256];                         /* --data-dir; snapshots; /var/lib/shmbus */
    uint32_t shard_k, shard_n;                  /* --shard K/N; 0/1 */
    uint32_t window;                            /* --window; rolling window values; 1000 */
    uint32_t history_s;                         /* --history-s; time-window horizon; 3600 */
    uint32_t history_capacity;                  /* --history-capacity; points per tag; 10000 */
    uint32_t snapshot_interval_s;               /* --snapshot-interval-s; 60; 0 = only on stop */
    uint32_t publish_interval_s;                /* --publish-interval-s; 5; 0 = off */
    double deadband;                            /* --deadband; a change is |delta| > deadband; 0 */
    double min_interval_ms;                     /* --min-interval-ms; 100 */
    double max_interval_ms;                     /* --max-interval-ms; 60000 */
    uint32_t max_tags;                          /* --max-tags; tag ids below it; 65536 */
    uint32_t max_request;                       /* --max-request; bytes; 65536 */
    uint32_t memory_limit_mb;                   /* --memory-limit-mb; per-tag state; 10; 0 = none */
    const char *memory_limit_name;              /* where memory_limit_mb came from, for messages */
    uint32_t planned_tags;                      /* the configuration's tags owned by this shard */
    int argc;                                   /* the command line, parsed again on SIGHUP */
    char **argv;
    const char *step_tags[STATS_MAX_STEP_TAGS]; /* --step-tag NAME (repeatable) */
    size_t n_step_tags;
} stats_options;

/* Fills defaults, then the configuration file (when --config is given), then
 * the flags. Returns 0; 1 after printing usage for --help; -1 after printing
 * what was wrong (naming the flag or the file, line and field, or the
 * memory limit that cannot hold the configured tags). */
int stats_options_parse(stats_options *o, int argc, char **argv);

/* The tag store's parameters these options ask for. */
void stats_options_store_params(const stats_options *o, store_params *p);

void stats_options_usage(FILE *f);

#endif

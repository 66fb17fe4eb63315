/*
 * service.h — shmbus-stats as a whole: one thread running a loop that
 * consumes the ring, answers queries, publishes summaries, ages histories
 * and writes snapshots. See README.md for the behaviour and its failures.
 */
#ifndef SHMBUS_STATS_SERVICE_H
#define SHMBUS_STATS_SERVICE_H

#include "endpoints.h"
#include "ingest.h"
#include "options.h"
#include "protocol.h"
#include "snapshot.h"
#include "tagstore.h"

#include <limits.h>
#include <stdint.h>

typedef struct stats_service {
    stats_options opt;
    store_params params;
    tagstore store;
    protocol proto;
    endpoints ep;
    ingest in;
    int attached;
    snapshot_identity ident; /* what the next snapshot records */
    char snapshot_path[PATH_MAX];
    int64_t started_mono_ns;
    uint64_t snapshots, snapshot_failures, summaries;
    uint64_t last_snapshot_bytes;
    int64_t last_snapshot_ns;
} stats_service;

/* Runs until SIGTERM or SIGINT; returns the process exit status. */
int stats_service_run(const stats_options *opt);

/* Writes a snapshot now; fills result (if not NULL) with path, bytes, tags.
 * Returns 0 or -errno with err set. */
int stats_service_snapshot(stats_service *sv, const char *why, char *err, size_t err_len,
                           uint64_t *bytes);

/* Publishes the periodic summary on the PUB socket; returns messages sent. */
int stats_service_publish_summary(stats_service *sv);

/* SIGHUP (reload.c): reads the configuration and flags again and applies
 * what a running process can; errors are logged, the running settings stay. */
void stats_service_reload(stats_service *sv);

/* The memory plan (memplan.c). The store's hooks for sv: the catalog's
 * count of this shard's tags, and a log line at every plan change. */
tagstore_hooks stats_memplan_hooks(stats_service *sv);
/* Logs the plan of s (the service's store, or one a snapshot is read into):
 * info when granted as asked, a warning when reduced, an error when over
 * the limit; before is the previous grant (NULL at start). */
void stats_memplan_log(const stats_service *sv, const tagstore *s, const budget_grant *before,
                       const char *why);
/* The status reply's "memory" object. */
json_t *stats_memplan_status(const stats_service *sv);

#endif

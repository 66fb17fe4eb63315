/*
 * protocol.h — the stats service's JSON request/response protocol, served
 * over nng REQ/REP (services/stats/README.md documents every request).
 *
 * protocol_handle() turns one request (bytes as received) into one response
 * and never fails the caller: malformed JSON, a request over the size cap,
 * unknown ops or tags, wrong field types, inverted ranges and requests that
 * arrive while the service is stopping all get {"error": "<reason>"} (with
 * "op" and "id" echoed when known). Pure with respect to I/O: snapshots and
 * service status come through hooks, so it is unit-testable on a bare store.
 */
#ifndef SHMBUS_STATS_PROTOCOL_H
#define SHMBUS_STATS_PROTOCOL_H

#include "tagstore.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define PROTOCOL_MAX_REQUEST_DEFAULT (64 * 1024)
#define PROTOCOL_PAGE_DEFAULT 500 /* tags per response when listing all */
#define PROTOCOL_PAGE_MAX 5000
#define PROTOCOL_RANGE_POINTS_DEFAULT 1000
#define PROTOCOL_RANGE_POINTS_MAX 20000

enum protocol_phase {
    PROTOCOL_READY = 0,
    PROTOCOL_STOPPING = 1, /* shutting down: every request gets an error */
};

typedef struct protocol_hooks {
    void *ctx;
    /* Writes a snapshot now. Returns 0 after adding path/bytes/tags to
     * result, or -errno with a reason in err. NULL: snapshots unavailable. */
    int (*snapshot)(void *ctx, json_t *result, char *err, size_t err_len);
    /* Adds service-wide fields (segment, shard, counters) to a status reply. */
    void (*status)(void *ctx, json_t *result);
    /* Wall-clock now in ns for relative times; NULL: CLOCK_REALTIME. */
    int64_t (*now_ns)(void *ctx);
} protocol_hooks;

typedef struct protocol {
    tagstore *store;
    protocol_hooks hooks;
    size_t max_request; /* bytes; 0 = PROTOCOL_MAX_REQUEST_DEFAULT */
    int phase;          /* enum protocol_phase */
    uint64_t requests, errors;
} protocol;

/* Answers one request; returns a malloc'd JSON text (free it), NULL only
 * when out of memory. *is_error (if not NULL) is set when it is an error. */
char *protocol_handle(protocol *p, const void *request, size_t len, int *is_error);

/* The statistics of one tag as a JSON object (also used by the summary). */
json_t *protocol_tag_stats(tag_state *t, const store_params *params);

/* One tag's suggested interval entry {"id","name","suggested_interval_ms",...}. */
json_t *protocol_tag_interval(tag_state *t, const store_params *params);

#endif

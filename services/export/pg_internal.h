/*
 * pg_internal.h — private to the PostgreSQL target (pg_*.c): schema setup
 * and the binary COPY encoder. Not a public API.
 */
#ifndef SHMBUS_EXPORT_PG_INTERNAL_H
#define SHMBUS_EXPORT_PG_INTERNAL_H

#include "export.h"

#include <libpq-fe.h>

/* Creates or checks the tables of schemas/postgres.sql and returns this
 * source's id. Runs its own transaction. Returns 0, EXPORT_EREJECT
 * (incompatible tables, newer schema, permissions) or EXPORT_EDOWN
 * (connection lost), with the reason. */
int pg_schema_ensure(PGconn *conn, const char *source, int32_t *source_id, char *reason,
                     size_t len);

/* The DDL text (schemas/postgres.sql as compiled in). */
const char *pg_schema_sql(void);

/* The server's or libpq's message for res (or conn), on one line. */
void pg_error_text(const PGconn *conn, const PGresult *res, char *out, size_t len);

/* ------------------------------------------------------------ lanes */

/* One connection delivering one batch at a time without blocking
 * (pg_lane.c). The target keeps export.postgres.connections of them. */
#define PG_MAX_LANES 4
#define PG_DEFAULT_LANES 2 /* what the loader's default is */
_Static_assert(PG_MAX_LANES <= EXPORT_MAX_WINDOW, "the engine holds one batch per lane");
#define PG_LANE_TAGS 1024 /* tag rows upserted with one batch at most */

typedef enum pg_lane_state {
    LANE_IDLE,        /* no batch */
    LANE_STARTING,    /* "BEGIN; COPY ..." sent, waiting for COPY IN */
    LANE_COPYING,     /* sending rows */
    LANE_ENDING,      /* rows sent, waiting for the COPY's result */
    LANE_FINISHING,   /* "[tags;] [insert;] COMMIT" sent */
    LANE_DRAINING,    /* an error came: reading to the end of the command */
    LANE_ROLLING_BACK, /* the direct COPY met an existing row: ROLLBACK, then redo */
    LANE_RESTART,     /* (drain target) redo the batch deduplicating at once */
    LANE_DONE,        /* committed */
    LANE_FAILED,      /* error and reason say why */
} pg_lane_state;

typedef struct pg_lane {
    PGconn *conn;
    pg_lane_state state, drain_then;
    const export_batch *b;
    uint64_t id;
    bool dedupe;
    bool autocommit; /* a bare COPY: its own transaction */
    bool copy_ok;    /* the COPY's result said COPY n */
    bool flushing;   /* libpq still holds output for the socket */
    char *copybuf;
    size_t copylen, copypos, copycap;
    char *sql;
    size_t sqlcap;
    uint32_t tags[PG_LANE_TAGS];         /* tag ids upserted with this batch */
    uint32_t tag_versions[PG_LANE_TAGS]; /* the catalog versions written */
    uint32_t n_tags;
    int statement, expect;
    uint64_t inserted;
    bool committed;
    int error; /* EXPORT_E* when FAILED */
    char reason[EXPORT_REASON_MAX];
} pg_lane;

/* What a lane needs from its target to write a batch. */
typedef struct pg_lane_ctx {
    int32_t source_id;
    export_catalog *cat;
    const uint32_t *synced; /* per tag id: catalog version already in shmbus_tags */
    uint32_t n_synced;
} pg_lane_ctx;

/* Starts delivering b on an idle, connected lane. Returns 0 or the error
 * (the lane is then FAILED with the reason). */
int pg_lane_start(pg_lane *l, const export_batch *b, bool dedupe, const pg_lane_ctx *ctx);
/* Makes what progress is possible without blocking; returns the state. */
pg_lane_state pg_lane_advance(pg_lane *l, const pg_lane_ctx *ctx);
/* poll() events the lane waits for (0 when it waits for nothing). */
short pg_lane_events(const pg_lane *l);
void pg_lane_reset(pg_lane *l); /* back to IDLE, connection kept */
void pg_lane_close(pg_lane *l); /* connection closed, IDLE */
void pg_lane_free(pg_lane *l);

/* Binary COPY of rows into (time, source_id, tag_id, value, raw, quality,
 * exception, seq). */
#define PG_COPY_COLUMNS "(time, source_id, tag_id, value, raw, quality, exception, seq)"
/* Bytes pg_copy_encode writes for n rows. */
size_t pg_copy_size(size_t n);
/* Encodes header, rows and trailer into buf (pg_copy_size(n) bytes). */
void pg_copy_encode(const export_row *rows, size_t n, int32_t source_id, char *buf);
/* Microseconds since 2000-01-01 UTC (PostgreSQL's timestamptz) from Unix ns. */
int64_t pg_timestamp_us(int64_t unix_ns);

#endif

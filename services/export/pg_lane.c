/*
 * pg_lane.c — one PostgreSQL connection delivering one batch at a time,
 * without blocking: the PostgreSQL target drives two lanes, so that one
 * batch's COPY runs while the other's COMMIT waits for the disk.
 *
 * A batch is one transaction, in one of two ways (under backlog the engine's
 * batch groups several ring batches: still one COPY and one COMMIT):
 *
 *   direct (a batch fresh from the ring, the common case):
 *     COPY shmbus_values FROM STDIN (FORMAT binary)   -- its own transaction
 *     <rows>
 *   or, when tag rows go with it:
 *     BEGIN; COPY shmbus_values FROM STDIN (FORMAT binary)
 *     <rows>
 *     INSERT INTO shmbus_tags ... ON CONFLICT DO UPDATE; COMMIT
 *   deduplicating (a batch that may have been delivered before: taken over
 *   from a dead member, replayed from the spool, retried after a failure;
 *   or a direct COPY that hit the unique key):
 *     BEGIN; COPY shmbus_stage FROM STDIN (FORMAT binary)
 *     <rows>
 *     [tags;] INSERT INTO shmbus_values SELECT ... FROM shmbus_stage
 *         ON CONFLICT (source_id, seq) DO NOTHING; COMMIT
 *
 * shmbus_stage is a session-local temporary table emptied at every commit.
 * The unique key (source_id, seq) is what makes both exactly once: a direct
 * COPY either inserts every row or fails as a whole on the first row the
 * table already has (unique_violation); the lane then rolls back and redoes
 * the batch the deduplicating way, which inserts only the missing rows. A
 * batch delivered twice therefore inserts nothing the second time. The lane
 * reports DONE only when COMMIT answered "COMMIT" or, for a COPY that is
 * its own transaction, when the server said it is ready for the next query
 * after the COPY's result without an error (PostgreSQL commits an implicit
 * transaction between the two, flushing its WAL first). Anything else (an
 * error, a lost connection, an aborted transaction answering ROLLBACK) is
 * FAILED and the batch stays unacknowledged in the ring.
 *
 * Why two ways: the staging table costs a second write of every row and an
 * INSERT ... SELECT; skipping it when no row can be there yet keeps the
 * export close to a plain COPY (tests/bench/bench_export.c measures both
 * against psql's \copy).
 *
 * Tag rows are upserted in ascending tag id, so that two lanes upserting
 * the same tags take their row locks in the same order and never deadlock.
 */
#include "pg_internal.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_UPSERT_PREFIX                                                                        \
    "INSERT INTO shmbus_tags (source_id, tag_id, name, device, unit, data_type) VALUES "
#define TAG_UPSERT_SUFFIX                                                                        \
    " ON CONFLICT (source_id, tag_id) DO UPDATE SET name = EXCLUDED.name, device = "           \
    "EXCLUDED.device, unit = EXCLUDED.unit, data_type = EXCLUDED.data_type, updated_at = now() " \
    "WHERE (shmbus_tags.name, shmbus_tags.device, shmbus_tags.unit, shmbus_tags.data_type) IS " \
    "DISTINCT FROM (EXCLUDED.name, EXCLUDED.device, EXCLUDED.unit, EXCLUDED.data_type); "
#define VALUES_INSERT                                                                            \
    "INSERT INTO shmbus_values " PG_COPY_COLUMNS " SELECT time, source_id, tag_id, value, raw, " \
    "quality, exception, seq FROM shmbus_stage ON CONFLICT (source_id, seq) DO NOTHING; "
#define START_DIRECT "BEGIN; COPY shmbus_values " PG_COPY_COLUMNS " FROM STDIN (FORMAT binary)"
#define START_AUTOCOMMIT "COPY shmbus_values " PG_COPY_COLUMNS " FROM STDIN (FORMAT binary)"
#define START_DEDUPE "BEGIN; COPY shmbus_stage " PG_COPY_COLUMNS " FROM STDIN (FORMAT binary)"
#define UNIQUE_VIOLATION "23505"
#define COPY_CHUNK (64 * 1024)

/* ----------------------------------------------------------- SQL text */

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    char *p = realloc(*buf, c);
    if (!p)
        return EXPORT_ENOMEM;
    *buf = p;
    *cap = c;
    return 0;
}

static int append_text(pg_lane *l, size_t *used, const char *text)
{
    size_t n = strlen(text);
    if (grow(&l->sql, &l->sqlcap, *used + n + 1) != 0)
        return EXPORT_ENOMEM;
    memcpy(l->sql + *used, text, n + 1);
    *used += n;
    return 0;
}

/* Appends 'text' as an escaped SQL literal. */
static int append_literal(pg_lane *l, size_t *used, const char *text)
{
    size_t n = strlen(text);
    if (grow(&l->sql, &l->sqlcap, *used + 2 * n + 8) != 0)
        return EXPORT_ENOMEM;
    int err = 0;
    l->sql[(*used)++] = '\'';
    *used += PQescapeStringConn(l->conn, l->sql + *used, text, n, &err);
    l->sql[(*used)++] = '\'';
    l->sql[*used] = '\0';
    return err ? EXPORT_EREJECT : 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the tags of b whose catalog entry is not in shmbus_tags yet (at
 * most PG_LANE_TAGS per batch; the rest follow with later batches), in
 * ascending id. */
static void pick_tags(pg_lane *l, const export_batch *b, const pg_lane_ctx *ctx)
{
    l->n_tags = 0;
    for (size_t i = 0; i < b->n && l->n_tags < PG_LANE_TAGS; i++) {
        uint32_t id = b->rows[i].tag_id;
        if (id >= ctx->n_synced)
            continue;
        const export_tag *tag = export_catalog_get(ctx->cat, id);
        if (!tag->known || ctx->synced[id] == tag->version)
            continue;
        bool listed = false;
        for (uint32_t k = 0; k < l->n_tags && !listed; k++)
            listed = l->tags[k] == id;
        if (!listed)
            l->tags[l->n_tags++] = id;
    }
    qsort(l->tags, l->n_tags, sizeof l->tags[0], cmp_u32);
}

/* "[tag upsert;] [values insert;] COMMIT" into l->sql. */
static int build_finish_sql(pg_lane *l, const pg_lane_ctx *ctx)
{
    size_t used = 0;
    int rc = 0;
    for (uint32_t k = 0; k < l->n_tags && !rc; k++) {
        const export_tag *tag = export_catalog_get(ctx->cat, l->tags[k]);
        l->tag_versions[k] = tag->version;
        char head[160];
        snprintf(head, sizeof head, "%s(%d, %u, ", k ? ", " : TAG_UPSERT_PREFIX, ctx->source_id,
                 l->tags[k]);
        rc = append_text(l, &used, head);
        rc = rc ? rc : append_literal(l, &used, tag->name);
        rc = rc ? rc : append_text(l, &used, ", ");
        rc = rc ? rc : append_literal(l, &used, tag->device);
        rc = rc ? rc : append_text(l, &used, ", ");
        rc = rc ? rc : append_literal(l, &used, tag->unit);
        rc = rc ? rc : append_text(l, &used, ", ");
        rc = rc ? rc : append_literal(l, &used, tag->data_type);
        rc = rc ? rc : append_text(l, &used, ")");
    }
    if (!rc && l->n_tags)
        rc = append_text(l, &used, TAG_UPSERT_SUFFIX);
    if (!rc && l->dedupe)
        rc = append_text(l, &used, VALUES_INSERT);
    return rc ? rc : append_text(l, &used, "COMMIT");
}

/* ------------------------------------------------------------ the lane */

static pg_lane_state failed(pg_lane *l, const PGresult *res, const char *what)
{
    char msg[EXPORT_REASON_MAX - 128];
    pg_error_text(l->conn, res, msg, sizeof msg);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(l->reason, sizeof l->reason, "%s: %s%s%s%s", what, msg, state ? " (SQLSTATE " : "",
             state ? state : "", state ? ")" : "");
    l->error = PQstatus(l->conn) == CONNECTION_OK ? EXPORT_EREJECT : EXPORT_EDOWN;
    l->state = LANE_FAILED;
    return l->state;
}

static pg_lane_state failed_text(pg_lane *l, int error, const char *text)
{
    snprintf(l->reason, sizeof l->reason, "%s", text);
    l->error = error;
    l->state = LANE_FAILED;
    return l->state;
}

int pg_lane_start(pg_lane *l, const export_batch *b, bool dedupe, const pg_lane_ctx *ctx)
{
    l->b = b;
    l->id = b->id;
    l->dedupe = dedupe;
    l->inserted = 0;
    l->statement = 0;
    l->committed = false;
    l->copy_ok = false;
    l->drain_then = LANE_IDLE;
    l->reason[0] = '\0';
    size_t bytes = pg_copy_size(b->n);
    if (grow(&l->copybuf, &l->copycap, bytes) != 0) {
        failed_text(l, EXPORT_ENOMEM, "out of memory");
        return EXPORT_ENOMEM;
    }
    pg_copy_encode(b->rows, b->n, ctx->source_id, l->copybuf);
    l->copylen = bytes;
    l->copypos = 0;
    pick_tags(l, b, ctx);
    int rc = build_finish_sql(l, ctx);
    if (rc) {
        failed_text(l, rc, "building the tag upsert: out of memory or bad text");
        return rc;
    }
    l->expect = (l->n_tags ? 1 : 0) + (dedupe ? 1 : 0) + 1;
    /* Nothing to do after the rows: the COPY alone is the transaction, one
     * round trip and two statements fewer. */
    l->autocommit = !dedupe && l->n_tags == 0;
    if (!PQsendQuery(l->conn, dedupe ? START_DEDUPE : l->autocommit ? START_AUTOCOMMIT : START_DIRECT)) {
        failed(l, NULL, "starting COPY");
        return l->error;
    }
    l->flushing = true;
    l->state = LANE_STARTING;
    return 0;
}

/* Handles one result of the current command string; NULL is its end. */
static void on_result(pg_lane *l, PGresult *res, const pg_lane_ctx *ctx)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_COMMAND_OK;
    if (l->state == LANE_DRAINING) { /* after an error: wait for the end, then act */
        if (!res) {
            if (l->drain_then == LANE_RESTART) {
                if (pg_lane_start(l, l->b, true, ctx) != 0)
                    l->state = LANE_FAILED;
            } else if (l->drain_then == LANE_ROLLING_BACK) {
                if (PQsendQuery(l->conn, "ROLLBACK")) {
                    l->flushing = true;
                    l->state = LANE_ROLLING_BACK;
                } else {
                    failed(l, NULL, "ROLLBACK");
                }
            } else {
                l->state = LANE_FAILED;
            }
        }
        return;
    }
    switch (l->state) {
    case LANE_STARTING:
        if (!res) {
            failed_text(l, EXPORT_EREJECT, "starting COPY: no COPY response");
        } else if (st == PGRES_COPY_IN) {
            l->state = LANE_COPYING;
        } else if (st != PGRES_COMMAND_OK) { /* BEGIN answers COMMAND_OK first */
            failed(l, res, "starting COPY");
            l->drain_then = LANE_FAILED;
            l->state = LANE_DRAINING;
        }
        break;
    case LANE_ENDING:
        if (!res && l->autocommit) { /* ready for the next query: committed */
            l->state = l->copy_ok ? LANE_DONE : LANE_FAILED;
            if (!l->copy_ok)
                failed_text(l, EXPORT_EREJECT, "COPY into shmbus_values: no result");
        } else if (!res) { /* end of "BEGIN; COPY": tags, values, COMMIT */
            if (PQsendQuery(l->conn, l->sql)) {
                l->flushing = true;
                l->state = LANE_FINISHING;
            } else {
                failed(l, NULL, "sending COMMIT");
            }
        } else if (st != PGRES_COMMAND_OK) {
            const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
            bool conflict = !l->dedupe && code && strcmp(code, UNIQUE_VIOLATION) == 0;
            failed(l, res, l->dedupe ? "COPY into the staging table" : "COPY into shmbus_values");
            /* A row is there already: roll back (an implicit transaction
             * is gone already), then redo it deduplicating. */
            l->drain_then = conflict ? (l->autocommit ? LANE_RESTART : LANE_ROLLING_BACK) : LANE_FAILED;
            l->state = LANE_DRAINING;
        } else {
            l->copy_ok = true;
            if (!l->dedupe)
                l->inserted = strtoull(PQcmdTuples(res), NULL, 10);
        }
        break;
    case LANE_FINISHING:
        if (!res) {
            if (l->committed)
                l->state = LANE_DONE;
            else
                failed_text(l, PQstatus(l->conn) == CONNECTION_OK ? EXPORT_EREJECT : EXPORT_EDOWN,
                            "the transaction was not committed");
            break;
        }
        l->statement++;
        if (st != PGRES_COMMAND_OK) {
            const char *what = l->statement == l->expect                     ? "COMMIT"
                               : l->dedupe && l->statement == l->expect - 1 ? "INSERT into shmbus_values"
                                                                              : "upserting shmbus_tags";
            failed(l, res, what);
            l->drain_then = LANE_FAILED;
            l->state = LANE_DRAINING;
            break;
        }
        if (l->dedupe && l->statement == l->expect - 1)
            l->inserted = strtoull(PQcmdTuples(res), NULL, 10);
        if (l->statement == l->expect)
            l->committed = strcmp(PQcmdStatus(res), "COMMIT") == 0;
        break;
    case LANE_ROLLING_BACK:
        if (!res && pg_lane_start(l, l->b, true, ctx) != 0)
            l->state = LANE_FAILED;
        break;
    default:
        break;
    }
}

/* Sends what the COPY still has to send; false while the socket is full. */
static bool push_copy(pg_lane *l)
{
    while (l->copypos < l->copylen) {
        size_t n = l->copylen - l->copypos < COPY_CHUNK ? l->copylen - l->copypos : COPY_CHUNK;
        int r = PQputCopyData(l->conn, l->copybuf + l->copypos, (int)n);
        if (r == 0)
            return false;
        if (r < 0) {
            failed(l, NULL, "sending COPY data");
            return false;
        }
        l->copypos += n;
    }
    int r = PQputCopyEnd(l->conn, NULL);
    if (r == 0)
        return false;
    if (r < 0) {
        failed(l, NULL, "ending COPY");
        return false;
    }
    l->flushing = true;
    l->state = LANE_ENDING;
    return true;
}

pg_lane_state pg_lane_advance(pg_lane *l, const pg_lane_ctx *ctx)
{
    for (int guard = 0; guard < 64; guard++) {
        if (l->state == LANE_IDLE || l->state == LANE_DONE || l->state == LANE_FAILED)
            return l->state;
        if (l->state == LANE_COPYING && !push_copy(l))
            return l->state;
        if (l->flushing) {
            int f = PQflush(l->conn);
            if (f < 0)
                return failed(l, NULL, "sending to the server");
            if (f > 0)
                return l->state; /* wait until the socket takes more */
            l->flushing = false;
        }
        if (!PQconsumeInput(l->conn))
            return failed(l, NULL, "reading from the server");
        bool progressed = false;
        pg_lane_state before = l->state;
        while (!PQisBusy(l->conn) && l->state == before) {
            PGresult *res = PQgetResult(l->conn);
            on_result(l, res, ctx);
            PQclear(res);
            progressed = true;
            if (l->state == LANE_COPYING || l->state == LANE_DONE || l->state == LANE_FAILED)
                break;
        }
        if (!progressed)
            return l->state; /* waiting for the server */
    }
    return l->state;
}

short pg_lane_events(const pg_lane *l)
{
    if (l->state == LANE_IDLE || l->state == LANE_DONE || l->state == LANE_FAILED)
        return 0;
    return (short)(POLLIN | (l->flushing || l->state == LANE_COPYING ? POLLOUT : 0));
}

void pg_lane_reset(pg_lane *l)
{
    l->state = LANE_IDLE;
    l->b = NULL;
    l->id = 0;
}

void pg_lane_close(pg_lane *l)
{
    if (l->conn)
        PQfinish(l->conn);
    l->conn = NULL;
    pg_lane_reset(l);
}

void pg_lane_free(pg_lane *l)
{
    pg_lane_close(l);
    free(l->copybuf);
    free(l->sql);
    memset(l, 0, sizeof *l);
}

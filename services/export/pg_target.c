/*
 * pg_target.c — the PostgreSQL target: libpq, one connection per process.
 *
 * A batch is one transaction, in one of two ways:
 *
 *   direct (a batch fresh from the ring, the common case):
 *     BEGIN; COPY shmbus_values FROM STDIN (FORMAT binary)     -- round trip 1
 *     <rows>                                                   -- round trip 2
 *     [INSERT INTO shmbus_tags ... ON CONFLICT DO UPDATE;] COMMIT -- round trip 3
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
 * table already has (unique_violation), and is then redone the
 * deduplicating way, which inserts only the missing rows. A batch delivered
 * twice (its exporter died after COMMIT and before acknowledging it in the
 * ring) therefore inserts nothing the second time. The batch is confirmed
 * to the engine only when COMMIT returned "COMMIT"; anything else (error,
 * lost connection, an aborted transaction answering ROLLBACK) leaves it
 * unacknowledged in the ring.
 *
 * Why two ways: the staging table costs a second write of every row and
 * an INSERT ... SELECT; skipping it when no row can be there yet keeps the
 * export close to a plain COPY (tests/bench/bench_export.c measures both
 * against psql's \copy).
 *
 * Secrets: the password comes from export.postgres.password_file (or libpq's
 * own PGPASSWORD / PGPASSFILE) and is handed to libpq only; logs describe
 * the target by host, port, database and user.
 */
#include "pg_internal.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
#define UNIQUE_VIOLATION "23505"

typedef struct pg_target {
    char *conninfo;
    char password[512];
    bool have_password;
    char connect_timeout[16];
    char source[256];
    char describe[512];
    PGconn *conn;
    int32_t source_id;
    export_catalog *cat;
    uint32_t *synced; /* per tag id: catalog version already in shmbus_tags (0: none) */
    uint32_t *pending_tags; /* tag ids this batch upserts */
    uint32_t n_synced;
    char *copybuf;
    size_t copycap;
    char *sql;
    size_t sqlcap;
    bool confirmed;          /* the last submitted batch is committed, not yet collected */
    uint64_t confirmed_dups; /* rows of it the table already had */
} pg_target;

/* ------------------------------------------------------------ describe */

/* "postgres host=... port=... dbname=... user=..." from the conninfo,
 * without the password (and without anything else that might hold one). */
static int describe_conninfo(pg_target *t, char *reason, size_t len)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(t->conninfo, &err);
    if (!opts) {
        /* libpq's message quotes the part it could not parse; keep it only
         * when the string holds no password. */
        bool secret = strstr(t->conninfo, "password") != NULL || strchr(t->conninfo, '@');
        snprintf(reason, len, "export.postgres.conninfo is not a libpq connection string or URI%s%s",
                 secret || !err ? "" : ": ", secret || !err ? "" : err);
        size_t n = strlen(reason);
        while (n && reason[n - 1] == '\n')
            reason[--n] = '\0';
        PQfreemem(err);
        return EXPORT_EREJECT;
    }
    const char *keys[] = {"host", "hostaddr", "port", "dbname", "user", "sslmode"};
    size_t used = 0;
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        for (PQconninfoOption *o = opts; o->keyword; o++) {
            if (strcmp(o->keyword, keys[k]) != 0 || !o->val || !*o->val)
                continue;
            int n = snprintf(t->describe + used, sizeof t->describe - used, "%s%s=%s",
                             used ? " " : "", o->keyword, o->val);
            if (n > 0 && used + (size_t)n < sizeof t->describe)
                used += (size_t)n;
        }
    }
    if (!used)
        snprintf(t->describe, sizeof t->describe, "(libpq defaults: PGHOST, PGDATABASE, ...)");
    PQconninfoFree(opts);
    return 0;
}

static const char *pg_describe(void *impl)
{
    return ((pg_target *)impl)->describe;
}

/* ----------------------------------------------------------- connection */

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* "relation already exists, skipping" and the like */
}

static void pg_disconnect(void *impl)
{
    pg_target *t = impl;
    if (t->conn) {
        PQfinish(t->conn);
        t->conn = NULL;
    }
}

static int pg_connect(void *impl, char *reason, size_t len)
{
    pg_target *t = impl;
    pg_disconnect(t);
    /* Order matters: later entries override earlier ones, and the expanded
     * conninfo sits in the middle: the conninfo may override the timeout and
     * application name, the password file overrides the conninfo. */
    const char *keys[6], *vals[6];
    int k = 0;
    keys[k] = "connect_timeout", vals[k++] = t->connect_timeout;
    keys[k] = "application_name", vals[k++] = "shmbus-export";
    keys[k] = "dbname", vals[k++] = t->conninfo;
    if (t->have_password)
        keys[k] = "password", vals[k++] = t->password;
    keys[k] = NULL, vals[k] = NULL;
    t->conn = PQconnectdbParams(keys, vals, 1);
    if (!t->conn) {
        snprintf(reason, len, "out of memory creating the connection");
        return EXPORT_ENOMEM;
    }
    if (PQstatus(t->conn) != CONNECTION_OK) {
        pg_error_text(t->conn, NULL, reason, len);
        return EXPORT_EDOWN;
    }
    PQsetNoticeProcessor(t->conn, quiet_notices, NULL);
    int rc = pg_schema_ensure(t->conn, t->source, &t->source_id, reason, len);
    if (rc)
        return rc;
    PGresult *res = PQexec(t->conn, "CREATE TEMP TABLE IF NOT EXISTS shmbus_stage "
                                    "(LIKE shmbus_values) ON COMMIT DELETE ROWS");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char msg[EXPORT_REASON_MAX];
        pg_error_text(t->conn, res, msg, sizeof msg);
        snprintf(reason, len, "creating the staging table: %s", msg);
        PQclear(res);
        return PQstatus(t->conn) == CONNECTION_OK ? EXPORT_EREJECT : EXPORT_EDOWN;
    }
    PQclear(res);
    /* A new session may talk to a database that lost or never had our tag
     * rows: send every tag again as it appears. */
    memset(t->synced, 0, (size_t)t->n_synced * sizeof *t->synced);
    return 0;
}

/* ---------------------------------------------------------------- send */

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

/* Appends 'text' as an escaped SQL literal. */
static int append_literal(pg_target *t, size_t *used, const char *text)
{
    size_t n = strlen(text);
    if (grow(&t->sql, &t->sqlcap, *used + 2 * n + 8) != 0)
        return EXPORT_ENOMEM;
    int err = 0;
    t->sql[(*used)++] = '\'';
    *used += PQescapeStringConn(t->conn, t->sql + *used, text, n, &err);
    t->sql[(*used)++] = '\'';
    t->sql[*used] = '\0';
    return err ? EXPORT_EREJECT : 0;
}

static int append_text(pg_target *t, size_t *used, const char *text)
{
    size_t n = strlen(text);
    if (grow(&t->sql, &t->sqlcap, *used + n + 1) != 0)
        return EXPORT_ENOMEM;
    memcpy(t->sql + *used, text, n + 1);
    *used += n;
    return 0;
}

/* Builds "[tag upsert;] [values insert;] COMMIT" into t->sql; fills
 * pending_tags with the tags it upserts. Returns 0 or a code. */
static int build_finish_sql(pg_target *t, const export_batch *b, bool dedupe, uint32_t *n_pending)
{
    size_t used = 0;
    *n_pending = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t id = b->rows[i].tag_id;
        const export_tag *tag = export_catalog_get(t->cat, id);
        if (!tag->known || id >= t->n_synced || t->synced[id] == tag->version)
            continue;
        bool listed = false;
        for (uint32_t k = 0; k < *n_pending && !listed; k++)
            listed = t->pending_tags[k] == id;
        if (listed || *n_pending >= 1024) /* the rest follows with the next batch */
            continue;
        char head[160];
        snprintf(head, sizeof head, "%s(%d, %u, ", *n_pending ? ", " : TAG_UPSERT_PREFIX,
                 t->source_id, id);
        int rc = append_text(t, &used, head);
        rc = rc ? rc : append_literal(t, &used, tag->name);
        rc = rc ? rc : append_text(t, &used, ", ");
        rc = rc ? rc : append_literal(t, &used, tag->device);
        rc = rc ? rc : append_text(t, &used, ", ");
        rc = rc ? rc : append_literal(t, &used, tag->unit);
        rc = rc ? rc : append_text(t, &used, ", ");
        rc = rc ? rc : append_literal(t, &used, tag->data_type);
        rc = rc ? rc : append_text(t, &used, ")");
        if (rc)
            return rc;
        t->pending_tags[(*n_pending)++] = id;
    }
    int rc = *n_pending ? append_text(t, &used, TAG_UPSERT_SUFFIX) : 0;
    if (!rc && dedupe)
        rc = append_text(t, &used, VALUES_INSERT);
    return rc ? rc : append_text(t, &used, "COMMIT");
}

/* Reports a failed step; the transaction is rolled back when the
 * connection still works. */
static int step_failed(pg_target *t, PGresult *res, const char *what, char *reason, size_t len)
{
    char msg[EXPORT_REASON_MAX];
    pg_error_text(t->conn, res, msg, sizeof msg);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(reason, len, "%s: %s%s%s%s", what, msg, state ? " (SQLSTATE " : "", state ? state : "",
             state ? ")" : "");
    PQclear(res);
    /* Drain whatever results are still queued, then end the transaction. */
    while ((res = PQgetResult(t->conn)) != NULL)
        PQclear(res);
    if (PQstatus(t->conn) != CONNECTION_OK)
        return EXPORT_EDOWN;
    PQclear(PQexec(t->conn, "ROLLBACK"));
    return PQstatus(t->conn) == CONNECTION_OK ? EXPORT_EREJECT : EXPORT_EDOWN;
}

/* One attempt: direct (dedupe false) or through the staging table. Sets
 * *conflict when a direct COPY met a row the table already has (the
 * transaction is rolled back, the connection still good). */
static int send_once(pg_target *t, const export_batch *b, bool dedupe, uint64_t *duplicates,
                     bool *conflict, char *reason, size_t len)
{
    *conflict = false;
    uint32_t n_tags = 0;
    int rc = build_finish_sql(t, b, dedupe, &n_tags);
    if (rc) {
        snprintf(reason, len, "building the tag upsert: %s", export_strerror(rc));
        return rc;
    }
    /* 1: open the transaction and the COPY in one round trip. */
    PGresult *res = PQexec(t->conn, dedupe ? "BEGIN; COPY shmbus_stage " PG_COPY_COLUMNS
                                             " FROM STDIN (FORMAT binary)"
                                           : "BEGIN; COPY shmbus_values " PG_COPY_COLUMNS
                                             " FROM STDIN (FORMAT binary)");
    if (PQresultStatus(res) != PGRES_COPY_IN)
        return step_failed(t, res, "starting COPY", reason, len);
    PQclear(res);
    /* 2: the rows. */
    size_t bytes = pg_copy_size(b->n);
    if (PQputCopyData(t->conn, t->copybuf, (int)bytes) != 1 || PQputCopyEnd(t->conn, NULL) != 1)
        return step_failed(t, NULL, "sending COPY data", reason, len);
    res = PQgetResult(t->conn);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        *conflict = !dedupe && state && strcmp(state, UNIQUE_VIOLATION) == 0;
        return step_failed(t, res, dedupe ? "COPY into the staging table" : "COPY into shmbus_values",
                           reason, len);
    }
    uint64_t inserted = dedupe ? 0 : strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    while ((res = PQgetResult(t->conn)) != NULL)
        PQclear(res);
    /* 3: [tags,] [values,] COMMIT: one statement list, one result each. */
    if (!PQsendQuery(t->conn, t->sql))
        return step_failed(t, NULL, "sending COMMIT", reason, len);
    int statement = 0, expect = (n_tags ? 1 : 0) + (dedupe ? 1 : 0) + 1;
    bool committed = false;
    while ((res = PQgetResult(t->conn)) != NULL) {
        statement++;
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            const char *what = statement == expect                   ? "COMMIT"
                               : dedupe && statement == expect - 1 ? "INSERT into shmbus_values"
                                                                     : "upserting shmbus_tags";
            return step_failed(t, res, what, reason, len);
        }
        if (dedupe && statement == expect - 1)
            inserted = strtoull(PQcmdTuples(res), NULL, 10);
        if (statement == expect)
            committed = strcmp(PQcmdStatus(res), "COMMIT") == 0;
        PQclear(res);
    }
    if (!committed) {
        snprintf(reason, len, "the transaction was not committed");
        return PQstatus(t->conn) == CONNECTION_OK ? EXPORT_EREJECT : EXPORT_EDOWN;
    }
    for (uint32_t k = 0; k < n_tags; k++) {
        uint32_t id = t->pending_tags[k];
        t->synced[id] = export_catalog_get(t->cat, id)->version;
    }
    *duplicates = inserted <= b->n ? b->n - inserted : 0;
    return 0;
}

/* One batch at a time: submit runs the whole transaction; collect then
 * hands over its confirmation. */
static int pg_submit(void *impl, const export_batch *b, char *reason, size_t len)
{
    pg_target *t = impl;
    uint64_t *duplicates = &t->confirmed_dups;
    t->confirmed = false;
    *duplicates = 0;
    if (!t->conn || PQstatus(t->conn) != CONNECTION_OK) {
        snprintf(reason, len, "not connected");
        return EXPORT_EDOWN;
    }
    size_t bytes = pg_copy_size(b->n);
    if (grow(&t->copybuf, &t->copycap, bytes) != 0)
        return EXPORT_ENOMEM;
    pg_copy_encode(b->rows, b->n, t->source_id, t->copybuf);
    bool conflict;
    int rc = send_once(t, b, b->may_repeat, duplicates, &conflict, reason, len);
    if (rc && conflict) {
        /* Some row is already there: redo it the deduplicating way. */
        log_debug("postgres: batch of %zu rows met existing rows; deduplicating", b->n);
        rc = send_once(t, b, true, duplicates, &conflict, reason, len);
    }
    t->confirmed = rc == 0;
    return rc;
}

static int pg_collect(void *impl, int timeout_ms, uint64_t *duplicates, int max, char *reason,
                      size_t len)
{
    pg_target *t = impl;
    (void)timeout_ms;
    (void)reason;
    (void)len;
    if (!t->confirmed || max < 1)
        return 0;
    t->confirmed = false;
    duplicates[0] = t->confirmed_dups;
    return 1;
}

static void pg_abandon(void *impl)
{
    ((pg_target *)impl)->confirmed = false;
}

static void pg_destroy(void *impl)
{
    pg_target *t = impl;
    if (!t)
        return;
    pg_disconnect(t);
    export_wipe(t->password, sizeof t->password);
    free(t->conninfo);
    free(t->synced);
    free(t->pending_tags);
    free(t->copybuf);
    free(t->sql);
    free(t);
}

static int pg_bind_catalog(void *impl, export_catalog *cat)
{
    pg_target *t = impl;
    t->cat = cat;
    t->n_synced = export_catalog_capacity(cat);
    free(t->synced);
    t->synced = calloc(t->n_synced ? t->n_synced : 1, sizeof *t->synced);
    return t->synced ? 0 : EXPORT_ENOMEM;
}

static const export_target_ops pg_ops = {
    .name = "postgres",
    .group = "export-pg",
    .window = 1,
    .connect = pg_connect,
    .submit = pg_submit,
    .collect = pg_collect,
    .disconnect = pg_disconnect,
    .abandon = pg_abandon,
    .bind_catalog = pg_bind_catalog,
    .describe = pg_describe,
    .destroy = pg_destroy,
};

int pg_target_create(const config *cfg, const char *member, export_target *out, char *reason,
                     size_t len)
{
    (void)member;
    pg_target *t = calloc(1, sizeof *t);
    if (!t || !(t->conninfo = strdup(cfg->postgres.conninfo)))
        goto oom;
    snprintf(t->connect_timeout, sizeof t->connect_timeout, "%u", cfg->postgres.connect_timeout_s);
    if (cfg->postgres.source[0]) {
        snprintf(t->source, sizeof t->source, "%s", cfg->postgres.source);
    } else {
        char host[128] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(t->source, sizeof t->source, "%s/%s", host, cfg->segment.name);
    }
    int rc = describe_conninfo(t, reason, len);
    if (rc)
        goto fail;
    if (cfg->postgres.password_file[0]) {
        bool insecure;
        rc = export_read_secret(cfg->postgres.password_file, t->password, sizeof t->password,
                                &insecure, reason, len);
        if (rc)
            goto fail;
        if (insecure)
            log_warn("postgres: password file %s may be read by group or others (chmod 600)",
                     cfg->postgres.password_file);
        t->have_password = true;
    }
    t->pending_tags = calloc(1024, sizeof *t->pending_tags);
    if (!t->pending_tags)
        goto oom;
    out->ops = &pg_ops;
    out->impl = t;
    return 0;
oom:
    snprintf(reason, len, "out of memory");
    rc = EXPORT_ENOMEM;
fail:
    pg_destroy(t);
    return rc;
}

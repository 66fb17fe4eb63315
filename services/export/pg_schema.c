/*
 * pg_schema.c — makes sure the database has the tables of
 * schemas/postgres.sql, and that tables already there are ones we can write
 * into, before the first batch is sent.
 *
 * In one transaction under an advisory lock (several exporters may start at
 * once): compare the columns of existing shmbus_* tables with what version 1
 * defines (a missing column or another type is "incompatible existing
 * table", named precisely), refuse a newer schema version, apply the DDL
 * when version 1 is not recorded yet, check the unique key that exactly-once
 * rests on, and look up (or register) this gateway's source id.
 */
#include "pg_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_sql.h" /* PG_SCHEMA_SQL: schemas/postgres.sql, generated at build time */

#define SCHEMA_VERSION 1
#define SCHEMA_LOCK_KEY 0x73686d6275730001LL /* "shmbus" + 1: the advisory lock */

typedef struct expected_column {
    const char *table, *column, *type; /* type as information_schema.columns.data_type */
} expected_column;

/* What version 1 of schemas/postgres.sql creates; kept next to the loader
 * so a table someone else made is recognised as ours or not. */
static const expected_column expected[] = {
    {"shmbus_schema", "version", "integer"},
    {"shmbus_schema", "applied_at", "timestamp with time zone"},
    {"shmbus_schema", "note", "text"},
    {"shmbus_sources", "id", "integer"},
    {"shmbus_sources", "name", "text"},
    {"shmbus_tags", "source_id", "integer"},
    {"shmbus_tags", "tag_id", "integer"},
    {"shmbus_tags", "name", "text"},
    {"shmbus_tags", "device", "text"},
    {"shmbus_tags", "unit", "text"},
    {"shmbus_tags", "data_type", "text"},
    {"shmbus_tags", "updated_at", "timestamp with time zone"},
    {"shmbus_quality", "code", "smallint"},
    {"shmbus_quality", "name", "text"},
    {"shmbus_values", "time", "timestamp with time zone"},
    {"shmbus_values", "source_id", "integer"},
    {"shmbus_values", "tag_id", "integer"},
    {"shmbus_values", "value", "double precision"},
    {"shmbus_values", "raw", "bigint"},
    {"shmbus_values", "quality", "smallint"},
    {"shmbus_values", "exception", "smallint"},
    {"shmbus_values", "seq", "bigint"},
};
#define N_EXPECTED (sizeof expected / sizeof expected[0])

const char *pg_schema_sql(void)
{
    return PG_SCHEMA_SQL;
}

/* Copies the server's message without the trailing newline. */
void pg_error_text(const PGconn *conn, const PGresult *res, char *out, size_t len)
{
    const char *m = res ? PQresultErrorMessage(res) : NULL;
    if (!m || !*m)
        m = PQerrorMessage(conn);
    snprintf(out, len, "%s", m && *m ? m : "unknown error");
    size_t n = strlen(out);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
        out[--n] = '\0';
    /* libpq's messages span lines with tab-indented hints: one line here. */
    char *w = out;
    for (const char *r = out; *r; r++) {
        char c = (*r == '\n' || *r == '\t') ? ' ' : *r;
        if (c == ' ' && w > out && w[-1] == ' ')
            continue;
        *w++ = c;
    }
    *w = '\0';
}

static int fail(PGconn *conn, PGresult *res, const char *what, char *reason, size_t len)
{
    char msg[EXPORT_REASON_MAX];
    pg_error_text(conn, res, msg, sizeof msg);
    snprintf(reason, len, "%s: %s", what, msg);
    PQclear(res);
    return PQstatus(conn) == CONNECTION_OK ? EXPORT_EREJECT : EXPORT_EDOWN;
}

static bool table_exists(PGresult *cols, const char *table)
{
    for (int i = 0; i < PQntuples(cols); i++)
        if (strcmp(PQgetvalue(cols, i, 0), table) == 0)
            return true;
    return false;
}

/* Appends "table.column is T, expected U" / "misses column" problems. */
static int check_columns(PGresult *cols, char *reason, size_t len)
{
    size_t used = 0;
    int problems = 0;
    for (size_t e = 0; e < N_EXPECTED; e++) {
        if (!table_exists(cols, expected[e].table))
            continue; /* created below */
        const char *found = NULL;
        for (int i = 0; i < PQntuples(cols); i++)
            if (strcmp(PQgetvalue(cols, i, 0), expected[e].table) == 0 &&
                strcmp(PQgetvalue(cols, i, 1), expected[e].column) == 0)
                found = PQgetvalue(cols, i, 2);
        if (found && strcmp(found, expected[e].type) == 0)
            continue;
        int n;
        if (found)
            n = snprintf(reason + used, len - used, "%s%s.%s is %s, expected %s",
                         problems ? "; " : "", expected[e].table, expected[e].column, found,
                         expected[e].type);
        else
            n = snprintf(reason + used, len - used, "%s%s has no column %s (%s)",
                         problems ? "; " : "", expected[e].table, expected[e].column,
                         expected[e].type);
        problems++;
        if (n > 0 && used + (size_t)n < len)
            used += (size_t)n;
    }
    return problems;
}

static int exec_ok(PGconn *conn, const char *sql, const char *what, char *reason, size_t len)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        return fail(conn, res, what, reason, len);
    PQclear(res);
    return 0;
}

static void rollback(PGconn *conn)
{
    if (PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, "ROLLBACK"));
}

static int check_unique_key(PGconn *conn, char *reason, size_t len)
{
    /* The unique index ON CONFLICT (source_id, seq) needs, in that order. */
    static const char *sql =
        "SELECT count(*) FROM pg_index i "
        "WHERE i.indrelid = 'shmbus_values'::regclass AND i.indisunique AND i.indpred IS NULL "
        "AND (SELECT array_agg(a.attname::text ORDER BY k.ord) "
        "     FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
        "     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) "
        "    = ARRAY['source_id', 'seq']";
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        return fail(conn, res, "checking the unique key of shmbus_values", reason, len);
    bool ok = atoi(PQgetvalue(res, 0, 0)) > 0;
    PQclear(res);
    if (!ok) {
        snprintf(reason, len,
                 "incompatible existing table: shmbus_values has no unique key on (source_id, "
                 "seq), which exactly-once delivery needs");
        return EXPORT_EREJECT;
    }
    return 0;
}

static int lookup_source(PGconn *conn, const char *source, int32_t *source_id, char *reason,
                         size_t len)
{
    const char *params[1] = {source};
    PGresult *res = PQexecParams(conn,
                                 "INSERT INTO shmbus_sources (name) VALUES ($1) "
                                 "ON CONFLICT (name) DO NOTHING",
                                 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        return fail(conn, res, "registering the source", reason, len);
    PQclear(res);
    res = PQexecParams(conn, "SELECT id FROM shmbus_sources WHERE name = $1", 1, NULL, params,
                       NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        return fail(conn, res, "looking up the source", reason, len);
    *source_id = (int32_t)atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

int pg_schema_ensure(PGconn *conn, const char *source, int32_t *source_id, char *reason,
                     size_t len)
{
    char sql[256];
    int rc = exec_ok(conn, "BEGIN", "BEGIN", reason, len);
    if (rc)
        return rc;
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%lld)", (long long)SCHEMA_LOCK_KEY);
    if ((rc = exec_ok(conn, sql, "taking the schema lock", reason, len)) != 0)
        goto fail;

    PGresult *cols = PQexec(conn,
                            "SELECT table_name::text, column_name::text, data_type::text "
                            "FROM information_schema.columns "
                            "WHERE table_schema = current_schema() AND table_name IN "
                            "('shmbus_schema', 'shmbus_sources', 'shmbus_tags', "
                            "'shmbus_quality', 'shmbus_values')");
    if (PQresultStatus(cols) != PGRES_TUPLES_OK) {
        rc = fail(conn, cols, "reading existing tables", reason, len);
        goto fail;
    }
    char problems[EXPORT_REASON_MAX - 64];
    problems[0] = '\0';
    int n_problems = check_columns(cols, problems, sizeof problems);
    bool have_version_table = table_exists(cols, "shmbus_schema");
    PQclear(cols);
    if (n_problems) {
        snprintf(reason, len, "incompatible existing table: %s", problems);
        rc = EXPORT_EREJECT;
        goto fail;
    }

    int applied = 0;
    if (have_version_table) {
        PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM shmbus_schema");
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            rc = fail(conn, res, "reading shmbus_schema", reason, len);
            goto fail;
        }
        applied = atoi(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    if (applied > SCHEMA_VERSION) {
        snprintf(reason, len,
                 "database schema version %d is newer than this shmbus-export knows (%d)",
                 applied, SCHEMA_VERSION);
        rc = EXPORT_EREJECT;
        goto fail;
    }
    if (applied < SCHEMA_VERSION &&
        (rc = exec_ok(conn, pg_schema_sql(), "creating tables (schemas/postgres.sql)", reason,
                      len)) != 0)
        goto fail;
    if ((rc = check_unique_key(conn, reason, len)) != 0)
        goto fail;
    if ((rc = lookup_source(conn, source, source_id, reason, len)) != 0)
        goto fail;
    return exec_ok(conn, "COMMIT", "COMMIT of the schema", reason, len);
fail:
    rollback(conn);
    return rc;
}

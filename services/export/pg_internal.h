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

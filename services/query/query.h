/*
 * query.h — what shmbus-query's files share: time parsing and printing, the
 * three modes (read a tag, verify, info) and progress on a terminal.
 */
#ifndef SHMBUS_QUERY_H
#define SHMBUS_QUERY_H

#include "chunk.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Parses epoch nanoseconds ("1767225600000000000") or ISO 8601
 * ("2026-01-01", "2026-01-01T00:00:00Z", "2026-01-01T01:00:00.5+01:00";
 * no zone means UTC). Returns 0 or -1. */
int query_parse_time(const char *s, int64_t *ns);
/* Writes "2026-01-01T00:00:00.000000000Z" (UTC) into buf (>= 40 bytes). */
void query_format_time(int64_t ns, char *buf, size_t len);

/* Progress on stderr, only when stderr is a terminal. */
void query_progress(void *ctx, size_t done, size_t total);
void query_progress_end(void);

enum query_format { QUERY_CSV = 0, QUERY_JSON = 1 };

/* Resolves the data directory the user named: DIR/chunks when it exists
 * (DIR is the writer's data_dir), else DIR itself. */
void query_chunk_dir(const char *dir, char *out, size_t len);

int query_read(const char *dir, const char *const *tags, int ntags, int64_t from, int64_t to,
               int format);
int query_verify(const char *dir);
int query_info(const char *dir, int format);
int query_list(const char *dir, int format);

/* Prints the store's problems on stderr; returns how many. */
size_t query_print_problems(const chunk_store *s);

#endif

/*
 * jsonw.h — a small streaming JSON writer for shmstat's --json output.
 *
 * Written by hand rather than with jansson because shmstat prints 64-bit
 * unsigned figures (sequence numbers, counters) that must stay exact
 * numbers, and jansson's integers are signed. Strings from the segment may
 * hold any bytes: they are escaped, and bytes that are not valid UTF-8 are
 * written as U+FFFD, so the output is always valid JSON. Non-finite doubles
 * are written as null.
 *
 * Every call takes the member key (NULL inside arrays and at the top).
 */
#ifndef SHMSTAT_JSONW_H
#define SHMSTAT_JSONW_H

#include <stdint.h>
#include <stdio.h>

#define JSONW_MAX_DEPTH 16

struct jsonw {
    FILE *out;
    int pretty; /* indent two spaces per level */
    int depth;
    int has_items[JSONW_MAX_DEPTH]; /* a comma is due before the next item */
};

void jw_init(struct jsonw *w, FILE *out, int pretty);
void jw_object_begin(struct jsonw *w, const char *key);
void jw_object_end(struct jsonw *w);
void jw_array_begin(struct jsonw *w, const char *key);
void jw_array_end(struct jsonw *w);
void jw_str(struct jsonw *w, const char *key, const char *value);
/* A string from at most len bytes of value (stops at a NUL). */
void jw_strn(struct jsonw *w, const char *key, const char *value, size_t len);
void jw_u64(struct jsonw *w, const char *key, uint64_t value);
void jw_i64(struct jsonw *w, const char *key, int64_t value);
void jw_double(struct jsonw *w, const char *key, double value);
void jw_bool(struct jsonw *w, const char *key, int value);
/* Ends the document with a newline. */
void jw_finish(struct jsonw *w);

#endif

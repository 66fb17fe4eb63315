/*
 * config_reader.h — private to the config loader: typed access to a libyaml
 * document with the field path and line of every value, so each error can
 * say "file:line: devices[1].tags[3].type: ...". Not a public API.
 *
 * Getters leave *out untouched when the key is absent (the caller set the
 * default), return 1 when a value was read, 0 when absent, and -1 after
 * recording an error. Errors accumulate in the reader; the loader checks
 * reader.errors at the end.
 */
#ifndef SHMBUS_CONFIG_READER_H
#define SHMBUS_CONFIG_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

typedef struct creader {
    const char *file;
    yaml_document_t *doc;
    char *err;
    size_t errlen;
    size_t used;
    int errors;
    int oom;
    char path[512];
    size_t pathlen;
} creader;

void cr_init(creader *r, const char *file, yaml_document_t *doc, char *err, size_t errlen);

/* Records "file:line: <path>[.field]: message". node may be NULL (line 0 is
 * then left out); field may be NULL. */
void cr_error(creader *r, const yaml_node_t *node, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Same without a node: "file: <path>: message" (whole-file problems). */
void cr_error_line(creader *r, unsigned line, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Path bookkeeping: push returns the length to pop back to. */
size_t cr_push_key(creader *r, const char *key);
size_t cr_push_index(creader *r, size_t index);
void cr_pop(creader *r, size_t saved);

unsigned cr_line(const yaml_node_t *node);
bool cr_is_null(const yaml_node_t *node);
const char *cr_scalar(const yaml_node_t *node); /* NULL when not a scalar */

/* The value under key in a mapping; NULL when absent (or map is NULL). */
yaml_node_t *cr_get(creader *r, yaml_node_t *map, const char *key);

/* Checks a node is a mapping (null counts as empty: returns 0 and sets
 * *empty); records an error and returns -1 otherwise. */
int cr_expect_map(creader *r, yaml_node_t *node, const char *what);

/* Reports every key of map not in keys (NULL-terminated), and duplicates. */
void cr_check_keys(creader *r, yaml_node_t *map, const char *const *keys);

/* Sequence access: length, or -1 (with an error) when node is not a list. */
int cr_seq_len(creader *r, yaml_node_t *node, const char *field);
yaml_node_t *cr_seq_item(creader *r, yaml_node_t *seq, int i);

int cr_u32(creader *r, yaml_node_t *map, const char *key, uint32_t min, uint32_t max,
           uint32_t *out);
int cr_u64(creader *r, yaml_node_t *map, const char *key, uint64_t min, uint64_t max,
           uint64_t *out);
/* Byte sizes: an integer with an optional suffix K, M, G, KiB, MiB, GiB
 * (all binary). */
int cr_size(creader *r, yaml_node_t *map, const char *key, uint64_t min, uint64_t max,
            uint64_t *out);
int cr_double(creader *r, yaml_node_t *map, const char *key, double min, double max,
              double *out);
int cr_bool(creader *r, yaml_node_t *map, const char *key, bool *out);
/* Strings up to max_len bytes; *out is replaced by a heap copy (the old
 * value is freed). */
int cr_str(creader *r, yaml_node_t *map, const char *key, size_t max_len, char **out);
/* One of names[] (case-insensitive); *out receives values[i]. `what` names
 * the kind in the message: "unknown data type 'flot32' (expected ...)". */
int cr_enum(creader *r, yaml_node_t *map, const char *key, const char *what,
            const char *const *names, const int *values, int *out);

/* strdup that marks the reader out of memory on failure. */
char *cr_strdup(creader *r, const char *s);

#endif

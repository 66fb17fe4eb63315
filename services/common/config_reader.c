/*
 * config_reader.c — typed, path-tracking access to a libyaml document for
 * the config loader (see config_reader.h). Every error message carries the
 * file, the line (1-based) and the dotted field path.
 */
#include "config_reader.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void cr_init(creader *r, const char *file, yaml_document_t *doc, char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    r->file = file;
    r->doc = doc;
    r->err = err;
    r->errlen = errlen;
    if (err && errlen)
        err[0] = '\0';
}

static void append(creader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(creader *r, const char *fmt, ...)
{
    if (!r->err || r->used + 1 >= r->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->err + r->used, r->errlen - r->used, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    r->used += (size_t)n;
    if (r->used >= r->errlen)
        r->used = r->errlen - 1;
}

static void verror(creader *r, unsigned line, const char *field, const char *fmt, va_list ap)
{
    r->errors++;
    if (r->errors > 32)
        return;
    if (r->used > 0)
        append(r, "\n");
    if (r->errors == 32) {
        append(r, "%s: too many errors, stopping here", r->file);
        return;
    }
    if (line)
        append(r, "%s:%u: ", r->file, line);
    else
        append(r, "%s: ", r->file);
    if (r->pathlen && field)
        append(r, "%s.%s: ", r->path, field);
    else if (r->pathlen)
        append(r, "%s: ", r->path);
    else if (field)
        append(r, "%s: ", field);
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    append(r, "%s", msg);
}

void cr_error(creader *r, const yaml_node_t *node, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(r, node ? cr_line(node) : 0, field, fmt, ap);
    va_end(ap);
}

void cr_error_line(creader *r, unsigned line, const char *field, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    verror(r, line, field, fmt, ap);
    va_end(ap);
}

size_t cr_push_key(creader *r, const char *key)
{
    size_t saved = r->pathlen;
    int n = snprintf(r->path + r->pathlen, sizeof r->path - r->pathlen, "%s%s",
                     r->pathlen ? "." : "", key);
    if (n > 0)
        r->pathlen += (size_t)n;
    if (r->pathlen >= sizeof r->path)
        r->pathlen = sizeof r->path - 1;
    return saved;
}

size_t cr_push_index(creader *r, size_t index)
{
    size_t saved = r->pathlen;
    int n = snprintf(r->path + r->pathlen, sizeof r->path - r->pathlen, "[%zu]", index);
    if (n > 0)
        r->pathlen += (size_t)n;
    if (r->pathlen >= sizeof r->path)
        r->pathlen = sizeof r->path - 1;
    return saved;
}

void cr_pop(creader *r, size_t saved)
{
    r->pathlen = saved;
    r->path[saved] = '\0';
}

unsigned cr_line(const yaml_node_t *node)
{
    return node ? (unsigned)node->start_mark.line + 1 : 0;
}

const char *cr_scalar(const yaml_node_t *node)
{
    if (!node || node->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)node->data.scalar.value;
}

bool cr_is_null(const yaml_node_t *node)
{
    if (!node)
        return true;
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = cr_scalar(node);
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

char *cr_strdup(creader *r, const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d)
        r->oom = 1;
    return d;
}

yaml_node_t *cr_get(creader *r, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const char *k = cr_scalar(yaml_document_get_node(r->doc, p->key));
        if (k && strcmp(k, key) == 0)
            return yaml_document_get_node(r->doc, p->value);
    }
    return NULL;
}

int cr_expect_map(creader *r, yaml_node_t *node, const char *what)
{
    if (node && node->type == YAML_MAPPING_NODE)
        return 1;
    if (cr_is_null(node))
        return 0;
    cr_error(r, node, NULL, "expected a mapping (%s)", what);
    return -1;
}

static void list_keys(char *buf, size_t len, const char *const *keys)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; keys[i] && used + 1 < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", keys[i]);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

void cr_check_keys(creader *r, yaml_node_t *map, const char *const *keys)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return;
    yaml_node_pair_t *start = map->data.mapping.pairs.start;
    for (yaml_node_pair_t *p = start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(r->doc, p->key);
        const char *k = cr_scalar(kn);
        if (!k) {
            cr_error(r, kn, NULL, "a key must be a plain word");
            continue;
        }
        bool known = false;
        for (size_t i = 0; keys[i]; i++)
            if (strcmp(keys[i], k) == 0)
                known = true;
        if (!known) {
            char expected[600];
            list_keys(expected, sizeof expected, keys);
            cr_error(r, kn, NULL, "unknown key '%s' (expected %s)", k, expected);
            continue;
        }
        for (yaml_node_pair_t *q = start; q < p; q++) {
            const char *k2 = cr_scalar(yaml_document_get_node(r->doc, q->key));
            if (k2 && strcmp(k2, k) == 0) {
                cr_error(r, kn, k, "duplicate key (first given on line %u)",
                         cr_line(yaml_document_get_node(r->doc, q->key)));
                break;
            }
        }
    }
}

int cr_seq_len(creader *r, yaml_node_t *node, const char *field)
{
    if (cr_is_null(node))
        return 0;
    if (node->type != YAML_SEQUENCE_NODE) {
        cr_error(r, node, field, "expected a list");
        return -1;
    }
    return (int)(node->data.sequence.items.top - node->data.sequence.items.start);
}

yaml_node_t *cr_seq_item(creader *r, yaml_node_t *seq, int i)
{
    return yaml_document_get_node(r->doc, seq->data.sequence.items.start[i]);
}

/* The scalar text under key, or NULL when absent; records an error when the
 * value is a list or mapping (*bad = 1). */
static const char *scalar_of(creader *r, yaml_node_t *map, const char *key, yaml_node_t **node,
                             const char *expected)
{
    *node = cr_get(r, map, key);
    if (!*node || cr_is_null(*node))
        return NULL;
    const char *v = cr_scalar(*node);
    if (!v) {
        cr_error(r, *node, key, "expected %s, got a %s", expected,
                 (*node)->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return "";
    }
    return v;
}

static int parse_u64(const char *v, uint64_t *out, const char **end)
{
    while (*v == ' ')
        v++;
    if (*v == '-' || *v == '+' || *v == '\0')
        return -1;
    errno = 0;
    char *e;
    unsigned long long x = strtoull(v, &e, 0);
    if (errno || e == v)
        return -1;
    *out = x;
    *end = e;
    return 0;
}

int cr_u64(creader *r, yaml_node_t *map, const char *key, uint64_t min, uint64_t max,
           uint64_t *out)
{
    yaml_node_t *n;
    const char *v = scalar_of(r, map, key, &n, "an integer");
    if (!v)
        return 0;
    if (!*v && n->type != YAML_SCALAR_NODE)
        return -1;
    uint64_t x;
    const char *end;
    if (parse_u64(v, &x, &end) < 0 || *end != '\0') {
        cr_error(r, n, key, "'%s' is not a non-negative integer", v);
        return -1;
    }
    if (x < min || x > max) {
        cr_error(r, n, key, "%llu is out of range (%llu..%llu)", (unsigned long long)x,
                 (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = x;
    return 1;
}

int cr_u32(creader *r, yaml_node_t *map, const char *key, uint32_t min, uint32_t max,
           uint32_t *out)
{
    uint64_t x = *out;
    int rc = cr_u64(r, map, key, min, max, &x);
    if (rc == 1)
        *out = (uint32_t)x;
    return rc;
}

int cr_size(creader *r, yaml_node_t *map, const char *key, uint64_t min, uint64_t max,
            uint64_t *out)
{
    yaml_node_t *n;
    const char *v = scalar_of(r, map, key, &n, "a size");
    if (!v)
        return 0;
    if (!*v && n->type != YAML_SCALAR_NODE)
        return -1;
    uint64_t x;
    const char *end;
    if (parse_u64(v, &x, &end) < 0)
        goto bad;
    while (*end == ' ')
        end++;
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0},    {"B", 0},    {"K", 10}, {"KiB", 10}, {"M", 20},
                 {"MiB", 20}, {"G", 30}, {"GiB", 30}, {"T", 40}, {"TiB", 40}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (units[i].shift && x > (UINT64_MAX >> units[i].shift))
            goto range;
        x <<= units[i].shift;
        if (x < min || x > max)
            goto range;
        *out = x;
        return 1;
    }
bad:
    cr_error(r, n, key, "'%s' is not a size (an integer with an optional K, M, G, T suffix)", v);
    return -1;
range:
    cr_error(r, n, key, "'%s' is out of range (%llu..%llu bytes)", v, (unsigned long long)min,
             (unsigned long long)max);
    return -1;
}

int cr_double(creader *r, yaml_node_t *map, const char *key, double min, double max,
              double *out)
{
    yaml_node_t *n;
    const char *v = scalar_of(r, map, key, &n, "a number");
    if (!v)
        return 0;
    if (!*v && n->type != YAML_SCALAR_NODE)
        return -1;
    errno = 0;
    char *e;
    double x = strtod(v, &e);
    if (errno || e == v || *e != '\0' || !isfinite(x)) {
        cr_error(r, n, key, "'%s' is not a finite number", v);
        return -1;
    }
    if (x < min || x > max) {
        cr_error(r, n, key, "%g is out of range (%g..%g)", x, min, max);
        return -1;
    }
    *out = x;
    return 1;
}

int cr_bool(creader *r, yaml_node_t *map, const char *key, bool *out)
{
    yaml_node_t *n;
    const char *v = scalar_of(r, map, key, &n, "true or false");
    if (!v)
        return 0;
    if (!*v && n->type != YAML_SCALAR_NODE)
        return -1;
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0) {
            *out = true;
            return 1;
        }
        if (strcasecmp(v, no[i]) == 0) {
            *out = false;
            return 1;
        }
    }
    cr_error(r, n, key, "'%s' is not a boolean (expected true or false)", v);
    return -1;
}

int cr_str(creader *r, yaml_node_t *map, const char *key, size_t max_len, char **out)
{
    yaml_node_t *n = cr_get(r, map, key);
    if (!n)
        return 0;
    const char *v = cr_scalar(n);
    if (!v) {
        cr_error(r, n, key, "expected a string, got a %s",
                 n->type == YAML_MAPPING_NODE ? "mapping" : "list");
        return -1;
    }
    if (cr_is_null(n))
        v = "";
    if (strlen(v) > max_len) {
        cr_error(r, n, key, "longer than %zu characters", max_len);
        return -1;
    }
    char *copy = cr_strdup(r, v);
    if (!copy)
        return -1;
    free(*out);
    *out = copy;
    return 1;
}

int cr_enum(creader *r, yaml_node_t *map, const char *key, const char *what,
            const char *const *names, const int *values, int *out)
{
    yaml_node_t *n;
    const char *v = scalar_of(r, map, key, &n, what);
    if (!v)
        return 0;
    if (!*v && n->type != YAML_SCALAR_NODE)
        return -1;
    for (size_t i = 0; names[i]; i++) {
        if (strcasecmp(v, names[i]) == 0) {
            *out = values[i];
            return 1;
        }
    }
    char expected[400];
    list_keys(expected, sizeof expected, names);
    cr_error(r, n, key, "unknown %s '%s' (expected %s)", what, v, expected);
    return -1;
}

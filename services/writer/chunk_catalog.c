/*
 * chunk_catalog.c — the tag catalog stored beside the chunks, so a query
 * can name tags without the shared-memory segment (which may be gone).
 *
 * Each writer keeps <writer>.catalog.json: the entries of the segment's
 * catalog it has seen, rewritten atomically (temporary file, fsync, rename,
 * directory fsync) when new tags appear. Readers merge every writer's file;
 * the newest file wins where two disagree about an id.
 *
 *   {"format": "shmbus-catalog", "version": 1, "writer": "w1",
 *    "segment": "plant", "updated_ns": 1767225600000000000,
 *    "tags": [{"id": 3, "device_id": 1, "name": "boiler.temp",
 *              "device": "plc1", "unit": "degC", "data_type": 8}]}
 */
#include "chunk_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define CATALOG_FORMAT "shmbus-catalog"
#define CATALOG_VERSION 1

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Writes the document to f entry by entry (a tree of thousands of tags
 * would cost megabytes for a moment, and the heap keeps them). Returns 0 or
 * CHUNK_ENOMEM; write errors are left in f. */
static int write_document(FILE *f, const char *writer, const char *segment,
                          const chunk_catalog_entry *e, size_t n)
{
    json_t *head = json_pack("{s:s, s:i, s:s, s:s, s:I}", "format", CATALOG_FORMAT, "version",
                             CATALOG_VERSION, "writer", writer, "segment", segment ? segment : "",
                             "updated_ns", (json_int_t)now_ns());
    char *text = head ? json_dumps(head, JSON_COMPACT) : NULL;
    json_decref(head);
    if (!text)
        return CHUNK_ENOMEM;
    text[strlen(text) - 1] = '\0'; /* the closing brace: the tags follow */
    fprintf(f, "%s, \"tags\": [", text);
    free(text);
    for (size_t i = 0; i < n; i++) {
        json_t *t = json_pack("{s:I, s:I, s:s, s:s, s:s, s:i}", "id", (json_int_t)e[i].id,
                              "device_id", (json_int_t)e[i].device_id, "name",
                              e[i].name ? e[i].name : "", "device", e[i].device ? e[i].device : "",
                              "unit", e[i].unit ? e[i].unit : "", "data_type", (int)e[i].data_type);
        int rc = t ? json_dumpf(t, f, JSON_COMPACT) : -1;
        json_decref(t);
        if (rc != 0 && !ferror(f))
            return CHUNK_ENOMEM;
        fputs(i + 1 < n ? ",\n " : "", f);
    }
    fputs("]}\n", f);
    return 0;
}

int chunk_catalog_write(int dirfd, const char *writer, const char *segment,
                        const chunk_catalog_entry *e, size_t n)
{
    char name[64], tmp[80];
    chunk_name_format(name, sizeof name, writer, 0, CHUNK_NAME_CATALOG);
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    int fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0)
        return chunk__sys_fail(errno, "create", tmp);
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int rc = chunk__sys_fail(errno, "open", tmp);
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return rc;
    }
    int rc = write_document(f, writer, segment, e, n);
    if (rc < 0)
        rc = chunk__fail(rc, "out of memory for the catalog of %s", writer);
    else if ((errno = 0, fflush(f) != 0) || ferror(f))
        rc = chunk__sys_fail(errno ? errno : EIO, "write", tmp);
    else if (fsync(fd) != 0)
        rc = chunk__sys_fail(errno, "write", tmp);
    if (fclose(f) != 0 && rc == 0)
        rc = chunk__sys_fail(errno, "write", tmp);
    if (rc == 0 && renameat(dirfd, tmp, dirfd, name) != 0)
        rc = chunk__sys_fail(errno, "rename", tmp);
    if (rc == 0)
        rc = chunk_fsync_dir(dirfd, name);
    if (rc < 0)
        unlinkat(dirfd, tmp, 0);
    return rc;
}

void chunk_catalog_free(chunk_catalog *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].name);
        free(c->e[i].device);
        free(c->e[i].unit);
    }
    free(c->e);
    memset(c, 0, sizeof *c);
}

static chunk_catalog_entry *find_id(chunk_catalog *c, uint32_t id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].id == id)
            return &c->e[i];
    return NULL;
}

static int merge_entry(chunk_catalog *c, json_t *t, int64_t updated)
{
    json_int_t id = 0, dev = 0;
    const char *name = "", *device = "", *unit = "";
    int dt = 0;
    if (json_unpack(t, "{s:I, s?I, s:s, s?s, s?s, s?i}", "id", &id, "device_id", &dev, "name",
                    &name, "device", &device, "unit", &unit, "data_type", &dt) != 0 ||
        id < 0 || id > UINT32_MAX)
        return 1; /* skipped, reported by the caller */
    chunk_catalog_entry *e = find_id(c, (uint32_t)id);
    if (e && e->updated_ns >= updated)
        return 0;
    if (!e) {
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 64;
            chunk_catalog_entry *p = realloc(c->e, cap * sizeof *p);
            if (!p)
                return CHUNK_ENOMEM;
            c->e = p;
            c->cap = cap;
        }
        e = &c->e[c->n++];
        memset(e, 0, sizeof *e);
    }
    free(e->name);
    free(e->device);
    free(e->unit);
    e->id = (uint32_t)id;
    e->device_id = (uint32_t)dev;
    e->name = strdup(name);
    e->device = strdup(device);
    e->unit = strdup(unit);
    e->data_type = (uint8_t)dt;
    e->updated_ns = updated;
    return e->name && e->device && e->unit ? 0 : CHUNK_ENOMEM;
}

int chunk_catalog_load(const char *dir, chunk_catalog *c, chunk_store *problems)
{
    DIR *d = opendir(dir);
    if (!d) {
        int e = errno;
        return chunk__fail(chunk_errno_code(e), "data directory %s: %s", dir, strerror(e));
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (chunk_name_parse(de->d_name, NULL, NULL) != CHUNK_NAME_CATALOG)
            continue;
        char path[PATH_MAX + 80];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        json_error_t err;
        json_t *doc = json_load_file(path, 0, &err);
        const char *format = NULL;
        int version = 0;
        json_int_t updated = 0;
        json_t *tags = NULL;
        if (!doc || json_unpack(doc, "{s:s, s:i, s?I, s:o}", "format", &format, "version",
                                &version, "updated_ns", &updated, "tags", &tags) != 0 ||
            strcmp(format, CATALOG_FORMAT) != 0 || !json_is_array(tags)) {
            if (problems)
                chunk_store_problem(problems, "%s: not a shmbus catalog (%s)", path,
                                    doc ? "wrong fields" : err.text);
        } else if (version > CATALOG_VERSION) {
            if (problems)
                chunk_store_problem(problems, "%s: catalog version %d is newer than this build reads (%d)",
                                    path, version, CATALOG_VERSION);
        } else {
            size_t i;
            json_t *t;
            json_array_foreach(tags, i, t)
            {
                int r = merge_entry(c, t, (int64_t)updated);
                if (r < 0) {
                    rc = r;
                    break;
                }
                if (r > 0 && problems)
                    chunk_store_problem(problems, "%s: tag entry %zu is malformed; skipped", path, i);
            }
        }
        json_decref(doc);
    }
    closedir(d);
    return rc;
}

int chunk_catalog_lookup(const chunk_catalog *c, const char *name, uint32_t *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].name && strcmp(c->e[i].name, name) == 0) {
            *id = c->e[i].id;
            return 0;
        }
    return CHUNK_ENOENT;
}

const chunk_catalog_entry *chunk_catalog_get(const chunk_catalog *c, uint32_t id)
{
    for (size_t i = 0; i < c->n; i++)
        if (c->e[i].id == id)
            return &c->e[i];
    return NULL;
}

/*
 * pg_target.c — the PostgreSQL target: libpq, export.postgres.connections
 * connections ("lanes", default 2) per process, each carrying one batch at
 * a time as one transaction (pg_lane.c), so that one batch's rows travel
 * while another's COMMIT waits for the WAL flush (0.3 ms on an idle disk
 * here, 4-11 ms when other processes keep it busy, more over a network);
 * concurrent commits share one flush in PostgreSQL. On this machine 2 lanes
 * did as well as 4 and better than 1 (services/export/README.md).
 * Batches are confirmed to the engine in the order they were submitted.
 * Under backlog the engine hands over batches that group several ring
 * batches (export.postgres.max_batches_per_commit, engine.c): still one
 * COPY and one COMMIT each, so a backlog drains with one WAL flush per
 * several thousand rows rather than per 500.
 *
 * At connect every lane connects, the first one creates or checks the
 * tables (pg_schema.c), and each creates its session's staging table.
 *
 * Secrets: the password comes from export.postgres.password_file (or libpq's
 * own PGPASSWORD / PGPASSFILE) and is handed to libpq only; logs describe
 * the target by host, port, database and user.
 */
#include "pg_internal.h"
#include "config.h"
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct pg_target {
    char *conninfo;
    char password[512];
    bool have_password;
    char connect_timeout[16];
    char source[256];
    char describe[512];
    int32_t source_id;
    export_catalog *cat;
    uint32_t *synced; /* per tag id: catalog version already in shmbus_tags (0: none) */
    uint32_t n_synced;
    pg_lane lanes[PG_MAX_LANES];
    int n_lanes;
    int order[PG_MAX_LANES]; /* lanes with a batch, in submission order */
    int n_order;
} pg_target;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
    for (int i = 0; i < t->n_lanes; i++)
        pg_lane_close(&t->lanes[i]);
    t->n_order = 0;
}

static int connect_lane(pg_target *t, pg_lane *l, bool first, char *reason, size_t len)
{
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
    l->conn = PQconnectdbParams(keys, vals, 1);
    if (!l->conn) {
        snprintf(reason, len, "out of memory creating the connection");
        return EXPORT_ENOMEM;
    }
    if (PQstatus(l->conn) != CONNECTION_OK) {
        pg_error_text(l->conn, NULL, reason, len);
        return EXPORT_EDOWN;
    }
    PQsetNoticeProcessor(l->conn, quiet_notices, NULL);
    int rc = first ? pg_schema_ensure(l->conn, t->source, &t->source_id, reason, len) : 0;
    if (rc)
        return rc;
    PGresult *res = PQexec(l->conn, "CREATE TEMP TABLE IF NOT EXISTS shmbus_stage "
                                    "(LIKE shmbus_values) ON COMMIT DELETE ROWS");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        char msg[EXPORT_REASON_MAX];
        pg_error_text(l->conn, res, msg, sizeof msg);
        snprintf(reason, len, "creating the staging table: %s", msg);
        PQclear(res);
        return PQstatus(l->conn) == CONNECTION_OK ? EXPORT_EREJECT : EXPORT_EDOWN;
    }
    PQclear(res);
    if (PQsetnonblocking(l->conn, 1) != 0) {
        pg_error_text(l->conn, NULL, reason, len);
        return EXPORT_EDOWN;
    }
    return 0;
}

static int pg_connect(void *impl, char *reason, size_t len)
{
    pg_target *t = impl;
    pg_disconnect(t);
    for (int i = 0; i < t->n_lanes; i++) {
        int rc = connect_lane(t, &t->lanes[i], i == 0, reason, len);
        if (rc) {
            pg_disconnect(t);
            return rc;
        }
    }
    /* A new session may talk to a database that lost or never had our tag
     * rows: send every tag again as it appears. */
    memset(t->synced, 0, (size_t)t->n_synced * sizeof *t->synced);
    return 0;
}

/* ---------------------------------------------------------------- batches */

static pg_lane_ctx lane_ctx(const pg_target *t)
{
    return (pg_lane_ctx){.source_id = t->source_id,
                         .cat = t->cat,
                         .synced = t->synced,
                         .n_synced = t->n_synced};
}

static int pg_submit(void *impl, const export_batch *b, char *reason, size_t len)
{
    pg_target *t = impl;
    pg_lane *l = NULL;
    int index = -1;
    for (int i = 0; i < t->n_lanes && !l; i++) {
        if (t->lanes[i].conn && t->lanes[i].state == LANE_IDLE) {
            l = &t->lanes[i];
            index = i;
        }
    }
    if (!l) {
        snprintf(reason, len, t->n_order ? "more than %d batches in flight" : "not connected",
                 t->n_lanes);
        return t->n_order ? EXPORT_EREJECT : EXPORT_EDOWN;
    }
    pg_lane_ctx ctx = lane_ctx(t);
    /* A batch that may repeat goes the deduplicating way at once; a fresh
     * one directly, falling back only if a row is there after all. */
    int rc = pg_lane_start(l, b, b->may_repeat, &ctx);
    if (rc) {
        snprintf(reason, len, "%s", l->reason);
        return rc;
    }
    t->order[t->n_order++] = index;
    pg_lane_advance(l, &ctx);
    return 0;
}

/* The oldest lane committed: record its tags and free it. */
static uint64_t finish_oldest(pg_target *t)
{
    pg_lane *l = &t->lanes[t->order[0]];
    for (uint32_t k = 0; k < l->n_tags; k++)
        if (l->tags[k] < t->n_synced)
            t->synced[l->tags[k]] = l->tag_versions[k];
    uint64_t dups = l->inserted <= l->b->n ? l->b->n - l->inserted : 0;
    if (l->dedupe && dups)
        log_debug("postgres: %llu of %zu rows were in the table already",
                  (unsigned long long)dups, l->b->n);
    pg_lane_reset(l);
    memmove(&t->order[0], &t->order[1], (size_t)(t->n_order - 1) * sizeof t->order[0]);
    t->n_order--;
    return dups;
}

static int pg_collect(void *impl, int timeout_ms, uint64_t *duplicates, int max, char *reason,
                      size_t len)
{
    pg_target *t = impl;
    pg_lane_ctx ctx = lane_ctx(t);
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        for (int i = 0; i < t->n_order; i++) {
            pg_lane *l = &t->lanes[t->order[i]];
            if (pg_lane_advance(l, &ctx) == LANE_FAILED) {
                snprintf(reason, len, "%s", l->reason);
                return l->error ? l->error : EXPORT_EDOWN;
            }
        }
        int done = 0;
        while (done < max && t->n_order > 0 && t->lanes[t->order[0]].state == LANE_DONE)
            duplicates[done++] = finish_oldest(t);
        if (done > 0)
            return done;
        int64_t left = deadline - mono_ms();
        if (left <= 0 || t->n_order == 0)
            return 0;
        struct pollfd p[PG_MAX_LANES];
        int n = 0;
        for (int i = 0; i < t->n_order; i++) {
            pg_lane *l = &t->lanes[t->order[i]];
            p[n++] = (struct pollfd){.fd = PQsocket(l->conn), .events = pg_lane_events(l)};
        }
        poll(p, (nfds_t)n, left < 100 ? (int)left : 100);
    }
}

static void pg_abandon(void *impl)
{
    pg_target *t = impl;
    /* A lane caught in the middle of a transaction is in no state to go on
     * with another: close them all (the engine reconnects). */
    if (t->n_order)
        pg_disconnect(t);
}

static void pg_destroy(void *impl)
{
    pg_target *t = impl;
    if (!t)
        return;
    for (int i = 0; i < PG_MAX_LANES; i++)
        pg_lane_free(&t->lanes[i]);
    export_wipe(t->password, sizeof t->password);
    free(t->conninfo);
    free(t->synced);
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
    t->n_lanes = (int)cfg->postgres.connections;
    if (t->n_lanes < 1 || t->n_lanes > PG_MAX_LANES)
        t->n_lanes = PG_DEFAULT_LANES;
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
    out->ops = &pg_ops;
    out->impl = t;
    out->window = t->n_lanes;
    return 0;
oom:
    snprintf(reason, len, "out of memory");
    rc = EXPORT_ENOMEM;
fail:
    pg_destroy(t);
    return rc;
}

/*
 * engine.c — the export loop, the same for every target:
 *
 *   connected, spool empty   take batches off the ring and submit them; up
 *                            to the target's window of batches is in flight
 *                            (MQTT: several, so the broker never waits for
 *                            us; PostgreSQL: one, confirmed by COMMIT). A
 *                            batch's ring batches are acknowledged only after
 *                            the target confirmed it, oldest first.
 *   connected, spool pending replay the spool in order first (adopted
 *                            spools of gone members, then our own)
 *   target away              batches in flight stay in hand and are resumed
 *                            when the target is back. backpressure: nothing
 *                            new is taken, and after RELEASE_AFTER_MS the
 *                            batches in hand go back to the group, so the
 *                            records wait in the ring or go to a healthy
 *                            member. drop-oldest: batches in hand go to the
 *                            spool at once, and once the group's share of
 *                            the ring passes SPOOL_AT_UTILIZATION this member
 *                            keeps taking batches into the spool, so the ring
 *                            never overwrites what the target has not
 *                            confirmed.
 *
 * Group commit (PostgreSQL: export.postgres.max_batches_per_commit): when a
 * batch is full and the group has at least one more whole batch waiting in
 * the ring (a backlog: the target is slower than the producers, or the
 * member just started or came back), further ring batches join the same
 * submission, without waiting, up to max_batches_per_commit batches,
 * EXPORT_GROUP_MAX_ROWS rows and this flight's share of the ring batches a
 * member may hold (SHM_MEMBER_BATCHES / window, so every lane still gets
 * its own). For PostgreSQL that is one COPY and one COMMIT for all of them:
 * each COMMIT waits for a WAL flush, so a backlog drains in fewer, larger
 * transactions. Each ring batch is still its own ring batch, held until the
 * submission is confirmed and then acknowledged with the others, oldest
 * first; a submission that fails keeps all of them in hand (retried
 * deduplicating, spooled or released) like any other. Without a backlog
 * nothing changes: one batch, sent at batch_records records or batch_age_ms.
 *
 * Reconnects follow exponential backoff with jitter. An outage is one error
 * line when it begins (naming the target and the reason), one info line
 * when it ends, and counters in between (retries, outages, connected).
 */
#include "export.h"
#include "log.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define RELEASE_AFTER_MS 5000       /* backpressure: hold failed batches this long */
#define SPOOL_AT_UTILIZATION 0.5    /* drop-oldest: spool when the group lags this much */
#define IDLE_WAIT_MS 100            /* longest sleep between checks */
#define REPLAY_BATCHES 4            /* a replay sends up to this many batches' rows at once */
#define ADOPT_SCAN_MS 10000         /* how often to look for spools of gone members */
#define STOP_DRAIN_MS 2000          /* at stop: wait this long for batches in flight */
#define MAX_ADOPTED 16

/* A batch submitted to the target and not yet confirmed. */
typedef struct flight {
    export_batch batch;
    int ring_batches; /* ring batches behind it, oldest held first */
    int grouped;      /* of these, the ones group commit added to a full batch */
    int64_t launched_ms;
} flight;

typedef struct engine {
    shm_segment *seg;
    export_target *target;
    const export_engine_options *opts;
    export_metrics metrics;
    ring_reader *reader;
    bool drop_oldest;
    int window;
    size_t group_rows;      /* group commit: rows one submission may reach */
    int group_ring_batches; /* ... and ring batches it may hold (<= 1: off) */
    size_t replay_rows;     /* rows one spool replay step sends at most */
    export_spool *own;
    export_spool *adopted[MAX_ADOPTED];
    int n_adopted;
    int64_t next_adopt_scan_ms;
    flight fl[EXPORT_MAX_WINDOW]; /* ring of flights: fl[(head + i) % window] */
    int head, n_fl;
    bool resubmit;       /* flights in hand must be submitted again (new connection) */
    export_batch taking; /* batch being filled from the ring */
    export_batch replay; /* peeked from a spool */
    uint64_t next_id;
    bool connected;
    export_backoff backoff;
    int64_t next_attempt_ms;
    bool in_outage;
    int64_t outage_start_ms;
    uint64_t outage_retries;
    int64_t failed_since_ms; /* when the batches in hand first failed; 0: they did not */
    bool spool_full_logged;
    char reason[EXPORT_REASON_MAX];
} engine;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    if (ms > IDLE_WAIT_MS)
        ms = IDLE_WAIT_MS;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL); /* a signal cuts it short: the loop checks `stop` */
}

static const char *tname(const engine *e)
{
    return e->target->ops->name;
}

static const char *where(const engine *e)
{
    return e->target->ops->describe(e->target->impl);
}

static flight *flight_at(engine *e, int i)
{
    return &e->fl[(e->head + i) % e->window];
}

/* ------------------------------------------------------------- outages */

static void outage_begin(engine *e, const char *what)
{
    e->connected = false;
    e->target->ops->disconnect(e->target->impl);
    export_metrics_set(e->metrics.connected, 0);
    export_metrics_add(e->metrics.retries, 1);
    int64_t now = mono_ms();
    e->next_attempt_ms = now + export_backoff_next(&e->backoff);
    if (e->in_outage) {
        e->outage_retries++;
        log_debug("%s target %s: still unavailable: %s", tname(e), where(e), e->reason);
        return;
    }
    e->in_outage = true;
    e->outage_start_ms = now;
    e->outage_retries = 0;
    export_metrics_add(e->metrics.outages, 1);
    log_error("%s target %s: %s: %s; retrying with backoff (%s)", tname(e), where(e), what,
              e->reason,
              e->drop_oldest ? "records go to the spool when the ring fills"
                             : "records wait in the ring");
}

static void outage_end(engine *e)
{
    e->connected = true;
    export_metrics_set(e->metrics.connected, 1);
    export_backoff_reset(&e->backoff);
    e->spool_full_logged = false;
    e->resubmit = e->n_fl > 0;
    if (e->in_outage) {
        log_info("%s target %s: back after %.1f s and %llu retries", tname(e), where(e),
                 (double)(mono_ms() - e->outage_start_ms) / 1000.0,
                 (unsigned long long)e->outage_retries);
        e->in_outage = false;
    } else {
        log_info("%s target %s: connected", tname(e), where(e));
    }
}

static void try_connect(engine *e)
{
    e->reason[0] = '\0';
    int rc = e->target->ops->connect(e->target->impl, e->reason, sizeof e->reason);
    if (rc == 0)
        outage_end(e);
    else
        outage_begin(e, rc == EXPORT_EREJECT ? "refused" : "unavailable");
}

/* The batches in hand failed (or the connection went): they stay in hand,
 * marked as possibly delivered in part. */
static void flights_failed(engine *e, const char *what)
{
    for (int i = 0; i < e->n_fl; i++)
        flight_at(e, i)->batch.may_repeat = true;
    if (!e->failed_since_ms)
        e->failed_since_ms = mono_ms();
    outage_begin(e, what);
}

/* --------------------------------------------------------------- spools */

static void update_spool_gauge(engine *e)
{
    uint64_t bytes = e->own ? export_spool_pending_bytes(e->own) : 0;
    for (int i = 0; i < e->n_adopted; i++)
        bytes += export_spool_pending_bytes(e->adopted[i]);
    export_metrics_set(e->metrics.spool_bytes, bytes);
}

static bool spool_pending(const engine *e)
{
    if (e->own && export_spool_pending_bytes(e->own) > 0)
        return true;
    return e->n_adopted > 0;
}

static void spool_path(const engine *e, const char *member, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s-%s.spool", e->opts->spool_dir, tname(e), member);
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

/* Opens our own spool: always under drop-oldest, otherwise only when one
 * was left from a time the segment was drop-oldest. */
static int open_own_spool(engine *e)
{
    char path[4096];
    spool_path(e, e->opts->member, path, sizeof path);
    if (!e->drop_oldest && access(path, F_OK) != 0)
        return 0;
    int rc = mkdir_p(e->opts->spool_dir);
    if (rc < 0) {
        log_error("%s: spool directory %s: %s", tname(e), e->opts->spool_dir, strerror(-rc));
        return rc;
    }
    rc = export_spool_open(path, &e->own, e->reason, sizeof e->reason);
    if (rc < 0) {
        log_error("%s: %s", tname(e), e->reason);
        return rc;
    }
    if (e->reason[0])
        log_error("%s: %s", tname(e), e->reason);
    if (export_spool_pending_bytes(e->own) > 0)
        log_info("%s: spool %s holds %llu bytes to replay", tname(e), path,
                 (unsigned long long)export_spool_pending_bytes(e->own));
    return 0;
}

/* Takes over spools of this target whose owners are gone (the flock is
 * free): their rows were acknowledged in the ring, so only we can deliver
 * them now. Empty ones are removed. */
static void adopt_spools(engine *e)
{
    e->next_adopt_scan_ms = mono_ms() + ADOPT_SCAN_MS;
    DIR *d = opendir(e->opts->spool_dir);
    if (!d)
        return;
    char prefix[64], own[4096];
    snprintf(prefix, sizeof prefix, "%s-", tname(e));
    spool_path(e, e->opts->member, own, sizeof own);
    struct dirent *de;
    while ((de = readdir(d)) != NULL && e->n_adopted < MAX_ADOPTED) {
        size_t len = strlen(de->d_name);
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || len < strlen(prefix) + 7 ||
            strcmp(de->d_name + len - 6, ".spool") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", e->opts->spool_dir, de->d_name);
        if (strcmp(path, own) == 0)
            continue;
        bool mine = false;
        for (int i = 0; i < e->n_adopted; i++)
            mine |= strcmp(export_spool_path(e->adopted[i]), path) == 0;
        if (mine)
            continue;
        export_spool *s;
        char why[EXPORT_REASON_MAX];
        if (export_spool_open(path, &s, why, sizeof why) < 0) {
            if (!strstr(why, "held by another process"))
                log_warn("%s: cannot adopt %s", tname(e), why);
            continue;
        }
        if (why[0])
            log_error("%s: %s", tname(e), why);
        if (export_spool_pending_bytes(s) == 0) {
            unlink(path);
            export_spool_close(&s);
            continue;
        }
        log_info("%s: adopting spool %s of a member that is gone (%llu bytes)", tname(e), path,
                 (unsigned long long)export_spool_pending_bytes(s));
        e->adopted[e->n_adopted++] = s;
        /* Its bytes are counted in our gauge from now on, not in the gone
         * member's (which nobody else would ever update). */
        char gone[SHM_NAME_MAX + 1];
        snprintf(gone, sizeof gone, "%.*s", (int)(len - strlen(prefix) - 6),
                 de->d_name + strlen(prefix));
        export_metrics m;
        if (export_metrics_open(e->seg, tname(e), gone, &m) == 0)
            export_metrics_set(m.spool_bytes, 0);
    }
    closedir(d);
    update_spool_gauge(e);
}

/* Delivers one slice of the oldest spool, waiting for its confirmation (no
 * other batch is in flight meanwhile). */
static void replay_step(engine *e)
{
    export_spool *s = e->n_adopted > 0 ? e->adopted[0] : e->own;
    if (!s)
        return;
    int n = export_spool_peek(s, &e->replay, e->replay_rows);
    if (n < 0) {
        /* A block that fails its CRC now (it passed when the spool was
         * opened): the disk changed under us. Dropping the rest of this
         * spool is the only way forward; say so loudly. */
        log_error("%s: spool %s: %s at the read position; %llu bytes dropped", tname(e),
                  export_spool_path(s), export_strerror(n),
                  (unsigned long long)export_spool_pending_bytes(s));
        n = 0;
    }
    if (n > 0) {
        e->replay.id = ++e->next_id;
        e->reason[0] = '\0';
        uint64_t dups = 0;
        int rc = e->target->ops->submit(e->target->impl, &e->replay, e->reason, sizeof e->reason);
        int got = 0;
        int64_t deadline = mono_ms() + 60000;
        while (rc == 0 && got == 0 && mono_ms() < deadline)
            rc = got = e->target->ops->collect(e->target->impl, IDLE_WAIT_MS, &dups, 1, e->reason,
                                               sizeof e->reason);
        if (rc < 0 || got == 0) {
            if (got == 0 && rc >= 0)
                snprintf(e->reason, sizeof e->reason, "no confirmation of a replayed batch");
            e->target->ops->abandon(e->target->impl);
            outage_begin(e, "replay failed");
            return;
        }
        export_metrics_add(e->metrics.batches, 1);
        export_metrics_add(e->metrics.rows, (uint64_t)n - dups);
        export_metrics_add(e->metrics.duplicates, dups);
        export_metrics_add(e->metrics.replayed, (uint64_t)n);
        int crc = export_spool_consume(s);
        if (crc < 0)
            log_error("%s: spool %s: cannot record the replay position: %s", tname(e),
                      export_spool_path(s), strerror(-crc));
    }
    if (s != e->own && (n == 0 || export_spool_pending_bytes(s) == 0)) {
        log_info("%s: adopted spool %s delivered", tname(e), export_spool_path(s));
        unlink(export_spool_path(s));
        export_spool_close(&e->adopted[0]);
        memmove(&e->adopted[0], &e->adopted[1], (size_t)(e->n_adopted - 1) * sizeof e->adopted[0]);
        e->n_adopted--;
    } else if (s == e->own && n == 0 && export_spool_pending_bytes(s) > 0) {
        /* Unreadable rest of our own spool: start it afresh. */
        char path[4096];
        snprintf(path, sizeof path, "%s", export_spool_path(s));
        export_spool_close(&e->own);
        unlink(path);
        if (export_spool_open(path, &e->own, e->reason, sizeof e->reason) < 0)
            log_error("%s: %s", tname(e), e->reason);
    }
    update_spool_gauge(e);
}

/* --------------------------------------------------------------- flights */

/* The oldest flight was confirmed: acknowledge its ring batches. */
static void confirm_oldest(engine *e, uint64_t dups)
{
    flight *f = flight_at(e, 0);
    if (e->opts->commit_delay_ms) /* tests: widen the confirmation-to-ack window */
        sleep_ms(e->opts->commit_delay_ms);
    ring_reader_ack_oldest(e->reader, f->ring_batches);
    log_debug("%s: batch of %zu rows (%d ring batches, %d grouped) confirmed after %lld ms",
              tname(e), f->batch.n, f->ring_batches, f->grouped,
              (long long)(mono_ms() - f->launched_ms));
    export_metrics_add(e->metrics.batches, 1);
    export_metrics_add(e->metrics.rows, f->batch.n - dups);
    export_metrics_add(e->metrics.duplicates, dups);
    export_metrics_add(e->metrics.grouped, (uint64_t)f->grouped);
    f->batch.n = 0;
    f->batch.may_repeat = false;
    f->ring_batches = 0;
    f->grouped = 0;
    e->head = (e->head + 1) % e->window;
    e->n_fl--;
    if (e->n_fl == 0)
        e->failed_since_ms = 0;
}

/* Drops every flight without acknowledging anything. */
static void clear_flights(engine *e)
{
    for (int i = 0; i < e->n_fl; i++) {
        flight *f = flight_at(e, i);
        f->batch.n = 0;
        f->batch.may_repeat = false;
        f->ring_batches = 0;
        f->grouped = 0;
    }
    e->n_fl = 0;
    e->head = 0;
    e->failed_since_ms = 0;
    e->resubmit = false;
}

/* Appends a batch's rows to our spool. */
static int spool_rows(engine *e, const export_batch *b)
{
    int rc = export_spool_append(e->own, b->rows, b->n, e->opts->spool_max_bytes);
    if (rc < 0) {
        if (!e->spool_full_logged) {
            log_error("%s: spool %s: %s; records now wait in the ring (and are lost if it "
                      "overflows)",
                      tname(e), export_spool_path(e->own),
                      rc == -ENOSPC ? "spool_max_bytes reached or disk full" : strerror(-rc));
            e->spool_full_logged = true;
        }
        return rc;
    }
    export_metrics_add(e->metrics.spooled, b->n);
    return 0;
}

/* drop-oldest, target away: the flights in hand go to the spool, oldest
 * first, and their ring batches are acknowledged once each is on disk. */
static void spool_flights(engine *e)
{
    if (!e->own)
        return;
    while (e->n_fl > 0) {
        flight *f = flight_at(e, 0);
        if (f->batch.n > 0 && spool_rows(e, &f->batch) < 0)
            break;
        ring_reader_ack_oldest(e->reader, f->ring_batches);
        f->batch.n = 0;
        f->ring_batches = 0;
        f->grouped = 0;
        e->head = (e->head + 1) % e->window;
        e->n_fl--;
    }
    if (e->n_fl == 0) {
        e->target->ops->abandon(e->target->impl);
        clear_flights(e);
    }
    update_spool_gauge(e);
}

/* backpressure, target away for a while: the group gets them back. */
static void release_flights(engine *e)
{
    size_t rows = 0;
    for (int i = 0; i < e->n_fl; i++)
        rows += flight_at(e, i)->batch.n;
    log_info("%s: handing %zu records back to group %s while the target is away", tname(e), rows,
             e->target->ops->group);
    e->target->ops->abandon(e->target->impl);
    ring_reader_release(e->reader);
    clear_flights(e);
}

/* After a reconnect: submit the flights in hand again; the target resumes
 * what it still tracks and sends again what it lost. */
static int resubmit_flights(engine *e)
{
    e->resubmit = false;
    for (int i = 0; i < e->n_fl; i++) {
        flight *f = flight_at(e, i);
        e->reason[0] = '\0';
        if (e->target->ops->submit(e->target->impl, &f->batch, e->reason, sizeof e->reason) < 0)
            return -1;
    }
    return 0;
}

/* Collects confirmations; returns false when the target failed. */
static bool collect(engine *e, int timeout_ms)
{
    uint64_t dups[EXPORT_MAX_WINDOW] = {0};
    e->reason[0] = '\0';
    int k = e->target->ops->collect(e->target->impl, timeout_ms, dups, e->n_fl, e->reason,
                                    sizeof e->reason);
    if (k < 0) {
        flights_failed(e, k == EXPORT_ETIMEOUT ? "no confirmation" : "delivery failed");
        return false;
    }
    for (int i = 0; i < k && e->n_fl > 0; i++)
        confirm_oldest(e, dups[i]);
    return true;
}

/* Takes a batch off the ring into e->taking and, when it is full and the
 * ring is backlogged, the batches waiting behind it (group commit); returns
 * rows (possibly 0), with the ring batches behind them in *ring_batches, of
 * which *grouped were added by group commit. */
static int take_batch(engine *e, int idle_ms, int *ring_batches, int *grouped)
{
    e->taking.n = 0;
    e->taking.may_repeat = false;
    *grouped = 0;
    int n = ring_reader_fill(e->reader, &e->taking, e->opts->batch_records, e->opts->batch_age_ms,
                             idle_ms, ring_batches);
    if (n >= 0 && e->group_ring_batches > 1 && e->taking.n >= e->opts->batch_records) {
        int g = ring_reader_group(e->reader, &e->taking, e->opts->batch_records, e->group_rows,
                                  e->group_ring_batches, ring_batches);
        if (g < 0)
            n = g;
        else
            *grouped = g;
    }
    if (n < 0) {
        log_error("%s: reading group %s: %s (%s)", tname(e), e->target->ops->group,
                  shm_strerror(n), shm_last_error());
        return n;
    }
    return (int)e->taking.n;
}

/* Moves e->taking into a new flight (swapping buffers) and submits it. */
static void launch(engine *e, int ring_batches, int grouped)
{
    flight *f = flight_at(e, e->n_fl);
    export_batch spare = f->batch;
    f->batch = e->taking;
    f->batch.id = ++e->next_id;
    f->batch.may_repeat |= e->opts->always_dedupe;
    f->ring_batches = ring_batches;
    f->grouped = grouped;
    f->launched_ms = mono_ms();
    e->taking = spare;
    e->taking.n = 0;
    e->n_fl++;
    e->reason[0] = '\0';
    if (e->target->ops->submit(e->target->impl, &f->batch, e->reason, sizeof e->reason) < 0)
        flights_failed(e, "delivery failed");
}

/* drop-oldest, while the target is away or the spool is replayed: once
 * the group's share of the ring passes SPOOL_AT_UTILIZATION, take a batch
 * into the spool before the ring overwrites it. Returns 1 when a batch was
 * taken, 0 when there was no need, or a negative code. */
static int rescue(engine *e)
{
    if (!e->drop_oldest || !e->own || ring_reader_utilization(e->reader) < SPOOL_AT_UTILIZATION)
        return 0;
    int ring_batches, grouped;
    int n = take_batch(e, 0, &ring_batches, &grouped);
    if (n < 0)
        return n;
    if (ring_batches == 0)
        return 0;
    if (e->taking.n == 0 || spool_rows(e, &e->taking) == 0) {
        ring_reader_ack_oldest(e->reader, ring_batches);
        update_spool_gauge(e);
        return 1;
    }
    ring_reader_release(e->reader); /* the spool is full: the group gets them back */
    return 0;
}

/* ----------------------------------------------------------------- loop */

/* Group commit's bounds (see the top of this file) and the replay size. */
static void plan_grouping(engine *e)
{
    size_t batch = e->opts->batch_records ? e->opts->batch_records : 1;
    uint32_t want = e->opts->max_batches_per_commit ? e->opts->max_batches_per_commit : 1;
    size_t row_cap = batch > EXPORT_GROUP_MAX_ROWS ? batch : EXPORT_GROUP_MAX_ROWS;
    size_t rows = (uint64_t)want * batch > row_cap ? row_cap : want * batch;
    int share = SHM_MEMBER_BATCHES / e->window;
    e->group_ring_batches = (int)want < share ? (int)want : share;
    if ((size_t)e->group_ring_batches * batch < rows)
        rows = (size_t)e->group_ring_batches * batch;
    e->group_rows = rows;
    if (e->group_rows <= batch)
        e->group_ring_batches = 1;
    /* A spool replay is a backlog too: as large as a grouped submission,
     * and at least REPLAY_BATCHES batches as before group commit. */
    e->replay_rows = batch * REPLAY_BATCHES;
    if (e->group_ring_batches > 1 && e->group_rows > e->replay_rows)
        e->replay_rows = e->group_rows;
}

static int step(engine *e)
{
    ring_reader_heartbeat(e->reader);
    if (!e->connected && mono_ms() >= e->next_attempt_ms)
        try_connect(e);
    if (e->connected && e->target->ops->poll &&
        e->target->ops->poll(e->target->impl, e->reason, sizeof e->reason) != 0)
        flights_failed(e, "connection lost");
    if (e->connected && e->resubmit && resubmit_flights(e) < 0)
        flights_failed(e, "delivery failed");

    if (!e->connected) {
        if (e->n_fl > 0) {
            if (e->drop_oldest)
                spool_flights(e);
            else if (mono_ms() - e->failed_since_ms >= RELEASE_AFTER_MS)
                release_flights(e);
        }
        if (e->n_fl == 0) {
            int rc = rescue(e);
            if (rc != 0)
                return rc < 0 ? rc : 0;
        }
        sleep_ms(e->next_attempt_ms - mono_ms());
        return 0;
    }

    if (e->n_fl == 0) {
        if ((e->own || e->n_adopted) && mono_ms() >= e->next_adopt_scan_ms)
            adopt_spools(e);
        if (spool_pending(e)) {
            /* Replaying: new records wait in the ring, unless it fills. */
            int rc = rescue(e);
            if (rc < 0)
                return rc;
            replay_step(e);
            return 0;
        }
    }
    bool took = false;
    if (e->n_fl < e->window && !spool_pending(e)) {
        int ring_batches, grouped;
        int n = take_batch(e, e->n_fl ? 0 : IDLE_WAIT_MS, &ring_batches, &grouped);
        if (n < 0)
            return n;
        if (e->taking.n > 0) {
            launch(e, ring_batches, grouped);
            took = true;
        } else if (ring_batches > 0) { /* nothing but invalid records: nothing to send */
            ring_reader_ack_oldest(e->reader, ring_batches);
        }
    }
    /* Pick up confirmations; wait for one when nothing new was launched
     * (the window is full, or the ring is idle). */
    if (e->n_fl > 0 && e->connected)
        collect(e, took ? 0 : IDLE_WAIT_MS);
    return 0;
}

static void finish(engine *e)
{
    /* Give batches in flight a moment to be confirmed, so a clean stop
     * leaves nothing to re-deliver. */
    int64_t deadline = mono_ms() + STOP_DRAIN_MS;
    while (e->connected && e->n_fl > 0 && mono_ms() < deadline)
        collect(e, IDLE_WAIT_MS);
    if (e->n_fl > 0) {
        size_t rows = 0;
        for (int i = 0; i < e->n_fl; i++)
            rows += flight_at(e, i)->batch.n;
        if (e->drop_oldest && e->own) {
            spool_flights(e);
            log_info("%s: stopping: %zu records in hand went to the spool", tname(e), rows);
        } else {
            log_info("%s: stopping: %zu records in hand go back to group %s", tname(e), rows,
                     e->target->ops->group);
        }
    }
    e->target->ops->disconnect(e->target->impl);
    export_metrics_set(e->metrics.connected, 0);
}

int export_engine_run(shm_segment *seg, export_target *target,
                      const export_engine_options *opts, volatile sig_atomic_t *stop)
{
    engine *e = calloc(1, sizeof *e);
    if (!e)
        return EXPORT_ENOMEM;
    e->seg = seg;
    e->target = target;
    e->opts = opts;
    e->window = target->window;
    if (e->window < 1 || e->window > EXPORT_MAX_WINDOW)
        e->window = 1;
    plan_grouping(e);
    shm_segment_info info;
    int rc = shm_segment_info_get(seg, &info);
    if (rc)
        goto out;
    e->drop_oldest = info.policy != SHM_POLICY_BACKPRESSURE;
    rc = export_metrics_open(seg, target->ops->name, opts->member, &e->metrics);
    if (rc) {
        log_error("%s: counters: %s (%s)", target->ops->name, shm_strerror(rc), shm_last_error());
        goto out;
    }
    export_backoff_init(&e->backoff, opts->backoff_min_ms, opts->backoff_max_ms,
                        (uint64_t)getpid() * 0x9E3779B97F4A7C15ull ^ (uint64_t)mono_ms());
    rc = open_own_spool(e);
    if (rc < 0)
        goto out;
    rc = ring_reader_open(seg, target->ops->group, opts->member, &e->metrics, &e->reader);
    if (rc) {
        log_error("%s: joining group %s as %s: %s (%s)", target->ops->name, target->ops->group,
                  opts->member, shm_strerror(rc), shm_last_error());
        goto out;
    }
    char grouping[96] = "group commit off";
    if (e->group_ring_batches > 1)
        snprintf(grouping, sizeof grouping, "group commit under backlog: up to %d batches (%zu "
                 "records)", e->group_ring_batches, e->group_rows);
    log_info("%s: member %s of group %s, %s segment, batches of %zu records or %d ms, %d in "
             "flight, %s",
             target->ops->name, opts->member, target->ops->group,
             e->drop_oldest ? "drop-oldest" : "backpressure", opts->batch_records,
             opts->batch_age_ms, e->window, grouping);
    adopt_spools(e);
    update_spool_gauge(e);
    while (!*stop) {
        rc = step(e);
        if (rc < 0)
            break;
    }
    finish(e);
    if (rc > 0)
        rc = 0;
out:
    ring_reader_close(&e->reader);
    export_spool_close(&e->own);
    for (int i = 0; i < e->n_adopted; i++)
        export_spool_close(&e->adopted[i]);
    for (int i = 0; i < EXPORT_MAX_WINDOW; i++)
        export_batch_free(&e->fl[i].batch);
    export_batch_free(&e->taking);
    export_batch_free(&e->replay);
    free(e);
    return rc;
}

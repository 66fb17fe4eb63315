/*
 * service.c — the shmbus-stats loop (see service.h).
 *
 * One thread does everything, so the tag store needs no locks:
 *   - attached: take a batch from the ring (waiting at most LOOP_WAIT_MS),
 *     up to CATCH_UP_BATCHES more without waiting when behind;
 *   - answer every request waiting on the REP socket (waiting there
 *     instead while the segment is missing);
 *   - every second: age histories against the wall clock, retry attaching;
 *     every few seconds: re-read tag names, check the segment was not
 *     replaced; every publish interval: summary; every snapshot interval:
 *     snapshot.
 * SIGTERM/SIGINT: requests still queued get an error saying the service is
 * stopping, a last snapshot is written, the member leaves the group.
 * SIGHUP: the configuration file and flags are read again; window, history,
 * memory limit, deadband, interval bounds and the snapshot and publish
 * periods apply at once (every tag resized to the new plan), the rest after
 * a restart. The memory plan (asked, granted, why) is logged at start, on
 * reload and whenever more tags appear than planned (tagstore.h).
 */
#include "service.h"

#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define LOOP_WAIT_MS 20      /* ring wait while attached: bounds query latency */
#define DETACHED_WAIT_MS 100 /* REP wait while the segment is missing */
#define CATCH_UP_BATCHES 16  /* batches per loop turn when records are waiting */
#define REQUESTS_PER_TURN 64
#define SEC 1000000000LL

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

static int64_t real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * SEC + ts.tv_nsec;
}

/* ------------------------------------------------------------ snapshot */

int stats_service_snapshot(stats_service *sv, const char *why, char *err, size_t err_len,
                           uint64_t *bytes)
{
    sv->ident.next_seq =
        sv->in.next_seq > sv->ident.next_seq ? sv->in.next_seq : sv->ident.next_seq;
    uint64_t n = 0;
    int64_t t0 = mono_ns();
    int rc = snapshot_write(sv->snapshot_path, &sv->store, &sv->ident, &n, err, err_len);
    if (sv->in.cons)
        shm_consumer_heartbeat(sv->in.cons);
    if (rc) {
        sv->snapshot_failures++;
        log_error("snapshot (%s) failed: %s; the previous snapshot stays", why, err);
        return rc;
    }
    sv->snapshots++;
    sv->last_snapshot_bytes = n;
    sv->last_snapshot_ns = real_ns();
    log_debug("snapshot (%s): %u tags, %llu bytes in %.1f ms", why, sv->store.n_tags,
              (unsigned long long)n, (double)(mono_ns() - t0) / 1e6);
    if (bytes)
        *bytes = n;
    return 0;
}

static int snapshot_hook(void *ctx, json_t *result, char *err, size_t err_len)
{
    stats_service *sv = ctx;
    uint64_t bytes;
    int rc = stats_service_snapshot(sv, "request", err, err_len, &bytes);
    if (rc)
        return rc;
    json_object_set_new(result, "path", json_string(sv->snapshot_path));
    json_object_set_new(result, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(result, "tags", json_integer(sv->store.n_tags));
    return 0;
}

static void status_hook(void *ctx, json_t *o)
{
    stats_service *sv = ctx;
    char shard[24];
    snprintf(shard, sizeof shard, "%u/%u", sv->opt.shard_k, sv->opt.shard_n);
    json_object_set_new(o, "segment", json_string(sv->opt.segment));
    json_object_set_new(o, "shard", json_string(shard));
    json_object_set_new(o, "group", json_string(sv->in.group));
    json_object_set_new(o, "attached", json_boolean(sv->attached));
    json_object_set_new(o, "records", json_integer((json_int_t)sv->in.records));
    json_object_set_new(o, "invalid_records", json_integer((json_int_t)sv->in.invalid));
    json_object_set_new(o, "duplicate_records", json_integer((json_int_t)sv->in.duplicates));
    json_object_set_new(o, "lost_records", json_integer((json_int_t)sv->in.lost));
    json_object_set_new(o, "other_shard_records",
                        json_integer((json_int_t)sv->store.foreign_shard));
    json_object_set_new(o, "dropped_no_memory", json_integer((json_int_t)sv->in.dropped_nomem));
    json_object_set_new(o, "bad_tag_ids", json_integer((json_int_t)sv->store.bad_id));
    json_object_set_new(o, "next_seq", json_integer((json_int_t)sv->in.next_seq));
    json_object_set_new(o, "window", json_integer(sv->store.grant.window));
    json_object_set_new(o, "history_capacity", json_integer(sv->store.grant.history));
    json_object_set_new(o, "history_s", json_integer(sv->opt.history_s));
    json_object_set_new(o, "memory", stats_memplan_status(sv));
    json_object_set_new(o, "snapshot_path", json_string(sv->snapshot_path));
    json_object_set_new(o, "snapshots", json_integer((json_int_t)sv->snapshots));
    json_object_set_new(o, "snapshot_failures", json_integer((json_int_t)sv->snapshot_failures));
    json_object_set_new(o, "summaries", json_integer((json_int_t)sv->summaries));
    json_object_set_new(o, "uptime_s", json_real((double)(mono_ns() - sv->started_mono_ns) / 1e9));
}

/* Restores the store from the snapshot file, or starts empty: a corrupt,
 * truncated or foreign file is moved aside with a warning. */
static void restore(stats_service *sv)
{
    tagstore loaded;
    if (tagstore_init(&loaded, &sv->params) != 0) {
        log_error("restore: out of memory");
        return;
    }
    loaded.hooks = sv->store.hooks;
    snapshot_identity found;
    char err[512] = "";
    int rc = snapshot_read(sv->snapshot_path, &loaded, &sv->ident, &found, err, sizeof err);
    if (rc == 0) {
        tagstore_free(&sv->store);
        sv->store = loaded;
        sv->ident.segment_created_ns = found.segment_created_ns;
        sv->ident.segment_initial_seq = found.segment_initial_seq;
        sv->ident.next_seq = found.next_seq;
        log_info("resumed from snapshot %s: %u tags, written %.1f s ago", sv->snapshot_path,
                 sv->store.n_tags, (double)(real_ns() - found.written_ns) / 1e9);
        return;
    }
    tagstore_free(&loaded);
    if (rc == -ENOENT) {
        log_info("no snapshot at %s: starting empty", sv->snapshot_path);
    } else if (rc == -EBADMSG || rc == -EILSEQ) {
        char moved[PATH_MAX + 32] = "";
        int mv = snapshot_move_aside(sv->snapshot_path, moved, sizeof moved);
        log_warn("snapshot %s rejected (%s: %s); %s%s; starting empty", sv->snapshot_path,
                 rc == -EILSEQ ? "foreign" : "corrupt", err,
                 mv ? "could not move it aside: " : "moved aside to ", mv ? strerror(-mv) : moved);
    } else {
        log_warn("snapshot %s unreadable (%s); starting empty", sv->snapshot_path, err);
    }
}

/* ------------------------------------------------------------ segment */

static void name_all_tags(stats_service *sv)
{
    for (uint32_t i = 0; i < sv->store.n_tags; i++)
        ingest_name_tag(&sv->in, &sv->store, tagstore_at(&sv->store, i));
}

static void try_attach(stats_service *sv, int *waiting_logged)
{
    int rc = ingest_attach(&sv->in);
    if (rc) {
        if (!*waiting_logged)
            log_info("waiting for segment %s (%s); answering queries meanwhile", sv->opt.segment,
                     shm_last_error());
        *waiting_logged = 1;
        return;
    }
    *waiting_logged = 0;
    sv->attached = 1;
    const shm_segment_info *info = &sv->in.info;
    if (sv->ident.segment_created_ns == info->created_ns &&
        sv->ident.segment_initial_seq == info->initial_seq && sv->ident.next_seq) {
        sv->in.skip_below = sv->ident.next_seq;
        sv->in.next_seq = sv->ident.next_seq;
    } else {
        if (sv->ident.segment_created_ns)
            log_info("segment %s is not the one the snapshot saw: no duplicate filter",
                     sv->opt.segment);
        sv->in.skip_below = 0;
        sv->in.next_seq = 0;
        sv->ident.next_seq = 0;
    }
    sv->ident.segment_created_ns = info->created_ns;
    sv->ident.segment_initial_seq = info->initial_seq;
    if (info->catalog_capacity > sv->params.max_tags)
        log_warn("segment catalog holds %u tags, this service keeps ids below %u "
                 "(--max-tags / segment.catalog_capacity)",
                 info->catalog_capacity, sv->params.max_tags);
    name_all_tags(sv);
    uint32_t known = ingest_count_catalog(&sv->in, &sv->store);
    if (known > sv->store.grant.tags) {
        char why[96];
        snprintf(why, sizeof why, "the catalog names %u tags of this shard", known);
        tagstore_plan_for(&sv->store, known, why);
    }
    ingest_update_counters(&sv->in, &sv->store);
    log_info("attached to segment %s as %s of group %s", sv->opt.segment, sv->in.member,
             sv->in.group);
}

/* ------------------------------------------------------------ requests */

static void serve_one(stats_service *sv, nng_msg *msg)
{
    int is_error = 0;
    char *text = protocol_handle(&sv->proto, nng_msg_body(msg), nng_msg_len(msg), &is_error);
    nng_msg_free(msg);
    static const char oom[] = "{\"error\":\"out of memory\"}";
    int rv = text ? endpoints_reply(&sv->ep, text, strlen(text))
                  : endpoints_reply(&sv->ep, oom, sizeof oom - 1);
    if (rv != 0)
        log_debug("reply not sent: %s", nng_strerror(rv));
    free(text);
}

static void serve_requests(stats_service *sv, int wait_ms)
{
    nng_msg *msg;
    for (int i = 0; i < REQUESTS_PER_TURN; i++) {
        int rc = endpoints_recv(&sv->ep, i == 0 ? wait_ms : 0, &msg);
        if (rc < 0 && i == 0 && wait_ms > 0) {
            /* The socket failed at once: do not turn the wait into a spin. */
            struct timespec ts = {0, (long)wait_ms * 1000000};
            nanosleep(&ts, NULL);
        }
        if (rc <= 0)
            return;
        serve_one(sv, msg);
    }
}

/* ------------------------------------------------------------ loop */

static int setup(stats_service *sv, const stats_options *opt)
{
    sv->opt = *opt;
    sv->started_mono_ns = mono_ns();
    stats_options_store_params(&sv->opt, &sv->params);
    sv->params.step_tags = sv->opt.step_tags; /* the copy in sv, which lives as long */
    int rc = tagstore_init(&sv->store, &sv->params);
    if (rc != 0) {
        char text[512];
        log_error("cannot keep %u tags (window %u, history capacity %u): %s", opt->max_tags,
                  opt->window, opt->history_capacity,
                  rc == -ENOSPC ? budget_describe(&sv->store.request, &sv->store.grant,
                                                  opt->memory_limit_name, text, sizeof text)
                                : strerror(-rc));
        return -1;
    }
    sv->store.hooks = stats_memplan_hooks(sv);
    stats_memplan_log(sv, &sv->store, NULL, opt->planned_tags ? "the configuration's tags of this shard"
                                         : "start; tags unknown until the catalog or the ring "
                                           "names them");
    char suffix[16] = "";
    if (opt->shard_n > 1)
        snprintf(suffix, sizeof suffix, "-%u", opt->shard_k);
    if (snprintf(sv->snapshot_path, sizeof sv->snapshot_path, "%s/%s.stats%s.snap", opt->data_dir,
                 opt->segment, suffix) >= (int)sizeof sv->snapshot_path) {
        log_error("snapshot path under %s is too long", opt->data_dir);
        return -1;
    }
    if (mkdir(opt->data_dir, 0770) != 0 && errno != EEXIST)
        log_warn("create data directory %s: %s", opt->data_dir, strerror(errno));
    snprintf(sv->ident.segment, sizeof sv->ident.segment, "%s", opt->segment);
    sv->ident.shard_k = opt->shard_k;
    sv->ident.shard_n = opt->shard_n;
    ingest_init(&sv->in, opt->segment, opt->shard_k, opt->shard_n);
    sv->proto = (protocol){
        .store = &sv->store,
        .hooks = {.ctx = sv, .snapshot = snapshot_hook, .status = status_hook},
        .max_request = opt->max_request,
    };
    return 0;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
}

static void consume(stats_service *sv)
{
    int rc = ingest_poll(&sv->in, &sv->store, LOOP_WAIT_MS);
    for (int i = 0; rc > 0 && i < CATCH_UP_BATCHES; i++)
        rc = ingest_poll(&sv->in, &sv->store, 0);
    if (rc < 0) {
        log_error("consume: %s", shm_last_error());
        serve_requests(sv, LOOP_WAIT_MS); /* do not spin on a persistent error */
    }
}

static void shutdown_service(stats_service *sv)
{
    sv->proto.phase = PROTOCOL_STOPPING;
    serve_requests(sv, 0); /* whoever is queued learns we are stopping */
    char err[512];
    stats_service_snapshot(sv, "stop", err, sizeof err, NULL);
    if (sv->attached)
        ingest_detach(&sv->in);
    sv->attached = 0;
    endpoints_close(&sv->ep);
    log_info("stopped: %llu records, %llu invalid, %u tags, %llu snapshots",
             (unsigned long long)sv->in.records, (unsigned long long)sv->in.invalid,
             sv->store.n_tags, (unsigned long long)sv->snapshots);
}

int stats_service_run(const stats_options *opt)
{
    stats_service *sv = calloc(1, sizeof *sv);
    if (!sv) {
        log_error("out of memory");
        return 1;
    }
    int status = 1;
    if (setup(sv, opt))
        goto out;
    install_signals();
    restore(sv);
    char err[512];
    if (endpoints_open(&sv->ep, opt->run_dir, opt->segment, opt->shard_k, opt->shard_n,
                       (size_t)opt->max_request * 16, err, sizeof err)) {
        log_error("%s", err);
        goto out;
    }
    log_info("serving queries at ipc://%s, summaries at ipc://%s, snapshot %s", sv->ep.rep_path,
             sv->ep.pub_path, sv->snapshot_path);

    int waiting_logged = 0;
    int64_t now = mono_ns();
    int64_t next_second = now, next_check = now + 5 * SEC;
    int64_t next_publish = now + (int64_t)sv->opt.publish_interval_s * SEC;
    int64_t next_snapshot = now + (int64_t)sv->opt.snapshot_interval_s * SEC;
    while (!stop_requested) {
        if (reload_requested) {
            reload_requested = 0;
            stats_service_reload(sv);
            now = mono_ns();
            next_publish = now + (int64_t)sv->opt.publish_interval_s * SEC;
            next_snapshot = now + (int64_t)sv->opt.snapshot_interval_s * SEC;
        }
        if (sv->attached) {
            consume(sv);
            serve_requests(sv, 0);
        } else {
            serve_requests(sv, DETACHED_WAIT_MS);
        }
        now = mono_ns();
        if (now >= next_second) {
            next_second = now + SEC;
            tagstore_purge(&sv->store, real_ns() - sv->params.history_ns);
            if (!sv->attached)
                try_attach(sv, &waiting_logged);
            else
                ingest_update_counters(&sv->in, &sv->store);
        }
        if (sv->attached && now >= next_check) {
            next_check = now + 5 * SEC;
            if (ingest_segment_replaced(&sv->in)) {
                log_warn("segment %s was replaced or removed; re-attaching", opt->segment);
                ingest_detach(&sv->in);
                sv->attached = 0;
            } else {
                name_all_tags(sv);
            }
        }
        if (sv->opt.publish_interval_s && now >= next_publish) {
            next_publish = now + (int64_t)sv->opt.publish_interval_s * SEC;
            stats_service_publish_summary(sv);
        }
        if (sv->opt.snapshot_interval_s && now >= next_snapshot) {
            next_snapshot = now + (int64_t)sv->opt.snapshot_interval_s * SEC;
            stats_service_snapshot(sv, "periodic", err, sizeof err, NULL);
        }
    }
    log_info("stop requested");
    shutdown_service(sv);
    status = 0;
out:
    if (sv->attached)
        ingest_detach(&sv->in);
    tagstore_free(&sv->store);
    free(sv);
    return status;
}

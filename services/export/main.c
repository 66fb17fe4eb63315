/*
 * main.c — shmbus-export: one member of the consumer group of a target.
 *
 *   shmbus-export --config FILE --target postgres|mqtt [--name ID]
 *
 * Reads the group configuration (the export.<target> section must be
 * present), attaches to the segment (waiting for the controller to create
 * it), joins group export-pg or export-mqtt as member ID and runs the export
 * loop until SIGTERM or SIGINT. Start more processes with other names to
 * share a target's load.
 *
 * Exit status: 0 after an orderly stop, 1 when the service cannot go on
 * (segment gone, spool unusable), 2 for a bad command line or configuration.
 */
#include "config.h"
#include "export.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus-export --config FILE --target postgres|mqtt [--name ID]\n"
            "Streams the ring into PostgreSQL (consumer group export-pg) or an MQTT broker\n"
            "(export-mqtt), acknowledging only what the target confirmed. Run several with\n"
            "different --name to share the load. ID (default <target>-<pid>) names the member,\n"
            "its counters, its spool file and, for MQTT, its client id: give a fixed one.\n");
}

static bool valid_member_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > SHM_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return false;
    return true;
}

/* Attaches to the group's segment; the controller creates it, so wait for
 * it (one log line) rather than fail. Returns 0 or a negative SHM_E* code. */
static int attach(const char *name, shm_segment **seg)
{
    bool told = false;
    for (;;) {
        int rc = shm_segment_open(name, NULL, SHM_OPEN_ATTACH, seg);
        if (rc != SHM_ENOENT)
            return rc;
        if (!told) {
            log_warn("segment %s does not exist yet; waiting for the controller to create it",
                     name);
            told = true;
        }
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000000};
        nanosleep(&ts, NULL);
        if (stop)
            return rc;
    }
}

static int parse_u32_env(const char *name, uint32_t *out)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return 0;
    char *end;
    errno = 0;
    unsigned long x = strtoul(v, &end, 10);
    if (errno || *end || x > 600000) {
        fprintf(stderr, "shmbus-export: environment %s: '%s' is not a number of ms (0..600000)\n",
                name, v);
        return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *target_name = NULL, *member = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "shmbus-export: option '%s' needs a value\n", a);
            usage(stderr);
            return 2;
        }
        if (strcmp(a, "--config") == 0)
            config_path = v;
        else if (strcmp(a, "--target") == 0)
            target_name = v;
        else if (strcmp(a, "--name") == 0)
            member = v;
        else {
            fprintf(stderr, "shmbus-export: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!config_path || !target_name) {
        fprintf(stderr, "shmbus-export: --config and --target are required\n");
        usage(stderr);
        return 2;
    }
    bool pg = strcmp(target_name, "postgres") == 0, mqtt = strcmp(target_name, "mqtt") == 0;
    if (!pg && !mqtt) {
        fprintf(stderr, "shmbus-export: --target '%s': expected postgres or mqtt\n", target_name);
        return 2;
    }
    char default_name[SHM_NAME_MAX + 1];
    if (!member) {
        snprintf(default_name, sizeof default_name, "%s-%d", pg ? "pg" : "mqtt", (int)getpid());
        member = default_name;
    }
    if (!valid_member_name(member)) {
        fprintf(stderr, "shmbus-export: --name '%s': 1..%d characters of A-Z a-z 0-9 - _ .\n",
                member, SHM_NAME_MAX);
        return 2;
    }
    export_engine_options opts = {.member = member};
    if (parse_u32_env("SHMBUS_EXPORT_TEST_COMMIT_DELAY_MS", &opts.commit_delay_ms) < 0)
        return 2;
    /* The bench measures the deduplicating path (staging table + ON
     * CONFLICT) that re-delivered and replayed batches take. */
    const char *dedupe = getenv("SHMBUS_EXPORT_TEST_ALWAYS_DEDUPE");
    opts.always_dedupe = dedupe && strcmp(dedupe, "1") == 0;
    log_init(pg ? "export-pg" : "export-mqtt");

    char err[4096];
    config *cfg = NULL;
    if (config_load(config_path, &cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    if ((pg && !cfg->postgres.enabled) || (mqtt && !cfg->mqtt.enabled)) {
        fprintf(stderr, "%s: export.%s: not configured (add the section to switch this export on)\n",
                config_path, target_name);
        config_free(&cfg);
        return 2;
    }
    char spool_dir[4096];
    snprintf(spool_dir, sizeof spool_dir, "%s/export", cfg->paths.data_dir);
    opts.spool_dir = spool_dir;
    opts.batch_records = pg ? cfg->postgres.batch_records : cfg->mqtt.batch_records;
    opts.batch_age_ms = (int)(pg ? cfg->postgres.batch_age_ms : cfg->mqtt.batch_age_ms);
    /* Group commit is PostgreSQL's: a COMMIT per batch is what a backlog
     * waits on there. MQTT keeps several batches in flight instead. */
    opts.max_batches_per_commit = pg ? cfg->postgres.max_batches_per_commit : 1;
    opts.backoff_min_ms = pg ? cfg->postgres.backoff_min_ms : cfg->mqtt.backoff_min_ms;
    opts.backoff_max_ms = pg ? cfg->postgres.backoff_max_ms : cfg->mqtt.backoff_max_ms;
    opts.spool_max_bytes = pg ? cfg->postgres.spool_max_bytes : cfg->mqtt.spool_max_bytes;

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    shm_segment *seg = NULL;
    export_catalog *cat = NULL;
    export_target target = {0};
    /* The target first: settings that can never work (a conninfo libpq
     * cannot parse, a missing password or TLS file) stop us right here. */
    char reason[EXPORT_REASON_MAX];
    int rc = pg ? pg_target_create(cfg, member, &target, reason, sizeof reason)
                : mqtt_target_create(cfg, member, &target, reason, sizeof reason);
    if (rc) {
        log_error("%s: %s", target_name, reason);
        status = 2;
        goto out;
    }
    rc = attach(cfg->segment.name, &seg);
    if (rc) {
        if (!stop)
            log_error("segment %s: %s", cfg->segment.name, shm_last_error());
        status = stop ? 0 : 1;
        goto out;
    }
    shm_segment_set_log(seg, log_shm_sink, NULL);
    if ((rc = export_catalog_open(seg, &cat)) != 0 ||
        (rc = target.ops->bind_catalog(target.impl, cat)) != 0) {
        log_error("tag catalog: %s", rc == EXPORT_ENOMEM ? "out of memory" : shm_strerror(rc));
        goto out;
    }
    rc = export_engine_run(seg, &target, &opts, &stop);
    status = rc == 0 ? 0 : 1;
out:
    if (target.ops)
        target.ops->destroy(target.impl);
    export_catalog_close(&cat);
    shm_segment_close(&seg);
    config_free(&cfg);
    return status;
}

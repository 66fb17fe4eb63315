/*
 * main.c — shmbus-poller: reads the Modbus devices of the group
 * configuration and publishes every tag value into the segment's ring.
 * The main thread owns start-up, signals (SIGHUP reloads the tag list,
 * SIGINT/SIGTERM stop), the catalog and heartbeats; devices poll in their
 * own threads; the controller's commands arrive on a SUB thread.
 */
#include "config.h"
#include "control.h"
#include "groups.h"
#include "log.h"
#include "poller.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus-poller --config FILE\n"
            "\n"
            "Polls the devices of the group configuration FILE (Modbus TCP, RTU, RTU over\n"
            "TCP) and publishes each tag value as a TagValue record into the ring of segment\n"
            "/shmbus.<segment.name> (attached, or created from the file's segment section).\n"
            "Publishes the tag catalog, per-device counters (shmbus_poller_*), and obeys the\n"
            "controller on ipc://<paths.run_dir>/<segment.name>.events (see README.md).\n"
            "SIGHUP reloads the configuration's devices and tags without a restart;\n"
            "SIGINT/SIGTERM stop. Environment: SHMBUS_SEGMENT, SHMBUS_RUN_DIR, ... override\n"
            "the file; SHMBUS_LOG_LEVEL=debug|info|warning|error.\n");
}

static uint32_t max_tag_id(const config *cfg)
{
    uint32_t max = 0;
    for (size_t i = 0; i < cfg->n_devices; i++)
        for (size_t j = 0; j < cfg->devices[i].n_tags; j++)
            if (cfg->devices[i].tags[j].id + 1 > max)
                max = cfg->devices[i].tags[j].id + 1;
    return max;
}

static int open_segment(const config *cfg, shm_segment **seg)
{
    int rc = shm_segment_open(cfg->segment.name, NULL, SHM_OPEN_ATTACH, seg);
    if (rc == SHM_ENOENT) {
        shm_segment_options o = {
            .slot_size = cfg->segment.slot_size,
            .slot_count = cfg->segment.slot_count,
            .policy = cfg->segment.policy == CONFIG_POLICY_DROP_OLDEST ? SHM_POLICY_DROP_OLDEST
                                                                       : SHM_POLICY_BACKPRESSURE,
            .max_members = cfg->segment.max_members,
            .catalog_capacity = cfg->segment.catalog_capacity,
            .counter_capacity = cfg->segment.counter_capacity};
        rc = shm_segment_open(cfg->segment.name, &o, SHM_OPEN_CREATE, seg);
    }
    if (rc < 0) {
        log_error("segment %s: %s", cfg->segment.name, shm_last_error());
        return rc;
    }
    shm_segment_set_log(*seg, log_shm_sink, NULL);
    shm_segment_info info;
    shm_segment_info_get(*seg, &info);
    if (info.slot_payload < SHM_TAG_VALUE_MAX) {
        log_error("segment %s: slots of %u bytes hold %u bytes of payload; TagValue records "
                  "need %d (slot_size >= 128)",
                  cfg->segment.name, info.slot_size, info.slot_payload, SHM_TAG_VALUE_MAX);
        shm_segment_close(seg);
        return SHM_EGEOMETRY;
    }
    /* Before anything is produced: a consumer group created later would
     * miss the first records (the controller may start after us). */
    if (groups_ensure(*seg, cfg, "poller-setup") != 0) {
        shm_segment_close(seg);
        return SHM_EGROUPS;
    }
    if (max_tag_id(cfg) > info.catalog_capacity) {
        log_error("segment %s: its catalog holds ids below %u; the configuration uses %u",
                  cfg->segment.name, info.catalog_capacity, max_tag_id(cfg) - 1);
        shm_segment_close(seg);
        return SHM_EINVAL;
    }
    return 0;
}

/* SIGHUP: a new tag list without a restart. The old configuration keeps
 * running when the new one does not load or its devices do not start. */
static void reload(poller *p, const char *path)
{
    char err[8192];
    config *next = NULL;
    shm_counter_add(p->reloads, 1);
    if (config_load(path, &next, err, sizeof err) < 0) {
        shm_counter_add(p->reload_errors, 1);
        log_error("reload refused, keeping the running configuration:\n%s", err);
        return;
    }
    if (strcmp(next->segment.name, p->cfg->segment.name) != 0 ||
        next->segment.slot_count != p->cfg->segment.slot_count ||
        next->segment.slot_size != p->cfg->segment.slot_size)
        log_warn("reload: segment settings changed; they take effect at the next restart");
    shm_segment_info info;
    shm_segment_info_get(p->seg, &info);
    if (max_tag_id(next) > info.catalog_capacity) {
        shm_counter_add(p->reload_errors, 1);
        log_error("reload refused: tag ids up to %u do not fit the catalog (%u)",
                  max_tag_id(next) - 1, info.catalog_capacity);
        config_free(&next);
        return;
    }
    poller_stop_devices(p);
    config *old = p->cfg;
    p->cfg = next;
    if (poller_publish_catalog(p, next, max_tag_id(old)) == 0 && poller_start_devices(p) == 0) {
        log_info("reloaded %s: %zu devices, %zu tags", path, next->n_devices, next->n_tags);
        config_free(&old);
        return;
    }
    shm_counter_add(p->reload_errors, 1);
    log_error("reload failed; going back to the previous configuration");
    poller_stop_devices(p);
    uint32_t next_max = max_tag_id(next);
    p->cfg = old;
    config_free(&next);
    poller_publish_catalog(p, old, next_max);
    if (poller_start_devices(p) < 0)
        log_error("the previous configuration does not start either; polling nothing");
}

static int open_poller_counters(poller *p)
{
    int rc = shm_counter_open(p->seg, "shmbus_poller_control_messages_total", SHM_COUNTER,
                              &p->control_messages);
    if (!rc)
        rc = shm_counter_open(p->seg, "shmbus_poller_control_errors_total", SHM_COUNTER,
                              &p->control_errors);
    if (!rc)
        rc = shm_counter_open(p->seg, "shmbus_poller_reloads_total", SHM_COUNTER, &p->reloads);
    if (!rc)
        rc = shm_counter_open(p->seg, "shmbus_poller_reload_errors_total", SHM_COUNTER,
                              &p->reload_errors);
    if (rc < 0)
        log_error("counters: %s", shm_last_error());
    return rc;
}

static int run(poller *p, const char *path, sigset_t *signals)
{
    char url[512];
    snprintf(url, sizeof url, "ipc://%s/%s.events", p->cfg->paths.run_dir, p->cfg->segment.name);
    if (control_start(p, url) < 0)
        log_warn("running without controller commands");
    if (poller_start_devices(p) < 0)
        return 1;
    log_info("polling %zu devices, %zu tags into segment %s", p->cfg->n_devices, p->cfg->n_tags,
             p->cfg->segment.name);
    for (;;) {
        struct timespec tick = {.tv_sec = 0, .tv_nsec = 500000000};
        int sig = sigtimedwait(signals, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            log_info("signal %d: stopping", sig);
            break;
        }
        if (sig == SIGHUP || atomic_exchange(&p->steer.reload_requested, 0))
            reload(p, path);
        publisher_heartbeat(&p->pub);
    }
    return 0;
}

int main(int argc, char **argv)
{
    log_init("poller");
    const char *path = NULL;
    static const struct option opts[] = {{"config", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        if (opt == 'c') {
            path = optarg;
        } else if (opt == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }
    /* Signals are taken synchronously by the main thread; every thread
     * created from here on inherits the blocked mask. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[8192];
    poller p;
    memset(&p, 0, sizeof p);
    pthread_mutex_init(&p.devices_mu, NULL);
    atomic_init(&p.steer.min_priority, CONTROL_DEFAULT_MIN_PRIORITY);
    atomic_init(&p.steer.slow_factor, CONTROL_DEFAULT_SLOW_FACTOR);
    int status = 1;
    if (config_load(path, &p.cfg, err, sizeof err) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (open_segment(p.cfg, &p.seg) < 0)
        goto out_cfg;
    size_t pool = p.cfg->n_devices < 4 ? p.cfg->n_devices : 4;
    if (publisher_open(&p.pub, p.seg, pool ? pool : 1) < 0) {
        log_error("producers: %s", shm_last_error());
        goto out_seg;
    }
    if (open_poller_counters(&p) < 0 || poller_publish_catalog(&p, p.cfg, 0) < 0)
        goto out_pub;
    status = run(&p, path, &signals);
    control_stop(&p);
    poller_stop_devices(&p);
out_pub:
    publisher_close(&p.pub);
out_seg:
    shm_segment_close(&p.seg);
out_cfg:
    config_free(&p.cfg);
    pthread_mutex_destroy(&p.devices_mu);
    return status;
}

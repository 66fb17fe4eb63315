/*
 * setup.c — start-up and reload: the run directory and the controller's lock
 * file, the segment (created or re-attached, never reset unless asked), the
 * consumer groups the config implies, and the settings derived from the
 * config. Reload swaps config and settings under the controller lock.
 */
#include "ctl.h"

#include "events.h"
#include "groups.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t ctl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ctl_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void ctl_settings_from_config(const config *cfg, ctl_settings *out)
{
    const config_controller *k = &cfg->controller;
    memset(out, 0, sizeof *out);
    out->thr.enter[PRESSURE_LOW] = k->pressure_low;
    out->thr.enter[PRESSURE_MODERATE] = k->pressure_moderate;
    out->thr.enter[PRESSURE_HIGH] = k->pressure_high;
    out->thr.enter[PRESSURE_CRITICAL] = k->pressure_critical;
    out->thr.hysteresis = k->pressure_hysteresis;
    out->check_interval_ms = k->check_interval_ms ? k->check_interval_ms : 100;
    out->rss_limit_bytes = (uint64_t)k->rss_limit_mb << 20;
    out->device_quota = k->device_quota;
    out->leak_window_s = k->leak_window_s;
    out->leak_growth_mb_per_min = k->leak_growth_mb_per_min;
    for (size_t i = 0; i < k->n_required_roles; i++) {
        if (out->n_roles == CTL_MAX_ROLES) {
            log_warn("controller.required_roles: only the first %d roles are checked",
                     CTL_MAX_ROLES);
            break;
        }
        snprintf(out->roles[out->n_roles++], sizeof out->roles[0], "%s", k->required_roles[i]);
    }
}

int ctl_create_groups(controller *c, const config *cfg)
{
    return groups_ensure(c->seg, cfg, "controller-setup");
}

/* mkdir -p with mode for each missing component. */
static int make_dirs(const char *path, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int ctl_take_lock(controller *c, const char *segment)
{
    int rc = make_dirs(c->run_dir, 0750);
    if (rc < 0) {
        log_error("run directory %s: %s", c->run_dir, strerror(-rc));
        return -1;
    }
    if (snprintf(c->lock_path, sizeof c->lock_path, "%s/%s.controller.lock", c->run_dir, segment) >=
        (int)sizeof c->lock_path) {
        log_error("run directory %s: path too long", c->run_dir);
        return -1;
    }
    c->lock_fd = open(c->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (c->lock_fd < 0) {
        log_error("lock file %s: %s", c->lock_path, strerror(errno));
        return -1;
    }
    if (flock(c->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char who[32] = "";
        ssize_t n = pread(c->lock_fd, who, sizeof who - 1, 0);
        who[n > 0 ? n : 0] = '\0';
        who[strcspn(who, "\n")] = '\0';
        log_error("another controller holds %s (pid %s); one controller per segment", c->lock_path,
                  who[0] ? who : "unknown");
        close(c->lock_fd);
        c->lock_fd = -1;
        return -1;
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(c->lock_fd, 0) != 0 || pwrite(c->lock_fd, pid, (size_t)len, 0) != len)
        log_warn("lock file %s: cannot record our pid", c->lock_path);
    return 0;
}

void ctl_release_lock(controller *c)
{
    if (c->lock_fd >= 0) {
        close(c->lock_fd); /* releases the flock; the file stays (harmless) */
        c->lock_fd = -1;
    }
}

int ctl_open_segment(controller *c, const config *cfg, bool reset, bool force)
{
    shm_segment_options o = {
        .slot_size = cfg->segment.slot_size,
        .slot_count = cfg->segment.slot_count,
        .policy = cfg->segment.policy == CONFIG_POLICY_DROP_OLDEST ? SHM_POLICY_DROP_OLDEST
                                                                   : SHM_POLICY_BACKPRESSURE,
        .max_members = cfg->segment.max_members,
        .catalog_capacity = cfg->segment.catalog_capacity,
        .counter_capacity = cfg->segment.counter_capacity,
    };
    unsigned flags = SHM_OPEN_CREATE;
    if (reset)
        flags |= SHM_OPEN_RESET | (force ? SHM_OPEN_FORCE : 0);
    int rc = shm_segment_open(cfg->segment.name, &o, flags, &c->seg);
    if (rc != 0) {
        log_error("segment '%s': %s", cfg->segment.name, shm_last_error());
        if (rc == SHM_EEXIST)
            log_error("the segment exists with another geometry or policy; restart with "
                      "--reset (refused while members live; --force overrides) to replace it");
        return rc;
    }
    shm_segment_set_log(c->seg, log_shm_sink, NULL);
    shm_segment_info_get(c->seg, &c->info);
    log_info("segment '%s': %u slots of %u bytes, %s, %s by pid %d", c->info.name,
             c->info.slot_count, c->info.slot_size,
             c->info.policy == SHM_POLICY_DROP_OLDEST ? "drop-oldest" : "backpressure",
             reset ? "created fresh" : "attached (created if missing)", (int)c->info.creator_pid);
    return 0;
}

int ctl_reload(controller *c, const char *why, char *err, size_t errlen)
{
    pthread_mutex_lock(&c->lock);
    char *path = strdup(c->cfg->file);
    pthread_mutex_unlock(&c->lock);
    if (!path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    config *fresh = NULL;
    char text[4096];
    int rc = config_load(path, &fresh, text, sizeof text);
    free(path);
    if (rc != 0) {
        snprintf(err, errlen, "reload failed, old configuration kept: %s", text);
        log_error("reload (%s): %s", why, err);
        shm_counter_add(c->counters.reloads_error, 1);
        return -1;
    }
    if (strcmp(fresh->segment.name, c->info.name) != 0 ||
        fresh->segment.slot_count != c->info.slot_count ||
        fresh->segment.slot_size != c->info.slot_size)
        log_warn("reload: segment settings changed; they take effect after a restart with "
                 "--reset");
    if (ctl_create_groups(c, fresh) != 0)
        log_warn("reload: not every consumer group could be created");
    ctl_settings set;
    ctl_settings_from_config(fresh, &set);
    pthread_mutex_lock(&c->lock);
    if (strcmp(fresh->controller.http, c->cfg->controller.http) != 0 ||
        strcmp(fresh->paths.run_dir, c->cfg->paths.run_dir) != 0)
        log_warn("reload: controller.http and paths.run_dir take effect after a restart");
    log_info("reloaded %s (%s)", fresh->file, why);
    config *old = c->cfg;
    c->cfg = fresh;
    c->set = set;
    pthread_mutex_unlock(&c->lock);
    config_free(&old);
    shm_counter_add(c->counters.reloads_ok, 1);
    events_reload(c->ev);
    return 0;
}

/*
 * reload.c — SIGHUP for shmbus-stats: the configuration file and the flags
 * are read again (stats_options_parse, so every error is reported as at
 * start); window, history, memory limit, deadband, interval bounds and the
 * snapshot and publish periods are applied to the running store, the rest
 * is logged as waiting for a restart. A file that does not load changes
 * nothing. Runs on the service's one thread, between two loop turns.
 */
#include "service.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SEC 1000000000LL

static void append_if(int changed, const char *name, char *buf, size_t len)
{
    size_t n = strlen(buf);
    if (changed && n < len)
        snprintf(buf + n, len - n, "%s%s", n ? ", " : "", name);
}

/* What a reload cannot change in a running process. */
static void warn_restart_only(const stats_options *old, const stats_options *fresh)
{
    char what[256] = "";
    append_if(strcmp(old->segment, fresh->segment) != 0, "segment", what, sizeof what);
    append_if(strcmp(old->run_dir, fresh->run_dir) != 0, "run_dir", what, sizeof what);
    append_if(strcmp(old->data_dir, fresh->data_dir) != 0, "data_dir", what, sizeof what);
    append_if(old->shard_k != fresh->shard_k || old->shard_n != fresh->shard_n, "shard", what,
              sizeof what);
    append_if(old->max_tags != fresh->max_tags, "max tags", what, sizeof what);
    append_if(old->max_request != fresh->max_request, "max request", what, sizeof what);
    if (what[0])
        log_warn("reload: %s take effect after a restart", what);
}

void stats_service_reload(stats_service *sv)
{
    stats_options fresh;
    /* Errors were printed (file, line, field; or the memory limit). */
    if (stats_options_parse(&fresh, sv->opt.argc, sv->opt.argv) != 0) {
        log_error("reload failed (above); the running settings stay");
        return;
    }
    warn_restart_only(&sv->opt, &fresh);
    tagstore *s = &sv->store;
    int64_t history_ns = (int64_t)fresh.history_s * SEC;
    int rc = tagstore_set_limits(s, fresh.window, fresh.history_capacity,
                                 (uint64_t)fresh.memory_limit_mb << 20, history_ns);
    if (rc == -ENOMEM)
        log_error("reload: %llu tags kept their sizes for lack of memory",
                  (unsigned long long)s->resize_failures);
    s->p.deadband = fresh.deadband;
    s->p.limits =
        (suggest_limits){.min_ms = fresh.min_interval_ms, .max_ms = fresh.max_interval_ms};
    for (uint32_t i = 0; i < s->n_tags; i++)
        tagstore_at(s, i)->roll.deadband = fresh.deadband;
    sv->opt.window = fresh.window;
    sv->opt.history_s = fresh.history_s;
    sv->opt.history_capacity = fresh.history_capacity;
    sv->opt.memory_limit_mb = fresh.memory_limit_mb;
    sv->opt.memory_limit_name = fresh.memory_limit_name;
    sv->opt.deadband = fresh.deadband;
    sv->opt.min_interval_ms = fresh.min_interval_ms;
    sv->opt.max_interval_ms = fresh.max_interval_ms;
    sv->opt.snapshot_interval_s = fresh.snapshot_interval_s;
    sv->opt.publish_interval_s = fresh.publish_interval_s;
    stats_options_store_params(&sv->opt, &sv->params);
    sv->params.planned_tags = s->grant.tags;
    log_info("reloaded %s", sv->opt.config_path ? sv->opt.config_path : "the flags");
}

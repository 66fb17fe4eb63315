/*
 * groups.c — creating the consumer groups a configuration implies.
 * See groups.h.
 */
#include "groups.h"

#include <stdbool.h>
#include <string.h>

#include "log.h"

int groups_for_config(const config *cfg, const char **names, int max)
{
    int n = 0;
    if (n < max)
        names[n++] = "writer";
    if (n < max)
        names[n++] = "stats";
    if (cfg->postgres.enabled && n < max)
        names[n++] = "export-pg";
    if (cfg->mqtt.enabled && n < max)
        names[n++] = "export-mqtt";
    return n;
}

static bool group_exists(const shm_segment *seg, const char *name)
{
    shm_group_stats gs[SHM_MAX_GROUPS];
    int ng = shm_group_stats_get(seg, gs, SHM_MAX_GROUPS);
    for (int g = 0; g < ng && g < SHM_MAX_GROUPS; g++)
        if (strcmp(gs[g].name, name) == 0)
            return true;
    return false;
}

int groups_ensure(shm_segment *seg, const config *cfg, const char *who)
{
    const char *names[GROUPS_FOR_CONFIG_MAX];
    int n = groups_for_config(cfg, names, GROUPS_FOR_CONFIG_MAX);
    for (int i = 0; i < n; i++) {
        if (group_exists(seg, names[i]))
            continue;
        /* Joining creates the group at the newest record; leaving right away
         * keeps the group (groups are never removed). Two processes racing
         * here both join the one group libshm creates. */
        shm_consumer *tmp;
        int rc = shm_consumer_open(seg, names[i], who, &tmp);
        if (rc != 0) {
            log_error("creating consumer group '%s': %s", names[i], shm_last_error());
            return rc;
        }
        shm_consumer_close(&tmp);
        log_info("created consumer group '%s'", names[i]);
    }
    return 0;
}

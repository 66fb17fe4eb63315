/*
 * groups.h — the consumer groups a configuration implies (writer, stats and
 * the export groups that are switched on), created in the segment by
 * whichever member of the process group gets there first.
 *
 * A group sees only records committed after it was created, so the poller
 * creates them before producing anything, as the controller does at start:
 * whatever order a supervisor starts the processes in, no group misses the
 * first records.
 */
#ifndef SHMBUS_COMMON_GROUPS_H
#define SHMBUS_COMMON_GROUPS_H

#include <shmbus/shm.h>

#include "config.h"

#define GROUPS_FOR_CONFIG_MAX 8

/* Fills names[] with the groups cfg implies; returns how many. */
int groups_for_config(const config *cfg, const char **names, int max);

/* Creates each of them that does not exist yet (logging "created consumer
 * group"), as member `who` that leaves at once. Returns 0, or the libshm
 * error of the first group that could not be created (logged). */
int groups_ensure(shm_segment *seg, const config *cfg, const char *who);

#endif

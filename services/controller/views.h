/*
 * views.h — the JSON documents the controller serves, built from the
 * monitor's last view under the controller lock (one consistent snapshot
 * each). The control plane (control_cmds.c) and the HTTP API (http.c) share
 * them, so both always agree. Each returns a new reference, NULL when out of
 * memory.
 */
#ifndef SHMBUS_CTL_VIEWS_H
#define SHMBUS_CTL_VIEWS_H

#include <jansson.h>

#include "ctl.h"

/* Dump flags for every JSON the controller writes. */
#define CTL_JSON_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6))

/* GET /api/buffer/status */
json_t *view_buffer(controller *c);
/* GET /api/members, control "members" */
json_t *view_members(controller *c);
/* GET /api/pressure, control "pressure" */
json_t *view_pressure(controller *c);
/* GET /healthz; *healthy set to false when a required role has no live
 * member or the monitor has stopped checking. */
json_t *view_health(controller *c, bool *healthy);
/* control "status" */
json_t *view_status(controller *c);

#endif

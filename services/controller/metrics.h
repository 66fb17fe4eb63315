/*
 * metrics.h — GET /metrics: the Prometheus text exposition format (0.0.4).
 * The controller's own view (ring, groups, members, pressure, devices) plus
 * every named counter in the segment, sanitized into valid names.
 */
#ifndef SHMBUS_CTL_METRICS_H
#define SHMBUS_CTL_METRICS_H

#include "ctl.h"
#include "strbuf.h"

/* Appends the whole exposition to out. Returns 0 or -1 (out of memory). */
int metrics_render(controller *c, strbuf *out);

/* Appends the named counters of seg, skipping families whose name is in
 * taken (NULL-terminated). Exposed for tests. Returns 0 or -1. */
int metrics_render_named(const shm_segment *seg, const char *const *taken, strbuf *out);

#endif

/*
 * http.h — the controller's HTTP endpoint (nng's HTTP server), loopback by
 * default: /api/buffer/status, /api/members, /api/pressure, /healthz and
 * /metrics, GET (and HEAD) only. Unknown paths 404, other methods 405 (with
 * Allow), request bodies over CTL_REQUEST_MAX 413, chunked bodies 411. A
 * connection whose request sent a body is closed after the answer, with a
 * lingering close (http_linger.h).
 */
#ifndef SHMBUS_CTL_HTTP_H
#define SHMBUS_CTL_HTTP_H

#include <stddef.h>

#include "ctl.h"

/* Turns "host:port" (or "[v6]:port") into "http://host:port". Returns 0 or -1
 * when it is not such an address (port 1..65535). */
int http_url_from_addr(const char *addr, char *url, size_t len);

/* Starts serving on addr. Returns 0 or an nng error (logged). */
int http_start(controller *c, const char *addr);
void http_stop(controller *c);

#endif

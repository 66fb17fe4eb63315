/*
 * control.h — the control plane: nng REP at ipc://<run_dir>/<segment>.control.
 *
 * Requests and responses are single JSON objects (see README.md for the
 * protocol): {"cmd":"status"} -> {...}; errors are {"error":"..."}. A bad
 * request never stops the controller: it is answered and counted.
 */
#ifndef SHMBUS_CTL_CONTROL_H
#define SHMBUS_CTL_CONTROL_H

#include <stddef.h>

#include "ctl.h"

/* Answers one request (raw bytes, any content). Returns the response text
 * (malloc'd, NUL-terminated; never NULL unless out of memory). */
char *control_handle(controller *c, const void *request, size_t len);

/* Opens the REP socket on c->control_url and starts the thread that serves
 * it. Returns 0 or an nng error. */
int control_start(controller *c);

/* Closes the socket (which ends the thread's receive) and joins the thread. */
void control_stop(controller *c);

#endif

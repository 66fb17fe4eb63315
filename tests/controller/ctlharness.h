/*
 * ctlharness.h — starting a real shmbus-controller from a cmocka test: a
 * config in a temporary directory, a unique segment, a free loopback port,
 * the process tracked by shmtest (killed at exit whatever happens).
 */
#ifndef CTLHARNESS_H
#define CTLHARNESS_H

#include <shmbus/shm.h>

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

typedef struct ctlh {
    char dir[512];
    char config[PATH_MAX];
    char log[PATH_MAX];
    char segment[64];
    int port;
    pid_t pid;
} ctlh;

/* Prepares dir, segment name, port and a config whose segment section is
 * `segment_extra` (YAML lines, indented two spaces) and controller section
 * `controller_extra`. */
void ctlh_init(ctlh *h, const char *prefix, const char *segment_extra,
               const char *controller_extra);

/* Starts the controller (extra_arg may be NULL) and waits until it logs that
 * it runs (segment, groups, sockets and HTTP all up). Returns the pid, or -1
 * if it exited or did not come up within 10 s. */
pid_t ctlh_start(ctlh *h, const char *extra_arg);

/* SIGTERM, then waits up to 10 s; returns the wait status or -1. */
int ctlh_stop(ctlh *h);

/* Value of a named counter in the segment, 0 when absent. */
uint64_t ctlh_counter(shm_segment *seg, const char *name);

/* Whether the controller's log contains text. */
bool ctlh_log_has(const ctlh *h, const char *text);

/* Whether a line the controller with this pid wrote contains text (the log
 * file is shared by every controller a test starts). */
bool ctlh_log_has_from(const ctlh *h, pid_t pid, const char *text);

#endif

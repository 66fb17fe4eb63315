/*
 * events.h — the controller's nng PUB socket (ipc://<run_dir>/<segment>.events).
 *
 * Every message is one compact JSON object; subscribers (the poller, nngcat)
 * subscribe to "" and dispatch on "cmd":
 *   {"cmd":"pressure","level":"none|low|moderate|high|critical"}
 *   {"cmd":"pause"}   {"cmd":"resume"}   {"cmd":"reload"}
 *   {"cmd":"set_interval","device":"plc1","group":"fast","interval_ms":500}
 * nng sockets are thread-safe: any thread may publish. PUB never blocks; a
 * subscriber that is not connected (or too slow) misses messages, so the
 * segment also carries the pressure level and the paused flag for late
 * joiners (shm_ring_stats_get).
 */
#ifndef SHMBUS_CTL_EVENTS_H
#define SHMBUS_CTL_EVENTS_H

#include <stdint.h>

typedef struct events events;

/* Opens the PUB socket and listens on url. Returns 0 or an nng error. */
int events_open(events **out, const char *url);
void events_close(events **ev);

int events_pressure(events *ev, int level);
int events_pause(events *ev);
int events_resume(events *ev);
int events_reload(events *ev);
int events_set_interval(events *ev, const char *device, const char *group, uint32_t interval_ms);

/* Messages published since start (for tests and /metrics). */
uint64_t events_sent(const events *ev);

#endif

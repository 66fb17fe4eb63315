/*
 * control.h — commands from the controller, received on an nng SUB socket
 * dialed to ipc://<run_dir>/<segment>.events. Messages are small JSON
 * objects (documented in README.md):
 *   {"cmd":"pause"}  {"cmd":"resume"}  {"cmd":"reload"}
 *   {"cmd":"set_interval","device":"plc1","group":"fast","interval_ms":500}
 *   {"cmd":"pressure","level":"none|low|moderate|high|critical",
 *    "min_priority":1, "slow_factor":4}          (the last two optional)
 * Other commands on the bus (meant for other services) are ignored; a
 * malformed message is logged and counted, never fatal.
 */
#ifndef SHMBUS_POLLER_CONTROL_H
#define SHMBUS_POLLER_CONTROL_H

#include "config.h"

#include <stddef.h>
#include <stdint.h>

enum control_cmd {
    CTL_IGNORED = 0, /* valid JSON with a "cmd" this service does not handle */
    CTL_PAUSE,
    CTL_RESUME,
    CTL_RELOAD,
    CTL_SET_INTERVAL,
    CTL_PRESSURE,
};

enum pressure_level {
    PRESSURE_NONE = 0,
    PRESSURE_LOW = 1,
    PRESSURE_MODERATE = 2, /* low-priority poll groups run slow_factor times slower */
    PRESSURE_HIGH = 3,     /* low-priority tags are not polled or published */
    PRESSURE_CRITICAL = 4, /* polling pauses */
};

#define CONTROL_DEFAULT_MIN_PRIORITY 1 /* priority >= this is "low priority" */
#define CONTROL_DEFAULT_SLOW_FACTOR 4
#define CONTROL_MSG_MAX 4096

typedef struct control_msg {
    int cmd;
    char device[CONFIG_NAME_MAX + 1];
    char group[CONFIG_NAME_MAX + 1];
    uint32_t interval_ms;
    int level;
    uint32_t min_priority;
    uint32_t slow_factor;
} control_msg;

/* Parses one message. Returns 0 (out filled) or -1 with the reason in err. */
int control_parse(const char *text, size_t len, control_msg *out, char *err, size_t errlen);

const char *pressure_level_name(int level);

struct poller;
/* Starts the SUB thread for p; returns 0 or a negative code (logged). */
int control_start(struct poller *p, const char *url);
void control_stop(struct poller *p);

#endif

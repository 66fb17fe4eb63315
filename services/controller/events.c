/*
 * events.c — publishing commands and pressure levels over nng PUB (see
 * events.h). Messages are built with jansson so names are always escaped.
 */
#include "events.h"

#include "ipc.h"
#include "log.h"
#include "pressure.h"

#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct events {
    nng_socket sock;
    atomic_uint_fast64_t sent; /* relaxed: a statistic */
};

int events_open(events **out, const char *url)
{
    events *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NNG_ENOMEM;
    int rv = nng_pub0_open(&ev->sock);
    if (rv != 0) {
        free(ev);
        return rv;
    }
    rv = ctl_ipc_listen(ev->sock, url);
    if (rv != 0) {
        nng_close(ev->sock);
        free(ev);
        return rv;
    }
    *out = ev;
    return 0;
}

void events_close(events **ev)
{
    if (!ev || !*ev)
        return;
    nng_close((*ev)->sock);
    free(*ev);
    *ev = NULL;
}

/* Publishes msg (takes the reference). */
static int publish(events *ev, json_t *msg)
{
    if (!msg)
        return NNG_ENOMEM;
    char *text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(msg);
    if (!text)
        return NNG_ENOMEM;
    int rv = nng_send(ev->sock, text, strlen(text), 0);
    if (rv != 0)
        log_warn("events: publishing %s: %s", text, nng_strerror(rv));
    else
        atomic_fetch_add_explicit(&ev->sent, 1, memory_order_relaxed);
    log_debug("events: %s", text);
    free(text);
    return rv;
}

int events_pressure(events *ev, int level)
{
    return publish(ev,
                   json_pack("{s:s, s:s}", "cmd", "pressure", "level", pressure_level_name(level)));
}

int events_pause(events *ev)
{
    return publish(ev, json_pack("{s:s}", "cmd", "pause"));
}

int events_resume(events *ev)
{
    return publish(ev, json_pack("{s:s}", "cmd", "resume"));
}

int events_reload(events *ev)
{
    return publish(ev, json_pack("{s:s}", "cmd", "reload"));
}

int events_set_interval(events *ev, const char *device, const char *group, uint32_t interval_ms)
{
    return publish(ev, json_pack("{s:s, s:s, s:s, s:I}", "cmd", "set_interval", "device", device,
                                 "group", group, "interval_ms", (json_int_t)interval_ms));
}

uint64_t events_sent(const events *ev)
{
    return ev ? atomic_load_explicit(&ev->sent, memory_order_relaxed) : 0;
}

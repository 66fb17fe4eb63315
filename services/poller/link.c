/*
 * link.c — picks the link implementation for a device's transport.
 */
#include "link.h"

#include <stddef.h>

mb_link *link_new(const config_device *d)
{
    if (d->transport == CONFIG_RTU_OVER_TCP)
        return link_rtu_tcp_new(d);
    return link_modbus_new(d);
}

void link_destroy(mb_link **l)
{
    if (!l || !*l)
        return;
    (*l)->ops->close(*l);
    (*l)->ops->destroy(*l);
    *l = NULL;
}

const char *link_outcome_name(int outcome)
{
    switch (outcome) {
    case LINK_OK:
        return "ok";
    case LINK_EXCEPTION:
        return "exception";
    case LINK_TIMEOUT:
        return "timeout";
    case LINK_BAD_FRAME:
        return "bad_frame";
    case LINK_CLOSED:
        return "connection";
    default:
        return "?";
    }
}

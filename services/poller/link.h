/*
 * link.h — one connection to one Modbus device, whatever the transport:
 * libmodbus for TCP and RTU serial lines (link_modbus.c), our own framing
 * for RTU over TCP (link_rtu_tcp.c). A link belongs to one device thread
 * and is never shared (libmodbus contexts are not thread-safe).
 *
 * Every read ends in one classified outcome, which decides the quality of
 * the records and what the device thread does next:
 *   LINK_OK         data in regs/bits
 *   LINK_EXCEPTION  the device answered a Modbus exception (code given)
 *   LINK_TIMEOUT    no (complete) answer in time: flush before the next request
 *   LINK_BAD_FRAME  an answer that does not fit the request (transaction id,
 *                   unit, function, length, CRC): reconnect (TCP) or flush
 *   LINK_CLOSED     the connection is gone: reconnect with backoff
 */
#ifndef SHMBUS_POLLER_LINK_H
#define SHMBUS_POLLER_LINK_H

#include "config.h"

#include <stdint.h>

enum link_outcome {
    LINK_OK = 0,
    LINK_EXCEPTION = 1,
    LINK_TIMEOUT = 2,
    LINK_BAD_FRAME = 3,
    LINK_CLOSED = 4,
};

typedef struct mb_link mb_link;

typedef struct mb_link_ops {
    int (*connect)(mb_link *l);  /* 0 or a negative errno; detail in l->error */
    void (*close)(mb_link *l);
    int (*read)(mb_link *l, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count, uint16_t *regs,
                uint8_t *bits, uint8_t *exception); /* enum link_outcome */
    void (*flush)(mb_link *l);   /* discard whatever the device sent late */
    void (*destroy)(mb_link *l);
} mb_link_ops;

struct mb_link {
    const mb_link_ops *ops;
    const config_device *device;
    int connected;
    char error[160]; /* last failure, for logs */
};

/* Creates the link for d's transport (not connected). NULL on ENOMEM. */
mb_link *link_new(const config_device *d);

mb_link *link_modbus_new(const config_device *d);
mb_link *link_rtu_tcp_new(const config_device *d);

static inline int link_connect(mb_link *l)
{
    return l->ops->connect(l);
}
static inline void link_close(mb_link *l)
{
    l->ops->close(l);
}
static inline int link_read(mb_link *l, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count,
                            uint16_t *regs, uint8_t *bits, uint8_t *exception)
{
    return l->ops->read(l, unit, fc, addr, count, regs, bits, exception);
}
static inline void link_flush(mb_link *l)
{
    l->ops->flush(l);
}
void link_destroy(mb_link **l);

const char *link_outcome_name(int outcome);

#endif

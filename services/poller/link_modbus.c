/*
 * link_modbus.c — links over libmodbus: Modbus TCP and RTU serial lines.
 * libmodbus's own error recovery is off; the device thread decides (flush
 * after a timeout, reconnect after a bad frame or a lost connection).
 * errno after a failed libmodbus call is mapped to a link outcome here.
 */
#include "link.h"

#include <errno.h>
#include <modbus/modbus.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct link_modbus {
    mb_link base;
    modbus_t *ctx;
} link_modbus;

static void set_timeouts(modbus_t *ctx, const config_device *d)
{
    modbus_set_response_timeout(ctx, d->response_timeout_ms / 1000,
                                (d->response_timeout_ms % 1000) * 1000);
    if (d->byte_timeout_ms)
        modbus_set_byte_timeout(ctx, d->byte_timeout_ms / 1000, (d->byte_timeout_ms % 1000) * 1000);
}

static modbus_t *make_context(const config_device *d)
{
    if (d->transport == CONFIG_RTU)
        return modbus_new_rtu(d->serial.device, (int)d->serial.baud, d->serial.parity,
                              d->serial.data_bits, d->serial.stop_bits);
    char port[8];
    snprintf(port, sizeof port, "%u", d->port);
    return modbus_new_tcp_pi(d->host, port);
}

static int lm_connect(mb_link *l)
{
    link_modbus *m = (link_modbus *)l;
    if (!m->ctx) {
        m->ctx = make_context(l->device);
        if (!m->ctx) {
            int e = errno ? errno : ENOMEM;
            snprintf(l->error, sizeof l->error, "cannot create context: %s", modbus_strerror(e));
            return -e;
        }
        modbus_set_error_recovery(m->ctx, MODBUS_ERROR_RECOVERY_NONE);
        set_timeouts(m->ctx, l->device);
    }
    if (modbus_connect(m->ctx) < 0) {
        int e = errno ? errno : EIO;
        snprintf(l->error, sizeof l->error, "connect: %s", modbus_strerror(e));
        return -e;
    }
    l->connected = 1;
    return 0;
}

static void lm_close(mb_link *l)
{
    link_modbus *m = (link_modbus *)l;
    if (m->ctx && l->connected)
        modbus_close(m->ctx);
    l->connected = 0;
}

static int classify(mb_link *l, int e, uint8_t *exception)
{
    if (e > MODBUS_ENOBASE && e <= MODBUS_ENOBASE + 0xff && e < EMBBADCRC) {
        *exception = (uint8_t)(e - MODBUS_ENOBASE);
        return LINK_EXCEPTION;
    }
    switch (e) {
    case ETIMEDOUT:
        snprintf(l->error, sizeof l->error, "no answer within the timeout");
        return LINK_TIMEOUT;
    case EMBBADCRC:
    case EMBBADDATA:
    case EMBBADEXC:
    case EMBUNKEXC:
    case EMBMDATA:
    case EMBBADSLAVE:
        snprintf(l->error, sizeof l->error,
                 "answer does not fit the request (%s: transaction or protocol id, unit, "
                 "function or length)",
                 modbus_strerror(e));
        return LINK_BAD_FRAME;
    default:
        snprintf(l->error, sizeof l->error, "%s", modbus_strerror(e));
        return LINK_CLOSED; /* ECONNRESET, EPIPE, EBADF, ... */
    }
}

static int lm_read(mb_link *l, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count,
                   uint16_t *regs, uint8_t *bits, uint8_t *exception)
{
    link_modbus *m = (link_modbus *)l;
    if (!l->connected)
        return LINK_CLOSED;
    modbus_set_slave(m->ctx, unit);
    int rc;
    errno = 0;
    switch (fc) {
    case 1:
        rc = modbus_read_bits(m->ctx, addr, count, bits);
        break;
    case 2:
        rc = modbus_read_input_bits(m->ctx, addr, count, bits);
        break;
    case 3:
        rc = modbus_read_registers(m->ctx, addr, count, regs);
        break;
    default:
        rc = modbus_read_input_registers(m->ctx, addr, count, regs);
        break;
    }
    if (rc == count)
        return LINK_OK;
    if (rc >= 0) {
        snprintf(l->error, sizeof l->error, "short answer: %d of %u", rc, count);
        return LINK_BAD_FRAME;
    }
    int e = errno ? errno : EIO;
    /* libmodbus closes the socket itself when the peer is gone. */
    int outcome = classify(l, e, exception);
    if (outcome == LINK_CLOSED)
        lm_close(l);
    return outcome;
}

static void lm_flush(mb_link *l)
{
    link_modbus *m = (link_modbus *)l;
    if (m->ctx && l->connected)
        modbus_flush(m->ctx);
}

static void lm_destroy(mb_link *l)
{
    link_modbus *m = (link_modbus *)l;
    if (m->ctx)
        modbus_free(m->ctx);
    free(m);
}

static const mb_link_ops modbus_ops = {
    .connect = lm_connect, .close = lm_close, .read = lm_read, .flush = lm_flush,
    .destroy = lm_destroy};

mb_link *link_modbus_new(const config_device *d)
{
    link_modbus *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->base.ops = &modbus_ops;
    m->base.device = d;
    return &m->base;
}

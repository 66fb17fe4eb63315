/*
 * rtu_frame.h — Modbus RTU framing (unit id, PDU, CRC-16/MODBUS) for
 * "RTU over TCP" gateways, which libmodbus does not speak. Pure functions
 * over byte buffers; the socket side is in link_rtu_tcp.c.
 */
#ifndef SHMBUS_POLLER_RTU_FRAME_H
#define SHMBUS_POLLER_RTU_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define RTU_REQUEST_LEN 8          /* unit fc addr(2) count(2) crc(2) */
#define RTU_MAX_FRAME 256

/* CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); sent low byte first. */
uint16_t rtu_crc16(const uint8_t *p, size_t n);

/* Builds a read request (fc 1..4) into out[RTU_REQUEST_LEN]. */
void rtu_build_read(uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count, uint8_t *out);

/* How many bytes the whole response will have, given its first 3 bytes
 * (unit, fc, byte count or exception code): 5 for an exception, 5 + byte
 * count for data. */
size_t rtu_response_len(const uint8_t *head3);

enum rtu_status {
    RTU_OK = 0,
    RTU_EXCEPTION = 1,     /* *exception holds the code */
    RTU_BAD_CRC = -1,
    RTU_BAD_UNIT = -2,     /* answer from another unit id */
    RTU_BAD_FUNCTION = -3, /* answer to another function */
    RTU_BAD_LENGTH = -4,   /* byte count does not match the request */
};

/* Checks a complete response to a read of `count` registers/bits and copies
 * the data: registers into regs (host order), bits into bits (one byte per
 * bit, 0/1). Returns an rtu_status. */
int rtu_parse_read(const uint8_t *frame, size_t len, uint8_t unit, uint8_t fc, uint16_t count,
                   uint16_t *regs, uint8_t *bits, uint8_t *exception);

const char *rtu_strerror(int status);

#endif

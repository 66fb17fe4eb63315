/*
 * rtu_frame.c — Modbus RTU frames and CRC-16 for RTU over TCP (see
 * rtu_frame.h). Every field of a response is checked before any byte of it
 * is used: CRC over the whole frame first, then unit, function and length.
 */
#include "rtu_frame.h"

uint16_t rtu_crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0xffff;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xa001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

void rtu_build_read(uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count, uint8_t *out)
{
    out[0] = unit;
    out[1] = fc;
    out[2] = (uint8_t)(addr >> 8);
    out[3] = (uint8_t)(addr & 0xff);
    out[4] = (uint8_t)(count >> 8);
    out[5] = (uint8_t)(count & 0xff);
    uint16_t crc = rtu_crc16(out, 6);
    out[6] = (uint8_t)(crc & 0xff);
    out[7] = (uint8_t)(crc >> 8);
}

size_t rtu_response_len(const uint8_t *head3)
{
    if (head3[1] & 0x80)
        return 5;
    return 5 + (size_t)head3[2];
}

static uint16_t expected_bytes(uint8_t fc, uint16_t count)
{
    return fc <= 2 ? (uint16_t)((count + 7) / 8) : (uint16_t)(2 * count);
}

int rtu_parse_read(const uint8_t *frame, size_t len, uint8_t unit, uint8_t fc, uint16_t count,
                   uint16_t *regs, uint8_t *bits, uint8_t *exception)
{
    if (len < 5)
        return RTU_BAD_LENGTH;
    uint16_t crc = rtu_crc16(frame, len - 2);
    if (frame[len - 2] != (crc & 0xff) || frame[len - 1] != (crc >> 8))
        return RTU_BAD_CRC;
    if (frame[0] != unit)
        return RTU_BAD_UNIT;
    if (frame[1] == (fc | 0x80)) {
        if (len != 5)
            return RTU_BAD_LENGTH;
        *exception = frame[2];
        return RTU_EXCEPTION;
    }
    if (frame[1] != fc)
        return RTU_BAD_FUNCTION;
    uint16_t n = expected_bytes(fc, count);
    if (frame[2] != n || len != 5u + n)
        return RTU_BAD_LENGTH;
    const uint8_t *data = frame + 3;
    if (fc <= 2) {
        for (uint16_t i = 0; i < count; i++)
            bits[i] = (data[i / 8] >> (i % 8)) & 1;
    } else {
        for (uint16_t i = 0; i < count; i++)
            regs[i] = (uint16_t)(data[2 * i] << 8 | data[2 * i + 1]);
    }
    return RTU_OK;
}

const char *rtu_strerror(int status)
{
    switch (status) {
    case RTU_OK:
        return "ok";
    case RTU_EXCEPTION:
        return "exception response";
    case RTU_BAD_CRC:
        return "CRC mismatch";
    case RTU_BAD_UNIT:
        return "response from another unit id";
    case RTU_BAD_FUNCTION:
        return "response to another function code";
    case RTU_BAD_LENGTH:
        return "response length does not match the request";
    default:
        return "unknown RTU status";
    }
}

/*
 * tagcodec.h — converts between Modbus registers and a tag's value, for
 * every data type and byte order of config.h. The poller decodes what a
 * device answered; shmbus-sim encodes what it serves. Pure functions, no
 * state: safe from any thread.
 *
 * Registers are host-order 16-bit words as libmodbus hands them over: the
 * high byte of register k is wire byte 2k, the low byte wire byte 2k+1.
 *
 * A decoded tag gives two numbers, as a TagValue record carries them:
 *   raw   — the exact device value: the integer itself (uint64 as its bit
 *           pattern), the IEEE-754 bits of a float (float32 zero-extended),
 *           0/1 for bool and bit, the text of a string (byte 0 = first
 *           character, up to 8, NUL padded);
 *   value — the engineering value raw * scale + offset (a float's own value
 *           is scaled; a string's value is its length in characters).
 */
#ifndef SHMBUS_TAGCODEC_H
#define SHMBUS_TAGCODEC_H

#include "config.h"

#include <stdint.h>

enum tagcodec_status {
    TAGCODEC_OK = 0,
    TAGCODEC_ENONFINITE = -1, /* a float register pair holds NaN or infinity */
    TAGCODEC_ETEXT = -2,      /* a string holds bytes that are not printable ASCII */
    TAGCODEC_ETYPE = -3,      /* the tag's type or order is not decodable (config bug) */
};

/* Decodes a register tag from regs[0 .. t->registers-1]. On TAGCODEC_OK
 * *value and *raw are set; on a decode failure *raw still holds the bits
 * received (so the record can show them) and *value is NaN. */
int tagcodec_decode_registers(const config_tag *t, const uint16_t *regs, double *value,
                              int64_t *raw);

/* Decodes a coil or discrete input (bit is 0 or 1 as read). */
void tagcodec_decode_bit(const config_tag *t, uint8_t bit, double *value, int64_t *raw);

/* Encodes an engineering value into regs (t->registers words): the raw
 * value (value - offset) / scale, rounded to nearest and clamped for
 * integer types; for type bit only the tag's bit of regs[0] changes. */
void tagcodec_encode_registers(const config_tag *t, double value, uint16_t *regs);

/* Encodes a string tag's text (up to 2 * registers characters, NUL padded). */
void tagcodec_encode_text(const config_tag *t, const char *text, uint16_t *regs);

/* The raw integer an engineering value encodes to (what decode returns in
 * *raw after encode), for bool/bit/integer/float types. */
int64_t tagcodec_raw_of(const config_tag *t, double value);

/* Text of a status, for logs. */
const char *tagcodec_strerror(int status);

#endif

/*
 * tagcodec.c — registers <-> tag values for every type and byte order
 * (see tagcodec.h). Byte orders are handled in one place: the value's bytes
 * in significance order (index 0 = most significant) are permuted to or
 * from wire order by the tag's order_map.
 */
#include "tagcodec.h"

#include <math.h>
#include <string.h>

/* Wire bytes of n registers. */
static void regs_to_wire(const uint16_t *regs, unsigned n, uint8_t *wire)
{
    for (unsigned k = 0; k < n; k++) {
        wire[2 * k] = (uint8_t)(regs[k] >> 8);
        wire[2 * k + 1] = (uint8_t)(regs[k] & 0xff);
    }
}

static void wire_to_regs(const uint8_t *wire, unsigned n, uint16_t *regs)
{
    for (unsigned k = 0; k < n; k++)
        regs[k] = (uint16_t)((wire[2 * k] << 8) | wire[2 * k + 1]);
}

/* The value's bits as an unsigned integer of `bytes` bytes. */
static uint64_t gather(const config_tag *t, const uint16_t *regs, unsigned bytes)
{
    uint8_t wire[8], value_bytes[8];
    regs_to_wire(regs, bytes / 2, wire);
    for (unsigned i = 0; i < bytes; i++)
        value_bytes[t->order_map[i]] = wire[i];
    uint64_t v = 0;
    for (unsigned i = 0; i < bytes; i++)
        v = (v << 8) | value_bytes[i];
    return v;
}

static void scatter(const config_tag *t, uint64_t v, unsigned bytes, uint16_t *regs)
{
    uint8_t wire[8], value_bytes[8];
    for (unsigned i = bytes; i-- > 0;) {
        value_bytes[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
    for (unsigned i = 0; i < bytes; i++)
        wire[i] = value_bytes[t->order_map[i]];
    wire_to_regs(wire, bytes / 2, regs);
}

static double engineering(const config_tag *t, double x)
{
    if (t->scale == 1.0 && t->offset == 0.0)
        return x;
    return x * t->scale + t->offset;
}

static int decode_text(const config_tag *t, const uint16_t *regs, double *value, int64_t *raw)
{
    uint8_t text[8] = {0};
    unsigned n = t->registers;
    bool swap = t->order[0] == 'B';
    for (unsigned k = 0; k < n; k++) {
        uint8_t hi = (uint8_t)(regs[k] >> 8), lo = (uint8_t)(regs[k] & 0xff);
        text[2 * k] = swap ? lo : hi;
        text[2 * k + 1] = swap ? hi : lo;
    }
    uint64_t packed = 0;
    for (unsigned i = 8; i-- > 0;)
        packed = (packed << 8) | text[i];
    *raw = (int64_t)packed;
    unsigned len = 0;
    while (len < 2 * n && text[len])
        len++;
    for (unsigned i = 0; i < 2 * n; i++) {
        bool padding = i >= len && text[i] == 0;
        if (!padding && (text[i] < 0x20 || text[i] > 0x7e)) {
            *value = NAN;
            return TAGCODEC_ETEXT;
        }
    }
    *value = (double)len;
    return TAGCODEC_OK;
}

int tagcodec_decode_registers(const config_tag *t, const uint16_t *regs, double *value,
                              int64_t *raw)
{
    uint64_t v;
    switch (t->type) {
    case CONFIG_T_BOOL:
        *raw = regs[0] != 0;
        *value = (double)*raw;
        return TAGCODEC_OK;
    case CONFIG_T_BIT:
        *raw = (regs[0] >> t->bit) & 1;
        *value = (double)*raw;
        return TAGCODEC_OK;
    case CONFIG_T_INT16:
        v = gather(t, regs, 2);
        *raw = (int16_t)(uint16_t)v;
        *value = engineering(t, (double)*raw);
        return TAGCODEC_OK;
    case CONFIG_T_UINT16:
        *raw = (int64_t)gather(t, regs, 2);
        *value = engineering(t, (double)*raw);
        return TAGCODEC_OK;
    case CONFIG_T_INT32:
        *raw = (int32_t)(uint32_t)gather(t, regs, 4);
        *value = engineering(t, (double)*raw);
        return TAGCODEC_OK;
    case CONFIG_T_UINT32:
        *raw = (int64_t)gather(t, regs, 4);
        *value = engineering(t, (double)*raw);
        return TAGCODEC_OK;
    case CONFIG_T_INT64:
        *raw = (int64_t)gather(t, regs, 8);
        *value = engineering(t, (double)*raw);
        return TAGCODEC_OK;
    case CONFIG_T_UINT64:
        v = gather(t, regs, 8);
        *raw = (int64_t)v;
        *value = engineering(t, (double)v);
        return TAGCODEC_OK;
    case CONFIG_T_FLOAT32: {
        uint32_t bits = (uint32_t)gather(t, regs, 4);
        float f;
        memcpy(&f, &bits, sizeof f);
        *raw = bits;
        if (!isfinite(f)) {
            *value = NAN;
            return TAGCODEC_ENONFINITE;
        }
        *value = engineering(t, (double)f);
        return TAGCODEC_OK;
    }
    case CONFIG_T_FLOAT64: {
        uint64_t bits = gather(t, regs, 8);
        double d;
        memcpy(&d, &bits, sizeof d);
        *raw = (int64_t)bits;
        if (!isfinite(d)) {
            *value = NAN;
            return TAGCODEC_ENONFINITE;
        }
        *value = engineering(t, d);
        return TAGCODEC_OK;
    }
    case CONFIG_T_STRING:
        return decode_text(t, regs, value, raw);
    default:
        *raw = 0;
        *value = NAN;
        return TAGCODEC_ETYPE;
    }
}

void tagcodec_decode_bit(const config_tag *t, uint8_t bit, double *value, int64_t *raw)
{
    (void)t;
    *raw = bit ? 1 : 0;
    *value = (double)*raw;
}

/* Rounds x to the nearest integer of the tag's type, clamped to its range. */
static uint64_t to_integer(int type, double x)
{
    if (isnan(x))
        x = 0;
    switch (type) {
    case CONFIG_T_INT16:
        x = fmin(fmax(round(x), -32768.0), 32767.0);
        return (uint16_t)(int16_t)x;
    case CONFIG_T_UINT16:
        return (uint16_t)fmin(fmax(round(x), 0.0), 65535.0);
    case CONFIG_T_INT32:
        x = fmin(fmax(round(x), -2147483648.0), 2147483647.0);
        return (uint32_t)(int32_t)x;
    case CONFIG_T_UINT32:
        return (uint32_t)fmin(fmax(round(x), 0.0), 4294967295.0);
    case CONFIG_T_INT64:
        /* 2^63 is not representable as int64: clamp just below it. */
        x = fmin(fmax(round(x), -9223372036854775808.0), 9223372036854774784.0);
        return (uint64_t)(int64_t)x;
    case CONFIG_T_UINT64:
        x = fmin(fmax(round(x), 0.0), 18446744073709549568.0);
        return (uint64_t)x;
    default:
        return 0;
    }
}

static double raw_number(const config_tag *t, double value)
{
    if (t->scale == 1.0 && t->offset == 0.0)
        return value;
    return (value - t->offset) / t->scale;
}

int64_t tagcodec_raw_of(const config_tag *t, double value)
{
    double x = raw_number(t, value);
    switch (t->type) {
    case CONFIG_T_BOOL:
    case CONFIG_T_BIT:
        return round(x) != 0.0;
    case CONFIG_T_INT16:
        return (int16_t)(uint16_t)to_integer(t->type, x);
    case CONFIG_T_INT32:
        return (int32_t)(uint32_t)to_integer(t->type, x);
    case CONFIG_T_FLOAT32: {
        float f = (float)x;
        uint32_t bits;
        memcpy(&bits, &f, sizeof bits);
        return bits;
    }
    case CONFIG_T_FLOAT64: {
        uint64_t bits;
        memcpy(&bits, &x, sizeof bits);
        return (int64_t)bits;
    }
    default:
        return (int64_t)to_integer(t->type, x);
    }
}

void tagcodec_encode_registers(const config_tag *t, double value, uint16_t *regs)
{
    int64_t raw = tagcodec_raw_of(t, value);
    switch (t->type) {
    case CONFIG_T_BOOL:
        regs[0] = raw ? 1 : 0;
        return;
    case CONFIG_T_BIT:
        if (raw)
            regs[0] = (uint16_t)(regs[0] | (1u << t->bit));
        else
            regs[0] = (uint16_t)(regs[0] & ~(1u << t->bit));
        return;
    case CONFIG_T_INT16:
    case CONFIG_T_UINT16:
        scatter(t, (uint16_t)raw, 2, regs);
        return;
    case CONFIG_T_INT32:
    case CONFIG_T_UINT32:
    case CONFIG_T_FLOAT32:
        scatter(t, (uint32_t)raw, 4, regs);
        return;
    case CONFIG_T_INT64:
    case CONFIG_T_UINT64:
    case CONFIG_T_FLOAT64:
        scatter(t, (uint64_t)raw, 8, regs);
        return;
    default:
        return;
    }
}

void tagcodec_encode_text(const config_tag *t, const char *text, uint16_t *regs)
{
    uint8_t bytes[8] = {0};
    size_t len = strnlen(text, 2u * t->registers);
    memcpy(bytes, text, len);
    bool swap = t->order[0] == 'B';
    for (unsigned k = 0; k < t->registers; k++) {
        uint8_t first = bytes[2 * k], second = bytes[2 * k + 1];
        regs[k] = swap ? (uint16_t)((second << 8) | first) : (uint16_t)((first << 8) | second);
    }
}

const char *tagcodec_strerror(int status)
{
    switch (status) {
    case TAGCODEC_OK:
        return "ok";
    case TAGCODEC_ENONFINITE:
        return "float is NaN or infinite";
    case TAGCODEC_ETEXT:
        return "string holds non-printable bytes";
    case TAGCODEC_ETYPE:
        return "tag type cannot be decoded";
    default:
        return "unknown decode status";
    }
}

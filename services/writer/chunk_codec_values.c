/*
 * chunk_codec_values.c — the value and raw columns of a tag.
 *
 * Plant values are rarely arbitrary doubles: a temperature in 0.01 steps, a
 * counter, a boolean, a setpoint, a float32 register. XOR encoding wastes
 * bits on decimal steps (0.01 has no short binary form), so a column whose
 * every value is exactly n / 10^k (checked bit for bit on the way back) is
 * stored as the integers n through the integer stream codec (deltas or
 * deltas of deltas, chosen by cost). Otherwise values that are exact 32-bit
 * floats are XOR-encoded over their 32-bit patterns, and the rest over 64
 * bits. NaN, infinities and -0.0 always take an XOR path and round-trip
 * bit for bit.
 *
 * Value layout: u8 mode, then CONST: u64 bits | DECIMAL: u8 k, int stream |
 * XOR32 / XOR64: XOR stream.
 * Raw layout: u8 mode, then CONST: u64 | DECIMAL_OFFSET: u8 k, u64 c with
 * raw = round(value * 10^k) + c | F32BITS / F64BITS: raw is the value's bit
 * pattern (nothing stored) | INT: int stream.
 */
#include "chunk_internal.h"

enum { VAL_CONST = 0, VAL_DECIMAL = 1, VAL_XOR32 = 2, VAL_XOR64 = 3 };
enum { RAW_CONST = 0, RAW_DECIMAL_OFFSET = 1, RAW_F32BITS = 2, RAW_F64BITS = 3, RAW_INT = 4 };

#define MAX_SCALE 15
#define EXACT_INT_LIMIT 9007199254740992.0 /* 2^53 */

static const double pow10_d[MAX_SCALE + 1] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                              1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};

/* value * 10^k rounded to an integer; the same expression on both sides of
 * the codec, so decoders reproduce exactly what encoders checked. */
static inline bool dec_round(double v, unsigned k, int64_t *n)
{
    double s = v * pow10_d[k];
    if (!(s > -EXACT_INT_LIMIT && s < EXACT_INT_LIMIT))
        return false; /* also NaN and infinities */
    *n = (int64_t)(s + (s >= 0 ? 0.5 : -0.5));
    return true;
}

/* True when v is exactly n / 10^k (bit for bit, so -0.0 is refused). */
static inline bool dec_exact(double v, unsigned k, int64_t *n)
{
    if (!dec_round(v, k, n))
        return false;
    return dbl_bits((double)*n / pow10_d[k]) == dbl_bits(v);
}

static inline bool is_float32(double v)
{
    float f = (float)v;
    return dbl_bits((double)f) == dbl_bits(v);
}

static inline uint32_t f32_bits(double v)
{
    float f = (float)v;
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* The smallest decimal scale k that makes every value an exact n / 10^k;
 * fills n. Returns -1 when there is none. */
static int find_scale(const double *v, size_t n, int64_t *ints)
{
    unsigned k = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t;
        while (!dec_exact(v[i], k, &t))
            if (++k > MAX_SCALE)
                return -1;
    }
    /* A larger k keeps earlier values exact (same real number, divisor exact),
     * but check again rather than trust the argument. */
    for (size_t i = 0; i < n; i++)
        if (!dec_exact(v[i], k, &ints[i]))
            return -1;
    return (int)k;
}

int chunk_values_encode(wbuf *w, const double *v, size_t n, uint64_t *scratch,
                        uint64_t *scratch2)
{
    if (n == 0)
        return -1;
    bool same = true, f32 = true;
    uint64_t first = dbl_bits(v[0]);
    for (size_t i = 1; i < n && same; i++)
        same = dbl_bits(v[i]) == first;
    if (same) {
        wb_u8(w, VAL_CONST);
        wb_u64(w, first);
        return find_scale(v, 1, (int64_t *)scratch);
    }
    int k = find_scale(v, n, (int64_t *)scratch);
    if (k >= 0) {
        wb_u8(w, VAL_DECIMAL);
        wb_u8(w, (uint8_t)k);
        chunk_int_encode(w, scratch, n, scratch2);
        return k;
    }
    for (size_t i = 0; i < n && f32; i++)
        f32 = is_float32(v[i]);
    if (f32) {
        for (size_t i = 0; i < n; i++)
            scratch[i] = f32_bits(v[i]);
        wb_u8(w, VAL_XOR32);
        chunk_xor_encode(w, scratch, n, 32);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        scratch[i] = dbl_bits(v[i]);
    wb_u8(w, VAL_XOR64);
    chunk_xor_encode(w, scratch, n, 64);
    return -1;
}

int chunk_values_decode(rbuf *r, size_t n, double *out, uint64_t *scratch)
{
    if (n == 0)
        return 0;
    uint8_t mode = rb_u8(r);
    if (r->bad)
        return CHUNK_ECORRUPT;
    switch (mode) {
    case VAL_CONST: {
        double c = bits_dbl(rb_u64(r));
        if (r->bad)
            return CHUNK_ECORRUPT;
        for (size_t i = 0; i < n; i++)
            out[i] = c;
        return 0;
    }
    case VAL_DECIMAL: {
        unsigned k = rb_u8(r);
        if (r->bad || k > MAX_SCALE)
            return CHUNK_ECORRUPT;
        int rc = chunk_int_decode(r, n, scratch);
        if (rc < 0)
            return rc;
        const double div = pow10_d[k];
        for (size_t i = 0; i < n; i++)
            out[i] = (double)(int64_t)scratch[i] / div;
        return 0;
    }
    case VAL_XOR32: {
        int rc = chunk_xor_decode(r, n, 32, scratch);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)scratch[i];
            float f;
            memcpy(&f, &u, 4);
            out[i] = (double)f;
        }
        return 0;
    }
    case VAL_XOR64: {
        int rc = chunk_xor_decode(r, n, 64, scratch);
        if (rc < 0)
            return rc;
        memcpy(out, scratch, n * sizeof *out);
        return 0;
    }
    default:
        return CHUNK_ECORRUPT;
    }
}

void chunk_raw_encode(wbuf *w, const int64_t *raw, const double *v, size_t n, int scale,
                      uint64_t *scratch)
{
    if (n == 0)
        return;
    bool same = true;
    for (size_t i = 1; i < n && same; i++)
        same = raw[i] == raw[0];
    if (same) {
        wb_u8(w, RAW_CONST);
        wb_u64(w, (uint64_t)raw[0]);
        return;
    }
    /* raw = round(value * 10^k) + c for the value column's own scale, e.g. a
     * register 2345 read as 23.45: nothing per point. */
    int k = scale;
    if (k >= 0) {
        int64_t t0;
        bool ok = dec_round(v[0], (unsigned)k, &t0);
        uint64_t c = (uint64_t)raw[0] - (uint64_t)t0;
        for (size_t i = 0; i < n && ok; i++) {
            int64_t t;
            ok = dec_round(v[i], (unsigned)k, &t) && (uint64_t)raw[i] - (uint64_t)t == c;
        }
        if (ok) {
            wb_u8(w, RAW_DECIMAL_OFFSET);
            wb_u8(w, (uint8_t)k);
            wb_u64(w, c);
            return;
        }
    }
    bool f32 = true, f64 = true;
    for (size_t i = 0; i < n && (f32 || f64); i++) {
        f32 = f32 && (uint64_t)raw[i] == f32_bits(v[i]);
        f64 = f64 && (uint64_t)raw[i] == dbl_bits(v[i]);
    }
    if (f32 || f64) {
        wb_u8(w, f32 ? RAW_F32BITS : RAW_F64BITS);
        return;
    }
    wb_u8(w, RAW_INT);
    chunk_int_encode(w, (const uint64_t *)raw, n, scratch);
}

int chunk_raw_decode(rbuf *r, size_t n, const double *v, int64_t *out)
{
    if (n == 0)
        return 0;
    uint8_t mode = rb_u8(r);
    if (r->bad)
        return CHUNK_ECORRUPT;
    switch (mode) {
    case RAW_CONST: {
        int64_t c = (int64_t)rb_u64(r);
        if (r->bad)
            return CHUNK_ECORRUPT;
        for (size_t i = 0; i < n; i++)
            out[i] = c;
        return 0;
    }
    case RAW_DECIMAL_OFFSET: {
        unsigned k = rb_u8(r);
        uint64_t c = rb_u64(r);
        if (r->bad || k > MAX_SCALE)
            return CHUNK_ECORRUPT;
        for (size_t i = 0; i < n; i++) {
            int64_t t;
            if (!dec_round(v[i], k, &t))
                return CHUNK_ECORRUPT;
            out[i] = (int64_t)((uint64_t)t + c);
        }
        return 0;
    }
    case RAW_F32BITS:
        for (size_t i = 0; i < n; i++)
            out[i] = (int64_t)f32_bits(v[i]);
        return 0;
    case RAW_F64BITS:
        for (size_t i = 0; i < n; i++)
            out[i] = (int64_t)dbl_bits(v[i]);
        return 0;
    case RAW_INT:
        return chunk_int_decode(r, n, (uint64_t *)out);
    default:
        return CHUNK_ECORRUPT;
    }
}

/*
 * pg_copy.c — encodes rows in PostgreSQL's binary COPY format
 * (https://www.postgresql.org/docs/15/sql-copy.html, "Binary Format"):
 * the server parses fixed-width binary fields far faster than text, and no
 * double is ever rounded through decimal. Every field is big-endian.
 */
#include "pg_internal.h"

#include <string.h>

#define PG_EPOCH_OFFSET_US 946684800000000LL /* 2000-01-01 minus 1970-01-01 */
#define FIELDS 8
#define ROW_BYTES (2 + 4 * FIELDS + 8 + 4 + 4 + 8 + 8 + 2 + 2 + 8)
static const char copy_signature[11] = {'P', 'G', 'C', 'O', 'P', 'Y', '\n', '\377', '\r', '\n', '\0'};
#define HEADER_BYTES (11 + 4 + 4)
#define TRAILER_BYTES 2

int64_t pg_timestamp_us(int64_t unix_ns)
{
    /* Floor division, so times before 1970 round towards the past too. */
    int64_t us = unix_ns / 1000;
    if (unix_ns % 1000 < 0)
        us--;
    return us - PG_EPOCH_OFFSET_US;
}

size_t pg_copy_size(size_t n)
{
    return HEADER_BYTES + n * ROW_BYTES + TRAILER_BYTES;
}

static char *put16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
    return p + 2;
}

static char *put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
    return p + 4;
}

static char *put64(char *p, uint64_t v)
{
    p = put32(p, (uint32_t)(v >> 32));
    return put32(p, (uint32_t)v);
}

void pg_copy_encode(const export_row *rows, size_t n, int32_t source_id, char *buf)
{
    char *p = buf;
    memcpy(p, copy_signature, sizeof copy_signature);
    p += sizeof copy_signature;
    p = put32(p, 0); /* flags: no OIDs */
    p = put32(p, 0); /* header extension length */
    for (size_t i = 0; i < n; i++) {
        const export_row *r = &rows[i];
        uint64_t value_bits;
        memcpy(&value_bits, &r->value, sizeof value_bits);
        p = put16(p, FIELDS);
        p = put32(p, 8), p = put64(p, (uint64_t)pg_timestamp_us(r->time_ns));
        p = put32(p, 4), p = put32(p, (uint32_t)source_id);
        p = put32(p, 4), p = put32(p, r->tag_id);
        p = put32(p, 8), p = put64(p, value_bits);
        p = put32(p, 8), p = put64(p, (uint64_t)r->raw);
        p = put32(p, 2), p = put16(p, r->quality);
        p = put32(p, 2), p = put16(p, r->exception_code);
        p = put32(p, 8), p = put64(p, r->seq);
    }
    put16(p, 0xFFFF); /* trailer: field count -1 */
}

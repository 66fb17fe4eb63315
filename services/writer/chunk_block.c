/*
 * chunk_block.c — block headers and the read side of data blocks.
 *
 * Block header (64 bytes, little-endian): magic "SHBK", u16 kind, u16
 * header length (64), u32 payload length, u32 points, u32 columns, u32
 * payload CRC32C, u64 seq_min, u64 seq_max, i64 ts_min, i64 ts_max, u32
 * reserved, u32 header CRC32C over bytes 0..59. The header CRC lets a reader
 * that lost its place find the next block cheaply; the payload CRC proves
 * the data. Every directory entry of a data block is checked against the
 * payload bounds before any column is decoded.
 */
#include "chunk_internal.h"

#include <stdlib.h>

void chunk_block_header_write(uint8_t *h, const chunk_block_info *info, const uint8_t *payload)
{
    memcpy(h, CHUNK_BLOCK_MAGIC, 4);
    le16_put(h + 4, (uint16_t)info->kind);
    le16_put(h + 6, CHUNK_BLOCK_HEADER_SIZE);
    le32_put(h + 8, info->payload_len);
    le32_put(h + 12, info->points);
    le32_put(h + 16, info->columns);
    le32_put(h + 20, chunk_crc32c(0, payload, info->payload_len));
    le64_put(h + 24, info->seq_min);
    le64_put(h + 32, info->seq_max);
    le64_put(h + 40, (uint64_t)info->ts_min);
    le64_put(h + 48, (uint64_t)info->ts_max);
    le32_put(h + 56, 0);
    le32_put(h + 60, chunk_crc32c(0, h, 60));
}

int chunk_block_header_parse(const uint8_t *h, size_t avail, chunk_block_info *out)
{
    if (avail < CHUNK_BLOCK_HEADER_SIZE)
        return chunk__fail(CHUNK_ETRUNCATED, "block header cut short (%zu of %u bytes)", avail,
                           CHUNK_BLOCK_HEADER_SIZE);
    if (memcmp(h, CHUNK_BLOCK_MAGIC, 4) != 0)
        return chunk__fail(CHUNK_ECORRUPT, "no block magic");
    if (chunk_crc32c(0, h, 60) != le32_get(h + 60))
        return chunk__fail(CHUNK_ECORRUPT, "block header CRC mismatch");
    chunk_block_info i = {
        .kind = le16_get(h + 4),
        .payload_len = le32_get(h + 8),
        .points = le32_get(h + 12),
        .columns = le32_get(h + 16),
        .payload_crc = le32_get(h + 20),
        .seq_min = le64_get(h + 24),
        .seq_max = le64_get(h + 32),
        .ts_min = (int64_t)le64_get(h + 40),
        .ts_max = (int64_t)le64_get(h + 48),
    };
    if (le16_get(h + 6) != CHUNK_BLOCK_HEADER_SIZE)
        return chunk__fail(CHUNK_ECORRUPT, "block header length %u, expected %u", le16_get(h + 6),
                           CHUNK_BLOCK_HEADER_SIZE);
    if (i.kind < CHUNK_BLOCK_DATA || i.kind > CHUNK_BLOCK_FOOTER)
        return chunk__fail(CHUNK_ECORRUPT, "unknown block kind %u", i.kind);
    if (i.payload_len > CHUNK_BLOCK_MAX_PAYLOAD)
        return chunk__fail(CHUNK_ECORRUPT, "block payload of %u bytes exceeds the limit",
                           i.payload_len);
    if (i.kind == CHUNK_BLOCK_FOOTER && i.payload_len != CHUNK_FOOTER_PAYLOAD)
        return chunk__fail(CHUNK_ECORRUPT, "footer payload of %u bytes", i.payload_len);
    *out = i;
    return 0;
}

int chunk_block_check(const uint8_t *buf, size_t avail, chunk_block_info *out)
{
    chunk_block_info i = {0};
    int rc = chunk_block_header_parse(buf, avail, &i);
    if (rc < 0)
        return rc;
    if (avail - CHUNK_BLOCK_HEADER_SIZE < i.payload_len)
        return chunk__fail(CHUNK_ETRUNCATED, "block payload cut short (%zu of %u bytes)",
                           avail - CHUNK_BLOCK_HEADER_SIZE, i.payload_len);
    if (chunk_crc32c(0, buf + CHUNK_BLOCK_HEADER_SIZE, i.payload_len) != i.payload_crc)
        return chunk__fail(CHUNK_ECORRUPT, "block payload CRC mismatch");
    if (i.kind == CHUNK_BLOCK_DATA) {
        chunk_data_view v;
        /* validates the directories; the CRC is known good here */
        rc = chunk_data_view_open(buf, CHUNK_BLOCK_HEADER_SIZE + i.payload_len, &v);
        if (rc < 0)
            return rc;
    }
    if (out)
        *out = i;
    return 0;
}

/* Directory checks without the CRC (chunk_block_check has done it). */
static int view_validate(chunk_data_view *v)
{
    const uint8_t *p = v->payload;
    uint64_t dirs = CHUNK_PAYLOAD_HEADER + (uint64_t)v->nstreams * CHUNK_STREAM_DIR +
                    (uint64_t)v->ncols * CHUNK_COLUMN_DIR;
    if (v->nstreams == 0 || v->ncols == 0 || v->nstreams > v->ncols || dirs > v->payload_len)
        return chunk__fail(CHUNK_ECORRUPT, "data block directory does not fit (%u streams, %u columns)",
                           v->nstreams, v->ncols);
    if (v->ncols != v->info.columns)
        return chunk__fail(CHUNK_ECORRUPT, "data block has %u columns, header says %u", v->ncols,
                           v->info.columns);
    const uint8_t *sdir = p + CHUNK_PAYLOAD_HEADER;
    for (uint32_t s = 0; s < v->nstreams; s++) {
        const uint8_t *e = sdir + (size_t)s * CHUNK_STREAM_DIR;
        uint32_t count = le32_get(e), off = le32_get(e + 4), len = le32_get(e + 8);
        if (count == 0 || count > CHUNK_MAX_COLUMN_POINTS || off < dirs ||
            (uint64_t)off + len > v->payload_len ||
            (int64_t)le64_get(e + 16) > (int64_t)le64_get(e + 24))
            return chunk__fail(CHUNK_ECORRUPT, "data block stream %u is out of bounds", s);
    }
    const uint8_t *cdir = sdir + (size_t)v->nstreams * CHUNK_STREAM_DIR;
    uint64_t points = 0;
    for (uint32_t c = 0; c < v->ncols; c++) {
        const uint8_t *e = cdir + (size_t)c * CHUNK_COLUMN_DIR;
        uint32_t stream = le32_get(e + 8), off = le32_get(e + 12), len = le32_get(e + 16);
        if (stream >= v->nstreams || off < dirs || (uint64_t)off + len > v->payload_len)
            return chunk__fail(CHUNK_ECORRUPT, "data block column %u is out of bounds", c);
        points += le32_get(sdir + (size_t)stream * CHUNK_STREAM_DIR);
    }
    if (points != v->info.points)
        return chunk__fail(CHUNK_ECORRUPT, "data block has %llu points, header says %u",
                           (unsigned long long)points, v->info.points);
    return 0;
}

int chunk_data_view_open(const uint8_t *block, size_t len, chunk_data_view *v)
{
    memset(v, 0, sizeof *v);
    int rc = chunk_block_header_parse(block, len, &v->info);
    if (rc < 0)
        return rc;
    if (v->info.kind != CHUNK_BLOCK_DATA)
        return chunk__fail(CHUNK_EINVAL, "not a data block (kind %u)", v->info.kind);
    if (len - CHUNK_BLOCK_HEADER_SIZE < v->info.payload_len)
        return chunk__fail(CHUNK_ETRUNCATED, "data block cut short");
    v->payload = block + CHUNK_BLOCK_HEADER_SIZE;
    v->payload_len = v->info.payload_len;
    if (v->payload_len < CHUNK_PAYLOAD_HEADER)
        return chunk__fail(CHUNK_ECORRUPT, "data block payload of %u bytes", v->payload_len);
    v->nstreams = le32_get(v->payload);
    v->ncols = le32_get(v->payload + 4);
    return view_validate(v);
}

static const uint8_t *stream_entry(const chunk_data_view *v, uint32_t s)
{
    return v->payload + CHUNK_PAYLOAD_HEADER + (size_t)s * CHUNK_STREAM_DIR;
}

static const uint8_t *column_entry(const chunk_data_view *v, uint32_t c)
{
    return v->payload + CHUNK_PAYLOAD_HEADER + (size_t)v->nstreams * CHUNK_STREAM_DIR +
           (size_t)c * CHUNK_COLUMN_DIR;
}

int chunk_data_view_column(const chunk_data_view *v, uint32_t col, chunk_column_ref *out)
{
    if (col >= v->ncols)
        return CHUNK_EINVAL;
    const uint8_t *e = column_entry(v, col);
    out->tag_id = le32_get(e);
    out->device_id = le32_get(e + 4);
    out->stream = le32_get(e + 8);
    const uint8_t *s = stream_entry(v, out->stream);
    out->count = le32_get(s);
    out->ts_min = (int64_t)le64_get(s + 16);
    out->ts_max = (int64_t)le64_get(s + 24);
    return 0;
}

/* Reads the next varint-prefixed section of r as its own reader. */
static rbuf next_section(rbuf *r)
{
    uint64_t len = rb_varint(r);
    if (r->bad || len > r->len - r->pos) {
        rbuf bad = {.bad = true};
        r->bad = true;
        return bad;
    }
    return rb_sub(r, (size_t)len);
}

static int tmp_reserve(chunk_series *out, size_t n)
{
    if (out->tmp_cap >= n)
        return 0;
    uint64_t *t = realloc(out->tmp, n * sizeof *t);
    if (!t)
        return chunk__fail(CHUNK_ENOMEM, "out of memory decoding %zu points", n);
    out->tmp = t;
    out->tmp_cap = n;
    return 0;
}

#define BAD_SECTION(what)                                                                     \
    chunk__fail(CHUNK_ECORRUPT, "column %u (tag %u): bad %s section", col, tag, what)

void chunk_stream_cache_free(chunk_stream_cache *c)
{
    free(c->ts);
    free(c->seq);
    memset(c, 0, sizeof *c);
}

/* Decodes stream `stream` into the cache unless it already holds it. */
static int cache_stream(const chunk_data_view *v, uint32_t stream, size_t n, uint32_t col,
                        uint32_t tag, chunk_stream_cache *c)
{
    if (c->payload == v->payload && c->stream == stream && c->n == n)
        return 0;
    if (c->cap < n) {
        int64_t *ts = realloc(c->ts, n * sizeof *ts);
        if (ts)
            c->ts = ts;
        uint64_t *seq = ts ? realloc(c->seq, n * sizeof *seq) : NULL;
        if (!ts || !seq)
            return chunk__fail(CHUNK_ENOMEM, "out of memory decoding %zu points", n);
        c->seq = seq;
        c->cap = n;
    }
    c->payload = NULL;
    const uint8_t *se = stream_entry(v, stream);
    rbuf sr = {.p = v->payload + le32_get(se + 4), .len = le32_get(se + 8)};
    rbuf ts_sec = next_section(&sr);
    rbuf seq_sec = next_section(&sr);
    if (sr.bad || chunk_int_decode(&ts_sec, n, (uint64_t *)c->ts) < 0 ||
        chunk_int_decode(&seq_sec, n, c->seq) < 0)
        return BAD_SECTION("stream");
    c->payload = v->payload;
    c->stream = stream;
    c->n = n;
    return 0;
}

int chunk_data_decode_column_cached(const chunk_data_view *v, uint32_t col, unsigned fields,
                                    chunk_series *out, chunk_stream_cache *cache)
{
    chunk_column_ref ref;
    if (chunk_data_view_column(v, col, &ref) < 0)
        return chunk__fail(CHUNK_EINVAL, "no column %u", col);
    const uint32_t tag = ref.tag_id;
    const size_t n = ref.count;
    if (chunk_series_reserve(out, n) < 0 || tmp_reserve(out, n) < 0)
        return CHUNK_ENOMEM;
    const size_t at = out->n;
    if (fields & CHUNK_F_RAW)
        fields |= CHUNK_F_VALUE; /* raw may be derived from the values */

    if (cache) {
        int rc = cache_stream(v, ref.stream, n, col, tag, cache);
        if (rc < 0)
            return rc;
        if (fields & CHUNK_F_TS)
            memcpy(out->ts + at, cache->ts, n * sizeof *out->ts);
        if (fields & CHUNK_F_SEQ)
            memcpy(out->seq + at, cache->seq, n * sizeof *out->seq);
    } else {
        const uint8_t *se = stream_entry(v, ref.stream);
        rbuf sr = {.p = v->payload + le32_get(se + 4), .len = le32_get(se + 8)};
        rbuf ts_sec = next_section(&sr);
        rbuf seq_sec = next_section(&sr);
        if (sr.bad)
            return BAD_SECTION("stream");
        if ((fields & CHUNK_F_TS) && chunk_int_decode(&ts_sec, n, (uint64_t *)(out->ts + at)) < 0)
            return BAD_SECTION("timestamp");
        if ((fields & CHUNK_F_SEQ) && chunk_int_decode(&seq_sec, n, out->seq + at) < 0)
            return BAD_SECTION("sequence");
    }
    if (!(fields & CHUNK_F_TS))
        memset(out->ts + at, 0, n * sizeof *out->ts);

    const uint8_t *ce = column_entry(v, col);
    rbuf cr = {.p = v->payload + le32_get(ce + 12), .len = le32_get(ce + 16)};
    rbuf val_sec = next_section(&cr);
    rbuf raw_sec = next_section(&cr);
    rbuf seq_res = next_section(&cr);
    rbuf q_sec = next_section(&cr);
    rbuf x_sec = next_section(&cr);
    rbuf f_sec = next_section(&cr);
    if (cr.bad)
        return BAD_SECTION("column");

    if (fields & CHUNK_F_SEQ) {
        if (chunk_rle_decode_diff(&seq_res, n, out->seq + at, out->seq + at) < 0)
            return BAD_SECTION("sequence residual");
    } else {
        memset(out->seq + at, 0, n * sizeof *out->seq);
    }
    if (fields & CHUNK_F_VALUE) {
        if (chunk_values_decode(&val_sec, n, out->value + at, out->tmp) < 0)
            return BAD_SECTION("value");
    } else {
        memset(out->value + at, 0, n * sizeof *out->value);
    }
    if (fields & CHUNK_F_RAW) {
        if (chunk_raw_decode(&raw_sec, n, out->value + at, out->raw + at) < 0)
            return BAD_SECTION("raw");
    } else {
        memset(out->raw + at, 0, n * sizeof *out->raw);
    }
    if (fields & CHUNK_F_QUALITY) {
        if (chunk_rle_decode_u8(&q_sec, n, out->quality + at) < 0)
            return BAD_SECTION("quality");
    } else {
        memset(out->quality + at, 0, n);
    }
    if (fields & CHUNK_F_EXCEPTION) {
        if (chunk_rle_decode_u8(&x_sec, n, out->exception + at) < 0)
            return BAD_SECTION("exception");
    } else {
        memset(out->exception + at, 0, n);
    }
    if (fields & CHUNK_F_FLAGS) {
        if (chunk_rle_decode_u16(&f_sec, n, out->flags + at) < 0)
            return BAD_SECTION("flags");
    } else {
        memset(out->flags + at, 0, n * sizeof *out->flags);
    }
    out->n = at + n;
    return (int)n;
}

int chunk_data_decode_column(const chunk_data_view *v, uint32_t col, unsigned fields,
                             chunk_series *out)
{
    return chunk_data_decode_column_cached(v, col, fields, out, NULL);
}

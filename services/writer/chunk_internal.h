/*
 * chunk_internal.h — what the shmbus_chunk source files share and nobody
 * else uses: little-endian loads and stores, bounded byte buffers, the
 * MSB-first bit writer and reader, and the column codecs (integer streams,
 * run lengths, XOR floats, values). Every reader here is bounds-checked: a
 * decoder fed garbage reports CHUNK_ECORRUPT and never reads out of bounds.
 */
#ifndef SHMBUS_CHUNK_INTERNAL_H
#define SHMBUS_CHUNK_INTERNAL_H

#include "chunk.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

int chunk__fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------- little-endian fields */

static inline void le16_put(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void le32_put(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void le64_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t le16_get(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t le32_get(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t le64_get(const uint8_t *p)
{
    return (uint64_t)le32_get(p) | (uint64_t)le32_get(p + 4) << 32;
}

static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}
static inline int64_t unzigzag(uint64_t z)
{
    return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}
static inline uint64_t dbl_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}
static inline double bits_dbl(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* ------------------------------------------------------ byte buffers */

/* Output into caller memory; running past cap sets `overflow` and drops
 * the bytes (callers check once at the end). */
typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    bool overflow;
} wbuf;

static inline void wb_bytes(wbuf *w, const void *src, size_t n)
{
    if (w->cap - w->len < n) {
        w->overflow = true;
        w->len = w->cap;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}
static inline void wb_u8(wbuf *w, uint8_t v)
{
    wb_bytes(w, &v, 1);
}
static inline void wb_u64(wbuf *w, uint64_t v)
{
    uint8_t b[8];
    le64_put(b, v);
    wb_bytes(w, b, 8);
}
static inline void wb_u32(wbuf *w, uint32_t v)
{
    uint8_t b[4];
    le32_put(b, v);
    wb_bytes(w, b, 4);
}
static inline void wb_varint(wbuf *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    wb_bytes(w, b, n);
}

/* Input from a bounded range; reading past the end sets `bad` and yields 0. */
typedef struct rbuf {
    const uint8_t *p;
    size_t len, pos;
    bool bad;
} rbuf;

static inline const uint8_t *rb_take(rbuf *r, size_t n)
{
    if (r->len - r->pos < n) {
        r->bad = true;
        r->pos = r->len;
        return NULL;
    }
    const uint8_t *q = r->p + r->pos;
    r->pos += n;
    return q;
}
static inline uint8_t rb_u8(rbuf *r)
{
    const uint8_t *q = rb_take(r, 1);
    return q ? q[0] : 0;
}
static inline uint32_t rb_u32(rbuf *r)
{
    const uint8_t *q = rb_take(r, 4);
    return q ? le32_get(q) : 0;
}
static inline uint64_t rb_u64(rbuf *r)
{
    const uint8_t *q = rb_take(r, 8);
    return q ? le64_get(q) : 0;
}
static inline uint64_t rb_varint(rbuf *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        const uint8_t *q = rb_take(r, 1);
        if (!q)
            return 0;
        v |= (uint64_t)(q[0] & 0x7f) << shift;
        if (!(q[0] & 0x80)) {
            if (shift == 63 && q[0] > 1)
                r->bad = true; /* more than 64 bits */
            return v;
        }
    }
    r->bad = true;
    return 0;
}
/* A sub-range of n bytes as its own reader. */
static inline rbuf rb_sub(rbuf *r, size_t n)
{
    rbuf s = {.p = NULL, .len = 0, .pos = 0, .bad = false};
    const uint8_t *q = rb_take(r, n);
    if (!q) {
        s.bad = true;
        return s;
    }
    s.p = q;
    s.len = n;
    return s;
}

/* ------------------------------------------------------------ bit I/O */

/* MSB-first bit writer: `acc` holds `n` pending bits at its top. */
typedef struct bitw {
    wbuf *out;
    uint64_t acc;
    unsigned n;
} bitw;

static inline void bw_flush64(bitw *b)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(b->acc >> (56 - 8 * i));
    wb_bytes(b->out, t, 8);
    b->acc = 0;
    b->n = 0;
}

/* Writes the low k bits of v (k <= 64; v must have no higher bits set). */
static inline void bw_put(bitw *b, uint64_t v, unsigned k)
{
    if (k == 0)
        return;
    unsigned room = 64 - b->n;
    if (k < room) {
        b->acc |= v << (room - k);
        b->n += k;
        return;
    }
    unsigned rest = k - room; /* bits that do not fit: 0..63 */
    b->acc |= rest ? v >> rest : v;
    b->n = 64;
    bw_flush64(b);
    if (rest) {
        b->acc = v << (64 - rest);
        b->n = rest;
    }
}

/* Writes the pending bits, padding the last byte with zeros. */
static inline void bw_finish(bitw *b)
{
    unsigned bytes = (b->n + 7) / 8;
    for (unsigned i = 0; i < bytes; i++)
        wb_u8(b->out, (uint8_t)(b->acc >> (56 - 8 * i)));
    b->acc = 0;
    b->n = 0;
}

/* MSB-first bit reader over [p, end). Bytes past the end read as zero and
 * are counted in `over`, so a decoder can tell that its input ran out. */
typedef struct bitr {
    const uint8_t *p, *end;
    uint64_t buf;   /* next bits at the top */
    unsigned avail; /* valid bits in buf */
    size_t over;    /* zero bytes supplied past the end */
} bitr;

static inline void br_init(bitr *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->end = p + len;
    r->buf = 0;
    r->avail = 0;
    r->over = 0;
}

static inline void br_refill(bitr *r)
{
    if (r->end - r->p >= 8) {
        uint64_t w = 0;
        for (int i = 0; i < 8; i++)
            w = w << 8 | r->p[i];
        r->buf |= w >> r->avail;
        r->p += (63 - r->avail) >> 3;
        r->avail |= 56;
        return;
    }
    while (r->avail <= 56) {
        uint8_t byte = 0;
        if (r->p < r->end)
            byte = *r->p++;
        else
            r->over++;
        r->buf |= (uint64_t)byte << (56 - r->avail);
        r->avail += 8;
    }
}

/* Reads k bits, k <= 56. */
static inline uint64_t br_get(bitr *r, unsigned k)
{
    if (k == 0)
        return 0;
    if (r->avail < k)
        br_refill(r);
    uint64_t v = r->buf >> (64 - k);
    r->buf <<= k;
    r->avail -= k;
    return v;
}

/* Reads k bits, k <= 64. */
static inline uint64_t br_get64(bitr *r, unsigned k)
{
    if (k <= 56)
        return br_get(r, k);
    uint64_t hi = br_get(r, k - 32);
    return hi << 32 | br_get(r, 32);
}

/* The next 8 bits without consuming them. */
static inline unsigned br_peek8(bitr *r)
{
    if (r->avail < 8)
        br_refill(r);
    return (unsigned)(r->buf >> 56);
}

static inline void br_skip(bitr *r, unsigned k)
{
    r->buf <<= k;
    r->avail -= k;
}

/* True when the decoder consumed bits beyond the input. */
static inline bool br_overrun(const bitr *r)
{
    /* Bits still buffered may include padding; overrun only if consumed
     * bits reach into the zero bytes supplied past the end. */
    return r->over * 8 > r->avail;
}

/* ------------------------------------------------------------ codecs */

/* Integer streams (chunk_codec_int.c): n values, delta or delta-of-delta,
 * an optional power-of-ten divisor of the deltas, and a prefix code whose
 * bucket widths are chosen for this stream. `scratch` holds n values. */
void chunk_int_encode(wbuf *w, const uint64_t *x, size_t n, uint64_t *scratch);
int chunk_int_decode(rbuf *r, size_t n, uint64_t *out);

/* Run lengths of n values (chunk_codec_rle.c). */
void chunk_rle_encode_u8(wbuf *w, const uint8_t *v, size_t n);
void chunk_rle_encode_u16(wbuf *w, const uint16_t *v, size_t n);
/* out[i] = zigzag(a[i] - b[i]) in runs (sequence residuals). */
void chunk_rle_encode_diff(wbuf *w, const uint64_t *a, const uint64_t *b, size_t n);
int chunk_rle_decode_u8(rbuf *r, size_t n, uint8_t *out);
int chunk_rle_decode_u16(rbuf *r, size_t n, uint16_t *out);
/* out[i] = base[i] + unzigzag(run value). */
int chunk_rle_decode_diff(rbuf *r, size_t n, const uint64_t *base, uint64_t *out);

/* Gorilla XOR floats over 64- or 32-bit patterns (chunk_codec_xor.c). */
void chunk_xor_encode(wbuf *w, const uint64_t *bits, size_t n, unsigned width);
int chunk_xor_decode(rbuf *r, size_t n, unsigned width, uint64_t *out);

/* Value and raw columns (chunk_codec_values.c): chooses constant, decimal
 * integers, 32-bit or 64-bit XOR for values, and the cheapest form of raw. */
/* Returns the decimal scale of the values (>= 0) or -1; the raw encoder
 * takes it to recognise raw = round(value * 10^k) + c. */
int chunk_values_encode(wbuf *w, const double *v, size_t n, uint64_t *scratch,
                        uint64_t *scratch2);
int chunk_values_decode(rbuf *r, size_t n, double *out, uint64_t *scratch);
void chunk_raw_encode(wbuf *w, const int64_t *raw, const double *v, size_t n, int scale,
                      uint64_t *scratch);
int chunk_raw_decode(rbuf *r, size_t n, const double *v, int64_t *out);

/* ------------------------------------------------------ column map */

/* (device << 32 | tag) -> a value > 0 (chunk_map.c); zero-initialise. */
typedef struct chunk_map {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, n;
} chunk_map;

uint32_t chunk_map_get(const chunk_map *m, uint64_t key); /* 0: absent */
int chunk_map_put(chunk_map *m, uint64_t key, uint32_t value); /* 0 or CHUNK_ENOMEM */
void chunk_map_clear(chunk_map *m);
void chunk_map_free(chunk_map *m);

/* ------------------------------------------------- bounded file reading */

/* A file read through one buffer (chunk_reader.c): get() points *out at
 * [off, off + len) in memory, reading `window` bytes ahead; the buffer grows
 * only for a larger range, and shrink() gives that back. The pointer is
 * valid until the next get. get() returns 0, CHUNK_ETRUNCATED (past the
 * end), CHUNK_EIO..., CHUNK_ENOMEM. */
typedef struct chunk_reader {
    int fd;
    const char *path;
    uint64_t size;   /* reads stop here */
    uint8_t *buf;
    size_t cap, len; /* allocated, valid */
    uint64_t off;    /* file offset of buf[0] */
    size_t window;
} chunk_reader;

#define CHUNK_READ_WINDOW (256u << 10)

void chunk_reader_init(chunk_reader *r, size_t window);
void chunk_reader_attach(chunk_reader *r, int fd, const char *path, uint64_t size);
int chunk_reader_get(chunk_reader *r, uint64_t off, size_t len, const uint8_t **out);
void chunk_reader_shrink(chunk_reader *r);
void chunk_reader_free(chunk_reader *r);

/* Reads the block at off (ending by `end`) through r and checks it
 * (chunk_block_check: header, payload CRC, data directory); *block points
 * at it (header + payload). Returns 0, or a negative code with *damaged
 * true when the block failed its checks (CHUNK_ECORRUPT, CHUNK_ETRUNCATED)
 * and false when reading failed (I/O, memory). */
int chunk__read_block(chunk_reader *r, uint64_t off, uint64_t end, const uint8_t **block,
                      chunk_block_info *info, bool *damaged);

/* chunk_scan_fd over a reader already attached to the file (chunk_scan.c). */
int chunk__scan(chunk_reader *r, unsigned flags, chunk_scan *out);

/* ------------------------------------------------------------ sealing */

#define CHUNK_OUT_BUFFER (256u << 10) /* buffered output of a seal */
#define CHUNK_MID_WINDOW (16u << 10)  /* intermediate blocks are read one by one */

/* Memory kept from one seal to the next (a writer seals every chunk it
 * fills), all of it bounded: the builder by `memory` (chunk_rewrite.c),
 * the readers by their windows and the largest block, two output buffers. */
struct chunk_seal_ctx {
    size_t memory;
    chunk_builder *b;
    chunk_stream_cache cache;
    chunk_reader in;  /* the chunk being sealed */
    chunk_reader mid; /* a rewrite's intermediate file */
    uint8_t *out[2];  /* CHUNK_OUT_BUFFER each: the output, the intermediate */
};

/* A file written through a buffer, with the index and footer of what it
 * holds (chunk_seal.c). */
typedef struct chunk_out {
    int fd;
    const char *name;
    uint64_t off; /* file offset of buf[0] */
    uint8_t *buf; /* CHUNK_OUT_BUFFER bytes */
    size_t len;
    chunk_index index;
    chunk_footer footer;
} chunk_out;

int chunk__out_append(chunk_out *o, const uint8_t *p, size_t len);
int chunk__out_flush(chunk_out *o);
/* A chunk_emit_fn: appends a data block and notes it in index and footer. */
int chunk__out_block(void *ctx, const uint8_t *block, size_t len, const chunk_block_info *info);
void chunk__footer_init(chunk_footer *f);
/* chunk__fail with strerror(e), naming what failed on which file. */
int chunk__sys_fail(int e, const char *what, const char *name);

/* The rewrite of a chunk of small blocks (chunk_rewrite.c): true when its
 * points do not fit the budget at once and an intermediate file is needed;
 * then writes the regrouped data blocks to final (mid_fd: the intermediate
 * file, open read-write and empty, or -1 when none is needed). */
bool chunk__rewrite_merges(const chunk_seal_ctx *ctx, const chunk_scan *s);
int chunk__rewrite_blocks(chunk_seal_ctx *ctx, const chunk_scan *s, int mid_fd,
                          const char *mid_name, chunk_out *final);

/* The data block payload's fixed parts (chunk_block.c). */
#define CHUNK_PAYLOAD_HEADER 8u
#define CHUNK_STREAM_DIR 32u
#define CHUNK_COLUMN_DIR 24u
#define CHUNK_INDEX_ENTRY 48u

#endif

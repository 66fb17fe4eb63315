/*
 * chunk_codec_int.c — integer streams: timestamps, sequence numbers and
 * decimal-scaled values.
 *
 * A stream of n 64-bit values is stored as its first value, then either its
 * deltas (order 1) or its deltas of deltas (order 2), whichever is cheaper.
 * When every delta is a multiple of 10^e (timestamps in whole milliseconds,
 * counters stepping by 100) the deltas are divided by 10^e first. Each
 * transformed delta is zigzag-mapped and written with a prefix code: bucket
 * j is announced by j one-bits and a zero (the last bucket by m-1 one-bits
 * only) and holds values of up to width[j] bits. The widths are chosen per
 * stream by dynamic programming over the histogram of bit lengths, so a
 * regular stream costs one bit per value and an irregular one pays only for
 * the widths it needs.
 *
 * Layout: u8 (order | e << 2), u64 first, [order 2: varint zigzag first
 * delta], u8 m, m x u8 widths (ascending, last <= 64), bit stream to the end
 * of the section. Arithmetic is modulo 2^64, so every int64 sequence —
 * including huge gaps and values going backwards — round-trips exactly.
 */
#include "chunk_internal.h"

#define MAX_BUCKETS 8
#define MAX_EXP 18

static const uint64_t pow10_u64[MAX_EXP + 1] = {
    1ull,
    10ull,
    100ull,
    1000ull,
    10000ull,
    100000ull,
    1000000ull,
    10000000ull,
    100000000ull,
    1000000000ull,
    10000000000ull,
    100000000000ull,
    1000000000000ull,
    10000000000000ull,
    100000000000000ull,
    1000000000000000ull,
    10000000000000000ull,
    100000000000000000ull,
    1000000000000000000ull,
};

static inline unsigned bitlen(uint64_t z)
{
    return z ? 64u - (unsigned)__builtin_clzll(z) : 0u;
}

/* The cheapest bucket table for a histogram of bit lengths. Returns its cost
 * in bits and fills widths/m. */
static uint64_t choose_buckets(const uint64_t hist[65], uint8_t widths[MAX_BUCKETS], unsigned *m_out)
{
    unsigned len[65];
    uint64_t cnt[65];
    unsigned k = 0;
    for (unsigned b = 0; b <= 64; b++)
        if (hist[b]) {
            len[k] = b;
            cnt[k] = hist[b];
            k++;
        }
    if (k == 0) {
        widths[0] = 0;
        *m_out = 1;
        return 0;
    }
    uint64_t prefix[66];
    prefix[0] = 0;
    for (unsigned i = 0; i < k; i++)
        prefix[i + 1] = prefix[i] + cnt[i];
#define SUM(a, b) (prefix[(b) + 1] - prefix[(a)]) /* counts of len[a..b] */

    /* best[j][i]: cost of len[0..i] in buckets 0..j (codes j'+1 bits), the
     * last of them ending at i; from[j][i]: where bucket j starts. */
    uint64_t best[MAX_BUCKETS][65];
    unsigned from[MAX_BUCKETS][65];
    unsigned max_m = k < MAX_BUCKETS ? k : MAX_BUCKETS;
    for (unsigned i = 0; i < k; i++) {
        best[0][i] = SUM(0, i) * (1 + len[i]);
        from[0][i] = 0;
    }
    for (unsigned j = 1; j + 1 < max_m; j++)
        for (unsigned i = j; i < k; i++) {
            uint64_t b = UINT64_MAX;
            unsigned f = j;
            for (unsigned s = j; s <= i; s++) {
                uint64_t c = best[j - 1][s - 1] + SUM(s, i) * (j + 1 + len[i]);
                if (c < b) {
                    b = c;
                    f = s;
                }
            }
            best[j][i] = b;
            from[j][i] = f;
        }

    /* One bucket: no prefix at all. */
    uint64_t total = prefix[k];
    uint64_t best_cost = total * len[k - 1];
    unsigned best_m = 1, best_split = 0;
    /* m buckets: buckets 0..m-2 cover len[0..s-1], the last covers the rest
     * with an (m-1)-bit prefix. */
    for (unsigned m = 2; m <= max_m; m++)
        for (unsigned s = m - 1; s < k; s++) {
            uint64_t c = best[m - 2][s - 1] + SUM(s, k - 1) * (m - 1 + len[k - 1]);
            if (c < best_cost) {
                best_cost = c;
                best_m = m;
                best_split = s;
            }
        }
#undef SUM
    widths[best_m - 1] = (uint8_t)len[k - 1];
    if (best_m > 1) {
        unsigned end = best_split - 1;
        for (int j = (int)best_m - 2; j >= 0; j--) {
            widths[j] = (uint8_t)len[end];
            if (j > 0)
                end = from[j][end] - 1;
        }
    }
    *m_out = best_m;
    return best_cost;
}

/* Writes the zigzag values z[0..n) with the bucket table. */
static void put_coded(wbuf *w, const uint64_t *z, size_t n, const uint8_t *widths, unsigned m)
{
    uint8_t bucket_of[65];
    unsigned j = 0;
    for (unsigned b = 0; b <= 64; b++) {
        while (j + 1 < m && b > widths[j])
            j++;
        bucket_of[b] = (uint8_t)j;
    }
    bitw bw = {.out = w, .acc = 0, .n = 0};
    for (size_t i = 0; i < n; i++) {
        unsigned b = bucket_of[bitlen(z[i])];
        /* prefix: b ones and a terminating zero, except for the last bucket */
        if (b + 1 < m)
            bw_put(&bw, ((1u << b) - 1) << 1, b + 1);
        else
            bw_put(&bw, (1u << b) - 1, b);
        bw_put(&bw, z[i], widths[b]);
    }
    bw_finish(&bw);
}

void chunk_int_encode(wbuf *w, const uint64_t *x, size_t n, uint64_t *scratch)
{
    if (n == 0)
        return;
    /* The largest power of ten dividing every delta. */
    unsigned e = MAX_EXP;
    for (size_t i = 1; i < n && e; i++) {
        int64_t d = (int64_t)(x[i] - x[i - 1]);
        while (e && d % (int64_t)pow10_u64[e] != 0)
            e--;
    }
    if (n == 1)
        e = 0;
    uint64_t *q = scratch; /* q[i-1] = delta i / 10^e, as int64 bits */
    for (size_t i = 1; i < n; i++) {
        int64_t d = (int64_t)(x[i] - x[i - 1]);
        q[i - 1] = e ? (uint64_t)(d / (int64_t)pow10_u64[e]) : (uint64_t)d;
    }
    size_t nd = n - 1;

    uint64_t h1[65] = {0}, h2[65] = {0};
    for (size_t i = 0; i < nd; i++)
        h1[bitlen(zigzag((int64_t)q[i]))]++;
    for (size_t i = 1; i < nd; i++)
        h2[bitlen(zigzag((int64_t)(q[i] - q[i - 1])))]++;
    uint8_t w1[MAX_BUCKETS], w2[MAX_BUCKETS];
    unsigned m1, m2;
    uint64_t c1 = choose_buckets(h1, w1, &m1) + 8 * m1;
    uint64_t c2 = choose_buckets(h2, w2, &m2) + 8 * m2;
    if (nd)
        c2 += 8 * 10; /* the first delta as a varint, at worst */
    unsigned order = (nd >= 2 && c2 < c1) ? 2 : 1;

    wb_u8(w, (uint8_t)(order | e << 2));
    wb_u64(w, x[0]);
    if (n == 1)
        return;
    if (order == 1) {
        for (size_t i = 0; i < nd; i++)
            q[i] = zigzag((int64_t)q[i]);
        wb_u8(w, (uint8_t)m1);
        wb_bytes(w, w1, m1);
        put_coded(w, q, nd, w1, m1);
    } else {
        wb_varint(w, zigzag((int64_t)q[0]));
        /* in place, back to front: q[i] becomes the zigzag of its change */
        for (size_t i = nd - 1; i >= 1; i--)
            q[i] = zigzag((int64_t)(q[i] - q[i - 1]));
        wb_u8(w, (uint8_t)m2);
        wb_bytes(w, w2, m2);
        put_coded(w, q + 1, nd - 1, w2, m2);
    }
}

/* Reads one coded value: the prefix is looked up from the top byte of the
 * bit buffer (tables built per stream), then its bits are taken. */
static inline __attribute__((always_inline)) uint64_t get_coded(bitr *br, const uint8_t *pre_len,
                                                                  const uint8_t *width)
{
    if (br->avail < 57)
        br_refill(br);
    unsigned top = (unsigned)(br->buf >> 56);
    unsigned pl = pre_len[top], w = width[top];
    br->buf <<= pl;
    br->avail -= pl;
    if (w == 0)
        return 0;
    if (w <= br->avail) { /* after a refill at least 49 bits remain */
        uint64_t z = br->buf >> (64 - w);
        br->buf = w == 64 ? 0 : br->buf << w;
        br->avail -= w;
        return z;
    }
    return br_get64(br, w);
}

/* The same when no bucket is wider than 49 bits (nearly every stream):
 * after a refill the prefix (<= 7 bits) and the value fit the buffer, so
 * there is no branch but the refill. */
static inline __attribute__((always_inline)) uint64_t get_coded_small(bitr *br,
                                                                        const uint8_t *pre_len,
                                                                        const uint8_t *width)
{
    if (br->avail < 57)
        br_refill(br);
    unsigned top = (unsigned)(br->buf >> 56);
    unsigned pl = pre_len[top], w = width[top];
    uint64_t b = br->buf << pl;
    uint64_t z = (b >> (63 - w)) >> 1; /* the top w bits; 0 when w is 0 */
    br->buf = b << w;
    br->avail -= pl + w;
    return z;
}

#define DECODE_LOOPS(GET)                                                                      \
    do {                                                                                       \
        if (order == 1) {                                                                      \
            for (size_t i = start; i < n; i++) {                                               \
                x += (uint64_t)unzigzag(GET(&br, pre_len, width)) * mul;                       \
                out[i] = x;                                                                    \
            }                                                                                  \
        } else if (mul == 1) {                                                                 \
            for (size_t i = start; i < n; i++) {                                               \
                q += (uint64_t)unzigzag(GET(&br, pre_len, width));                             \
                x += q;                                                                        \
                out[i] = x;                                                                    \
            }                                                                                  \
        } else {                                                                               \
            for (size_t i = start; i < n; i++) {                                               \
                q += (uint64_t)unzigzag(GET(&br, pre_len, width));                             \
                x += q * mul;                                                                  \
                out[i] = x;                                                                    \
            }                                                                                  \
        }                                                                                      \
    } while (0)

int chunk_int_decode(rbuf *r, size_t n, uint64_t *out)
{
    if (n == 0)
        return 0;
    uint8_t head = rb_u8(r);
    unsigned order = head & 3, e = head >> 2;
    uint64_t x = rb_u64(r);
    if (r->bad || order < 1 || order > 2 || e > MAX_EXP)
        return CHUNK_ECORRUPT;
    out[0] = x;
    if (n == 1)
        return 0;
    uint64_t q = 0;
    size_t start = 1;
    const uint64_t mul = pow10_u64[e];
    if (order == 2) {
        q = (uint64_t)unzigzag(rb_varint(r));
        x += q * mul;
        out[1] = x;
        start = 2;
    }
    unsigned m = rb_u8(r);
    if (r->bad || m < 1 || m > MAX_BUCKETS)
        return CHUNK_ECORRUPT;
    const uint8_t *widths = rb_take(r, m);
    if (!widths)
        return CHUNK_ECORRUPT;
    for (unsigned j = 0; j < m; j++)
        if (widths[j] > 64 || (j && widths[j] <= widths[j - 1]))
            return CHUNK_ECORRUPT;
    bitr br;
    br_init(&br, r->p + r->pos, r->len - r->pos);
    r->pos = r->len;

    if (m == 1 && widths[0] == 0) {
        /* every coded value is zero: constant steps, no bits to read */
        for (size_t i = start; i < n; i++) {
            x += q * mul;
            out[i] = x;
        }
        return 0;
    }
    /* prefix of each possible top byte: bucket j < m-1 is j ones and a
     * zero, the last bucket m-1 ones */
    uint8_t pre_len[256], width[256];
    const unsigned last = m - 1;
    for (unsigned t = 0; t < 256; t++) {
        unsigned ones = (unsigned)__builtin_clz(~(t << 24));
        unsigned b = ones >= last ? last : ones;
        pre_len[t] = (uint8_t)(b == last ? last : b + 1);
        width[t] = widths[b];
    }
    if (widths[m - 1] <= 49)
        DECODE_LOOPS(get_coded_small);
    else
        DECODE_LOOPS(get_coded);
    if (br_overrun(&br))
        return CHUNK_ECORRUPT;
    return 0;
}

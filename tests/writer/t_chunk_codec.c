/*
 * t_chunk_codec.c — the chunk format's encoders and decoders: CRC32C
 * against published vectors (hardware and table), integer streams, XOR
 * floats and value columns round-tripping random and edge values (NaN,
 * infinities, -0.0, huge timestamp gaps, times going backwards), whole data
 * blocks through the builder and the block reader, the compression the
 * format promises on plant-like data, and decoders fed garbage (they must
 * refuse it, not crash: run under ASan).
 */
#include "chunk_internal.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rnd(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}
static double rnd_unit(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

/* ------------------------------------------------------------- CRC32C */

static void test_crc_vectors(void **state)
{
    (void)state;
    uint8_t buf[32];
    assert_int_equal(chunk_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(chunk_crc32c_table(0, "123456789", 9), 0xE3069283u);
    memset(buf, 0, 32); /* RFC 3720 B.4 */
    assert_int_equal(chunk_crc32c(0, buf, 32), 0x8A9136AAu);
    assert_int_equal(chunk_crc32c_table(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    assert_int_equal(chunk_crc32c(0, buf, 32), 0x62A8AB43u);
    assert_int_equal(chunk_crc32c_table(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(chunk_crc32c(0, buf, 32), 0x46DD794Eu);
    assert_int_equal(chunk_crc32c_table(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(chunk_crc32c(0, buf, 32), 0x113FDB5Cu);
    assert_int_equal(chunk_crc32c_table(0, buf, 32), 0x113FDB5Cu);
    assert_int_equal(chunk_crc32c(0, "", 0), 0);
}

static void test_crc_hw_matches_table(void **state)
{
    (void)state;
    size_t cap = 100008; /* the longest length at the largest offset */
    uint8_t *buf = malloc(cap);
    for (size_t i = 0; i < cap; i++)
        buf[i] = (uint8_t)rnd();
    static const size_t lens[] = {1, 7, 8, 9, 63, 4095, 4096, 12287, 12288, 12289, 24576, 40000, 99999};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        for (size_t off = 0; off < 3; off++) {
            uint32_t a = chunk_crc32c(0, buf + off, lens[k]);
            uint32_t b = chunk_crc32c_table(0, buf + off, lens[k]);
            assert_int_equal(a, b);
            /* continuation: crc(A|B) from crc(A) */
            size_t cut = lens[k] / 3;
            uint32_t c = chunk_crc32c(chunk_crc32c(0, buf + off, cut), buf + off + cut, lens[k] - cut);
            assert_int_equal(a, c);
        }
    }
    printf("crc32c uses %s\n", chunk_crc32c_hw() ? "SSE4.2" : "the table");
    free(buf);
}

/* ------------------------------------------------------ integer streams */

static void roundtrip_ints(const uint64_t *x, size_t n, size_t *bytes_out)
{
    size_t cap = n * 10 + 64;
    uint8_t *buf = malloc(cap);
    uint64_t *scratch = malloc((n + 1) * sizeof *scratch);
    uint64_t *back = malloc((n + 1) * sizeof *back);
    wbuf w = {.p = buf, .cap = cap};
    chunk_int_encode(&w, x, n, scratch);
    assert_false(w.overflow);
    rbuf r = {.p = buf, .len = w.len};
    assert_int_equal(chunk_int_decode(&r, n, back), 0);
    for (size_t i = 0; i < n; i++)
        if (back[i] != x[i])
            fail_msg("value %zu: %llx != %llx", i, (unsigned long long)back[i],
                     (unsigned long long)x[i]);
    if (bytes_out)
        *bytes_out = w.len;
    free(buf);
    free(scratch);
    free(back);
}

static void test_int_streams(void **state)
{
    (void)state;
    enum { N = 5000 };
    uint64_t *x = malloc(N * sizeof *x);
    size_t bytes;
    /* regular nanosecond timestamps: one bit per value */
    for (size_t i = 0; i < N; i++)
        x[i] = 1700000000000000000ull + i * 1000000000ull;
    roundtrip_ints(x, N, &bytes);
    assert_true(bytes < N / 8 + 32);
    /* jittered timestamps */
    for (size_t i = 0; i < N; i++)
        x[i] = 1700000000000000000ull + i * 1000000000ull + rnd() % 2000000;
    roundtrip_ints(x, N, NULL);
    /* millisecond timestamps: the 10^6 divisor */
    for (size_t i = 0; i < N; i++)
        x[i] = (1700000000000ull + i * 1000 + rnd() % 3) * 1000000ull;
    roundtrip_ints(x, N, &bytes);
    assert_true(bytes < N);
    /* huge gaps and going backwards, all int64 extremes */
    const uint64_t extremes[] = {0, (uint64_t)INT64_MAX, (uint64_t)INT64_MIN, 1, UINT64_MAX, 42,
                                 (uint64_t)INT64_MIN, (uint64_t)INT64_MAX, 0};
    roundtrip_ints(extremes, sizeof extremes / sizeof extremes[0], NULL);
    /* random 64-bit values */
    for (size_t i = 0; i < N; i++)
        x[i] = rnd();
    roundtrip_ints(x, N, NULL);
    /* small random walk */
    for (size_t i = 0; i < N; i++)
        x[i] = i ? x[i - 1] + (rnd() % 7) - 3 : 100;
    roundtrip_ints(x, N, NULL);
    /* lengths 1, 2, 3 and random short runs */
    for (size_t n = 1; n < 40; n++) {
        for (size_t i = 0; i < n; i++)
            x[i] = rnd() >> (rnd() % 64);
        roundtrip_ints(x, n, NULL);
    }
    free(x);
}

/* ----------------------------------------------------------- XOR floats */

static void test_xor(void **state)
{
    (void)state;
    enum { N = 3000 };
    uint64_t x[N], back[N];
    uint8_t buf[N * 12 + 64];
    for (unsigned width = 32; width <= 64; width += 32) {
        for (int round = 0; round < 3; round++) {
            for (size_t i = 0; i < N; i++) {
                uint64_t v = round == 0 ? rnd() : round == 1 ? (i / 7) * 0x10001ull : rnd() >> 40;
                x[i] = width == 32 ? (uint32_t)v : v;
            }
            wbuf w = {.p = buf, .cap = sizeof buf};
            chunk_xor_encode(&w, x, N, width);
            assert_false(w.overflow);
            rbuf r = {.p = buf, .len = w.len};
            assert_int_equal(chunk_xor_decode(&r, N, width, back), 0);
            assert_memory_equal(x, back, sizeof x);
        }
    }
}

/* --------------------------------------------------------- value columns */

static void roundtrip_values(const double *v, const int64_t *raw, size_t n, size_t *vbytes)
{
    size_t cap = n * 24 + 128;
    uint8_t *buf = malloc(cap);
    uint64_t *s1 = malloc(n * 8), *s2 = malloc(n * 8);
    double *back = malloc(n * 8);
    int64_t *rback = malloc(n * 8);
    wbuf w = {.p = buf, .cap = cap};
    int scale = chunk_values_encode(&w, v, n, s1, s2);
    size_t vlen = w.len;
    chunk_raw_encode(&w, raw, v, n, scale, s1);
    assert_false(w.overflow);
    rbuf r = {.p = buf, .len = vlen};
    assert_int_equal(chunk_values_decode(&r, n, back, s1), 0);
    for (size_t i = 0; i < n; i++)
        if (dbl_bits(back[i]) != dbl_bits(v[i]))
            fail_msg("value %zu: %.17g (%llx) != %.17g (%llx)", i, back[i],
                     (unsigned long long)dbl_bits(back[i]), v[i], (unsigned long long)dbl_bits(v[i]));
    rbuf rr = {.p = buf + vlen, .len = w.len - vlen};
    assert_int_equal(chunk_raw_decode(&rr, n, back, rback), 0);
    for (size_t i = 0; i < n; i++)
        if (rback[i] != raw[i])
            fail_msg("raw %zu: %lld != %lld", i, (long long)rback[i], (long long)raw[i]);
    if (vbytes)
        *vbytes = vlen;
    free(buf);
    free(s1);
    free(s2);
    free(back);
    free(rback);
}

static void test_values_special(void **state)
{
    (void)state;
    const double specials[] = {NAN, -NAN, INFINITY, -INFINITY, -0.0, 0.0, 5e-324, -5e-324,
                               1.7976931348623157e308, -1.7976931348623157e308, 1.0, 0.1, 1e300,
                               2.2250738585072014e-308, bits_dbl(0x7ff8dead0000beefull),
                               bits_dbl(0xfff0000000000001ull)};
    size_t n = sizeof specials / sizeof specials[0];
    int64_t raw[16];
    for (size_t i = 0; i < n; i++)
        raw[i] = (int64_t)rnd();
    roundtrip_values(specials, raw, n, NULL);
    /* each special alone, constant columns of it, and beside decimals */
    for (size_t i = 0; i < n; i++) {
        double col[6] = {specials[i], specials[i], 1.25, specials[i], 0.5, specials[i]};
        int64_t r6[6] = {0, 0, 0, 0, 0, 0};
        roundtrip_values(col, r6, 6, NULL);
        roundtrip_values(col, r6, 2, NULL);
        roundtrip_values(col, r6, 1, NULL);
    }
}

static void test_values_kinds(void **state)
{
    (void)state;
    enum { N = 4096 };
    double *v = malloc(N * sizeof *v);
    int64_t *raw = malloc(N * sizeof *raw);
    size_t bytes;
    /* temperature in 0.01 steps, raw register = value * 100 */
    double t = 21.5;
    for (size_t i = 0; i < N; i++) {
        t += ((int)(rnd() % 5) - 2) * 0.01;
        v[i] = round(t * 100) / 100;
        raw[i] = (int64_t)llround(v[i] * 100);
    }
    roundtrip_values(v, raw, N, &bytes);
    printf("temperature 0.01 steps: %.2f bytes/value\n", (double)bytes / N);
    assert_true(bytes < N); /* well under a byte a value */
    /* float32 pressure, raw = the register bits */
    float p = 3.0f;
    for (size_t i = 0; i < N; i++) {
        p += (float)(rnd_unit() - 0.5) * 0.001f;
        v[i] = p;
        uint32_t u;
        memcpy(&u, &p, 4);
        raw[i] = u;
    }
    roundtrip_values(v, raw, N, &bytes);
    printf("float32 pressure: %.2f bytes/value\n", (double)bytes / N);
    /* noisy double flow, raw unrelated */
    for (size_t i = 0; i < N; i++) {
        v[i] = 100 + rnd_unit();
        raw[i] = (int64_t)rnd();
    }
    roundtrip_values(v, raw, N, NULL);
    /* counter: integral, steadily rising */
    for (size_t i = 0; i < N; i++) {
        v[i] = 1e6 + (double)(i * 17 + rnd() % 3);
        raw[i] = (int64_t)v[i];
    }
    roundtrip_values(v, raw, N, &bytes);
    printf("counter: %.2f bytes/value\n", (double)bytes / N);
    assert_true(bytes < N / 2);
    /* boolean */
    for (size_t i = 0; i < N; i++) {
        v[i] = (i / 300) % 2;
        raw[i] = (int64_t)v[i];
    }
    roundtrip_values(v, raw, N, &bytes);
    assert_true(bytes < N / 4);
    /* decimals whose scale changes mid-column, large magnitudes, negatives */
    for (size_t i = 0; i < N; i++) {
        v[i] = i < N / 2 ? -(double)(i % 1000) * 0.5 : (double)(rnd() % 100000) / 1000.0 - 50;
        raw[i] = -(int64_t)i;
    }
    roundtrip_values(v, raw, N, NULL);
    for (size_t i = 0; i < N; i++)
        v[i] = 4503599627370496.0 + (double)i; /* 2^52 + i: near the exact-integer limit */
    roundtrip_values(v, raw, N, NULL);
    free(v);
    free(raw);
}

/* --------------------------------------------------------------- blocks */

struct gen_point {
    shm_tag_value v;
};

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Builds a block from points, decodes every column, compares. */
static void block_roundtrip(const shm_tag_value *pts, size_t n, size_t *block_len,
                            uint32_t *streams)
{
    chunk_builder *b;
    assert_int_equal(chunk_builder_new(&b), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(chunk_builder_add(b, &pts[i]), 0);
    size_t cap = chunk_builder_bound(b);
    uint8_t *buf = malloc(cap);
    size_t len;
    chunk_block_info info;
    assert_int_equal(chunk_builder_encode(b, buf, cap, &len, &info), 0);
    assert_int_equal(chunk_builder_points(b), 0);
    assert_int_equal(info.points, n);
    assert_int_equal(chunk_block_check(buf, len, NULL), 0);
    chunk_data_view v;
    assert_int_equal(chunk_data_view_open(buf, len, &v), 0);
    if (streams)
        *streams = v.nstreams;
    /* every input point must come back exactly once, in input order per tag */
    size_t found = 0;
    chunk_series s = {0};
    uint32_t *tags = malloc(v.ncols * sizeof *tags);
    for (uint32_t c = 0; c < v.ncols; c++) {
        chunk_column_ref ref;
        assert_int_equal(chunk_data_view_column(&v, c, &ref), 0);
        tags[c] = ref.tag_id;
        chunk_series_clear(&s);
        assert_int_equal(chunk_data_decode_column(&v, c, CHUNK_F_ALL, &s), (int)ref.count);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            const shm_tag_value *p = &pts[i];
            if (p->tag_id != ref.tag_id || p->device_id != ref.device_id)
                continue;
            assert_true(k < s.n);
            assert_int_equal(s.ts[k], p->timestamp_ns);
            assert_int_equal(s.seq[k], p->sequence);
            assert_int_equal(dbl_bits(s.value[k]), dbl_bits(p->value));
            assert_int_equal(s.raw[k], p->raw);
            assert_int_equal(s.quality[k], p->quality);
            assert_int_equal(s.exception[k], p->exception_code);
            assert_int_equal(s.flags[k], p->flags);
            k++;
        }
        assert_int_equal(k, s.n);
        found += k;
    }
    assert_int_equal(found, n);
    qsort(tags, v.ncols, sizeof *tags, cmp_u32);
    chunk_series_free(&s);
    free(tags);
    free(buf);
    chunk_builder_free(&b);
    if (block_len)
        *block_len = len;
}

static void test_block_random(void **state)
{
    (void)state;
    for (int round = 0; round < 40; round++) {
        size_t n = 1 + rnd() % 3000;
        shm_tag_value *pts = calloc(n, sizeof *pts);
        uint32_t ntags = 1 + (uint32_t)(rnd() % 50);
        for (size_t i = 0; i < n; i++) {
            shm_tag_value *p = &pts[i];
            p->tag_id = (uint32_t)(rnd() % ntags) * 7919u;
            p->device_id = p->tag_id % 3;
            p->sequence = 1700000000000000000ull + i * (1 + rnd() % 3);
            p->timestamp_ns = (int64_t)rnd(); /* anything: out of order, huge gaps */
            switch (rnd() % 4) {
            case 0:
                p->value = bits_dbl(rnd());
                break;
            case 1:
                p->value = (double)(rnd() % 10000) / 100.0;
                break;
            case 2:
                p->value = (double)(float)rnd_unit();
                break;
            default:
                p->value = (double)(rnd() % 2);
            }
            p->raw = (int64_t)rnd();
            p->quality = (uint8_t)(rnd() % 7);
            p->exception_code = (uint8_t)rnd();
            p->flags = (uint16_t)rnd();
        }
        block_roundtrip(pts, n, NULL, NULL);
        free(pts);
    }
}

/* One device polled every second: `tags` tags read by one request share a
 * timestamp with jitter, published in a fixed order. */
static shm_tag_value *plant_points(size_t polls, uint32_t tags, uint32_t groups, size_t *n_out)
{
    size_t n = polls * tags;
    shm_tag_value *pts = calloc(n, sizeof *pts);
    double *temp = calloc(tags, sizeof *temp);
    uint64_t seq = 1700000000000000000ull;
    int64_t t0 = 1767225600000000000ll;
    size_t k = 0;
    for (size_t p = 0; p < polls; p++) {
        for (uint32_t g = 0; g < groups; g++) {
            int64_t ts = t0 + (int64_t)p * 1000000000 + (int64_t)(rnd() % 4000000); /* +-2 ms */
            for (uint32_t t = g; t < tags; t += groups) {
                shm_tag_value *v = &pts[k++];
                v->tag_id = t;
                v->device_id = g;
                v->sequence = seq++;
                v->timestamp_ns = ts;
                temp[t] += ((int)(rnd() % 3) - 1) * 0.01;
                v->value = round((20 + t + temp[t]) * 100) / 100;
                v->raw = (int64_t)llround(v->value * 100);
                v->quality = SHM_Q_GOOD;
            }
        }
    }
    free(temp);
    *n_out = k;
    return pts;
}

static void test_block_shared_timestamps(void **state)
{
    (void)state;
    size_t n, len;
    uint32_t streams;
    shm_tag_value *pts = plant_points(4096, 40, 4, &n);
    block_roundtrip(pts, n, &len, &streams);
    assert_int_equal(streams, 4); /* one timestamp stream per request */
    double bpp = (double)len / (double)n;
    printf("slow analog, 0.01 steps, 10 tags per request, +-2 ms jitter: %.3f bytes/point\n", bpp);
    assert_true(bpp <= 2.0);
    free(pts);
}

static int count_emit(void *ctx, const uint8_t *block, size_t len, const chunk_block_info *info)
{
    size_t *c = ctx;
    assert_int_equal(chunk_block_check(block, len, NULL), 0);
    chunk_data_view v;
    assert_int_equal(chunk_data_view_open(block, len, &v), 0);
    assert_int_equal(v.nstreams, 1);
    c[0]++;
    c[1] += info->points;
    return 0;
}

static void test_encode_groups(void **state)
{
    (void)state;
    size_t n;
    shm_tag_value *pts = plant_points(500, 30, 5, &n);
    chunk_builder *b;
    assert_int_equal(chunk_builder_new(&b), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(chunk_builder_add(b, &pts[i]), 0);
    size_t counts[2] = {0, 0};
    assert_int_equal(chunk_builder_encode_groups(b, count_emit, counts), 0);
    assert_int_equal(counts[0], 5);
    assert_int_equal(counts[1], n);
    chunk_builder_free(&b);
    free(pts);
}

/* ---------------------------------------------------------- bad input */

static void test_block_damage_detected(void **state)
{
    (void)state;
    size_t n;
    shm_tag_value *pts = plant_points(50, 12, 3, &n);
    chunk_builder *b;
    assert_int_equal(chunk_builder_new(&b), 0);
    for (size_t i = 0; i < n; i++)
        chunk_builder_add(b, &pts[i]);
    size_t cap = chunk_builder_bound(b), len;
    uint8_t *buf = malloc(cap);
    assert_int_equal(chunk_builder_encode(b, buf, cap, &len, NULL), 0);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            buf[i] ^= (uint8_t)(1u << bit);
            assert_true(chunk_block_check(buf, len, NULL) < 0);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t cut = 0; cut < len; cut += 1 + cut / 8)
        assert_int_equal(chunk_block_check(buf, cut, NULL), CHUNK_ETRUNCATED);
    assert_int_equal(chunk_block_check(buf, len, NULL), 0);
    free(buf);
    free(pts);
    chunk_builder_free(&b);
}

/* Decoders on random bytes (as if the CRC had been forged): no crash, no
 * read out of bounds, and a refusal or some values. */
static void test_decoders_on_garbage(void **state)
{
    (void)state;
    uint8_t buf[512];
    uint64_t out[600];
    double dout[600];
    int64_t iout[600];
    uint8_t b8[600];
    uint16_t b16[600];
    for (int round = 0; round < 20000; round++) {
        size_t len = rnd() % sizeof buf;
        for (size_t i = 0; i < len; i++)
            buf[i] = (uint8_t)rnd();
        if (len > 0 && rnd() % 2)
            buf[0] = (uint8_t)(rnd() % 4); /* plausible mode bytes */
        size_t n = 1 + rnd() % 600;
        rbuf r = {.p = buf, .len = len};
        (void)chunk_int_decode(&r, n, out);
        r = (rbuf){.p = buf, .len = len};
        (void)chunk_xor_decode(&r, n, 64, out);
        r = (rbuf){.p = buf, .len = len};
        (void)chunk_xor_decode(&r, n, 32, out);
        r = (rbuf){.p = buf, .len = len};
        (void)chunk_values_decode(&r, n, dout, out);
        r = (rbuf){.p = buf, .len = len};
        (void)chunk_raw_decode(&r, n, dout, iout);
        r = (rbuf){.p = buf, .len = len};
        (void)chunk_rle_decode_u8(&r, n, b8);
        r = (rbuf){.p = buf, .len = len};
        (void)chunk_rle_decode_u16(&r, n, b16);
        r = (rbuf){.p = buf, .len = len};
        (void)chunk_rle_decode_diff(&r, n, out, out);
    }
}

/* A data block whose payload was altered and whose CRCs were then fixed up:
 * directory checks and section decoders must still hold. */
static void test_forged_blocks(void **state)
{
    (void)state;
    size_t n;
    shm_tag_value *pts = plant_points(40, 9, 3, &n);
    chunk_builder *b;
    assert_int_equal(chunk_builder_new(&b), 0);
    size_t cap = 0, len = 0;
    uint8_t *orig = NULL;
    for (size_t i = 0; i < n; i++)
        chunk_builder_add(b, &pts[i]);
    cap = chunk_builder_bound(b);
    orig = malloc(cap);
    assert_int_equal(chunk_builder_encode(b, orig, cap, &len, NULL), 0);
    uint8_t *buf = malloc(len);
    chunk_series s = {0};
    for (int round = 0; round < 5000; round++) {
        memcpy(buf, orig, len);
        int flips = 1 + (int)(rnd() % 4);
        for (int f = 0; f < flips; f++)
            buf[CHUNK_BLOCK_HEADER_SIZE + rnd() % (len - CHUNK_BLOCK_HEADER_SIZE)] = (uint8_t)rnd();
        chunk_block_info info;
        assert_int_equal(chunk_block_header_parse(buf, len, &info), 0);
        chunk_block_header_write(buf, &info, buf + CHUNK_BLOCK_HEADER_SIZE);
        chunk_data_view v;
        if (chunk_data_view_open(buf, len, &v) < 0)
            continue;
        for (uint32_t c = 0; c < v.ncols; c++) {
            chunk_series_clear(&s);
            (void)chunk_data_decode_column(&v, c, CHUNK_F_ALL, &s);
        }
    }
    chunk_series_free(&s);
    free(buf);
    free(orig);
    free(pts);
    chunk_builder_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_vectors),
        cmocka_unit_test(test_crc_hw_matches_table),
        cmocka_unit_test(test_int_streams),
        cmocka_unit_test(test_xor),
        cmocka_unit_test(test_values_special),
        cmocka_unit_test(test_values_kinds),
        cmocka_unit_test(test_block_random),
        cmocka_unit_test(test_block_shared_timestamps),
        cmocka_unit_test(test_encode_groups),
        cmocka_unit_test(test_block_damage_detected),
        cmocka_unit_test(test_decoders_on_garbage),
        cmocka_unit_test(test_forged_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

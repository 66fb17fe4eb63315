/*
 * chunk_crc32c.c — CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected
 * 0x82F63B78), the checksum of every chunk block.
 *
 * Two implementations with identical results: the SSE4.2 `crc32`
 * instruction (8 bytes per instruction; three independent streams over
 * large buffers, recombined with the zero-extension operator, so the
 * instruction's 3-cycle latency does not bound throughput) and a
 * slicing-by-8 table for CPUs without it. The choice is made once, on
 * first use, from CPUID.
 */
#include "chunk_internal.h"

#include <pthread.h>

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t chunk_crc32c_table(uint32_t crc, const void *data, size_t len)
{
    pthread_once(&table_once, table_init);
    const uint8_t *p = data;
    crc = ~crc;
    while (len >= 8) {
        uint32_t lo = le32_get(p) ^ crc, hi = le32_get(p + 4);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^ table[5][(lo >> 16) & 0xff] ^
              table[4][lo >> 24] ^ table[3][hi & 0xff] ^ table[2][(hi >> 8) & 0xff] ^
              table[1][(hi >> 16) & 0xff] ^ table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

/* Multiplication in GF(2) modulo the reflected polynomial, and x^(8n)
 * modulo it, to shift a CRC over n zero bytes (zlib's crc32_combine idea,
 * in the direct form used by Mark Adler's crc32c.c). */
static uint32_t gf2_mult(uint32_t a, uint32_t b)
{
    uint32_t prod = 0;
    for (int i = 0; i < 32; i++) {
        if (a & 0x80000000u)
            prod ^= b;
        a <<= 1;
        b = b & 1 ? (b >> 1) ^ POLY : b >> 1;
    }
    return prod;
}

/* x^(2^k) mod P for k = 0..63, built once. */
static uint32_t x2n_table[64];
static uint32_t shift_stride; /* x^(8*STRIDE) mod P */
static pthread_once_t x2n_once = PTHREAD_ONCE_INIT;
static uint32_t x8nmodp(size_t nbytes);

#define STRIDE 4096u /* bytes per stream per round */

static void x2n_init(void)
{
    uint32_t p = 1u << 30; /* x^1 in reflected form */
    x2n_table[0] = p;
    for (int k = 1; k < 64; k++)
        x2n_table[k] = p = gf2_mult(p, p);
    shift_stride = x8nmodp(STRIDE);
}

/* x^(8 * nbytes) mod P. */
static uint32_t x8nmodp(size_t nbytes)
{
    uint32_t p = 1u << 31; /* x^0 */
    int k = 3;
    while (nbytes) {
        if (nbytes & 1)
            p = gf2_mult(x2n_table[k & 63], p);
        nbytes >>= 1;
        k++;
    }
    return p;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw_serial(uint32_t crc, const uint8_t *p,
                                                               size_t len)
{
    uint64_t c = crc;
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
        p += 8;
        len -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (len--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}

__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const void *data,
                                                        size_t len)
{
    const uint8_t *p = data;
    uint32_t c = ~crc;
    if (len >= 3 * STRIDE) {
        pthread_once(&x2n_once, x2n_init);
        while (len >= 3 * STRIDE) {
            uint64_t c0 = c, c1 = 0, c2 = 0;
            const uint8_t *p1 = p + STRIDE, *p2 = p + 2 * STRIDE;
            for (size_t i = 0; i < STRIDE; i += 8) {
                uint64_t w0, w1, w2;
                memcpy(&w0, p + i, 8);
                memcpy(&w1, p1 + i, 8);
                memcpy(&w2, p2 + i, 8);
                c0 = _mm_crc32_u64(c0, w0);
                c1 = _mm_crc32_u64(c1, w1);
                c2 = _mm_crc32_u64(c2, w2);
            }
            /* crc(A|B) = shift(crc(A), |B|) ^ crc0(B) for raw (uncomplemented)
             * register values, which is what the instruction computes. */
            uint32_t r = gf2_mult(shift_stride, (uint32_t)c0) ^ (uint32_t)c1;
            c = gf2_mult(shift_stride, r) ^ (uint32_t)c2;
            p += 3 * STRIDE;
            len -= 3 * STRIDE;
        }
    }
    return ~crc_hw_serial(c, p, len);
}

static int hw_state = -1; /* -1 unknown, 0 table, 1 SSE4.2; benign race: same value */

int chunk_crc32c_hw(void)
{
    int s = __atomic_load_n(&hw_state, __ATOMIC_RELAXED);
    if (s < 0) {
        __builtin_cpu_init();
        s = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        __atomic_store_n(&hw_state, s, __ATOMIC_RELAXED);
    }
    return s;
}

uint32_t chunk_crc32c(uint32_t crc, const void *data, size_t len)
{
    if (chunk_crc32c_hw())
        return crc_hw(crc, data, len);
    return chunk_crc32c_table(crc, data, len);
}
#else
int chunk_crc32c_hw(void)
{
    return 0;
}

uint32_t chunk_crc32c(uint32_t crc, const void *data, size_t len)
{
    return chunk_crc32c_table(crc, data, len);
}
#endif

/*
 * chunk_codec_xor.c — Gorilla XOR encoding of floating-point bit patterns
 * (Pelkonen et al., VLDB 2015), for 64-bit doubles and for values that are
 * exact 32-bit floats (their XORs have half the bits to spend).
 *
 * Each value is XORed with the previous one: '0' when equal; '10' and the
 * meaningful bits when they fit the previous window of leading and trailing
 * zeros; otherwise '11', 5 bits of leading zeros, the count of meaningful
 * bits (6 bits for doubles, 5 for floats; the full width stored as 0) and
 * the bits. Layout: the first pattern (8 or 4 bytes LE), then the bits.
 */
#include "chunk_internal.h"

void chunk_xor_encode(wbuf *w, const uint64_t *bits, size_t n, unsigned width)
{
    if (n == 0)
        return;
    const unsigned len_bits = width == 64 ? 6 : 5;
    if (width == 64)
        wb_u64(w, bits[0]);
    else
        wb_u32(w, (uint32_t)bits[0]);
    bitw bw = {.out = w, .acc = 0, .n = 0};
    unsigned prev_lead = width + 1, prev_trail = 0; /* no window yet */
    for (size_t i = 1; i < n; i++) {
        uint64_t x = bits[i] ^ bits[i - 1];
        if (x == 0) {
            bw_put(&bw, 0, 1);
            continue;
        }
        unsigned lead = (unsigned)__builtin_clzll(x) - (64 - width);
        unsigned trail = (unsigned)__builtin_ctzll(x);
        if (lead > 31)
            lead = 31;
        if (prev_lead <= width && lead >= prev_lead && trail >= prev_trail) {
            unsigned sig = width - prev_lead - prev_trail;
            bw_put(&bw, 2, 2);
            bw_put(&bw, x >> prev_trail, sig);
        } else {
            unsigned sig = width - lead - trail;
            bw_put(&bw, 3, 2);
            bw_put(&bw, lead, 5);
            bw_put(&bw, sig == width ? 0 : sig, len_bits);
            bw_put(&bw, x >> trail, sig);
            prev_lead = lead;
            prev_trail = trail;
        }
    }
    bw_finish(&bw);
}

int chunk_xor_decode(rbuf *r, size_t n, unsigned width, uint64_t *out)
{
    if (n == 0)
        return 0;
    if (width != 64 && width != 32)
        return CHUNK_EINVAL;
    const unsigned len_bits = width == 64 ? 6 : 5;
    uint64_t v = width == 64 ? rb_u64(r) : rb_u32(r);
    if (r->bad)
        return CHUNK_ECORRUPT;
    out[0] = v;
    bitr br;
    br_init(&br, r->p + r->pos, r->len - r->pos);
    r->pos = r->len;
    unsigned lead = 0, trail = 0;
    bool window = false;
    for (size_t i = 1; i < n; i++) {
        unsigned top = br_peek8(&br);
        if (!(top & 0x80)) {
            br_skip(&br, 1);
            out[i] = v;
            continue;
        }
        br_skip(&br, 2);
        if (top & 0x40) {
            lead = (unsigned)br_get(&br, 5);
            unsigned sig = (unsigned)br_get(&br, len_bits);
            if (sig == 0)
                sig = width;
            if (lead + sig > width)
                return CHUNK_ECORRUPT;
            trail = width - lead - sig;
            window = true;
        } else if (!window) {
            return CHUNK_ECORRUPT;
        }
        unsigned sig = width - lead - trail;
        v ^= br_get64(&br, sig) << trail;
        out[i] = v;
    }
    if (br_overrun(&br))
        return CHUNK_ECORRUPT;
    return 0;
}

/*
 * chunk_codec_rle.c — run lengths for the columns that rarely change:
 * quality, exception code, flags, and sequence residuals (a tag's sequence
 * number minus that of the first tag of its timestamp group, constant while
 * the poller publishes a request's tags in the same order).
 *
 * Layout: varint runs, then per run varint value and varint length (>= 1).
 * Decoders check that the runs cover exactly the column's n points.
 */
#include "chunk_internal.h"

/* Collects runs of values given by get(i) and writes them. Two passes over
 * the column: one to count runs, one to write them. */
#define RLE_ENCODE(w, n, GET)                                                                  \
    do {                                                                                       \
        uint64_t runs_ = 0;                                                                    \
        for (size_t i_ = 0; i_ < (n); i_++)                                                    \
            if (i_ == 0 || GET(i_) != GET(i_ - 1))                                             \
                runs_++;                                                                       \
        wb_varint((w), runs_);                                                                 \
        size_t start_ = 0;                                                                     \
        for (size_t i_ = 1; i_ <= (n); i_++)                                                   \
            if (i_ == (n) || GET(i_) != GET(i_ - 1)) {                                         \
                wb_varint((w), GET(start_));                                                   \
                wb_varint((w), (uint64_t)(i_ - start_));                                       \
                start_ = i_;                                                                   \
            }                                                                                  \
    } while (0)

void chunk_rle_encode_u8(wbuf *w, const uint8_t *v, size_t n)
{
#define GET_U8(i) ((uint64_t)v[i])
    RLE_ENCODE(w, n, GET_U8);
#undef GET_U8
}

void chunk_rle_encode_u16(wbuf *w, const uint16_t *v, size_t n)
{
#define GET_U16(i) ((uint64_t)v[i])
    RLE_ENCODE(w, n, GET_U16);
#undef GET_U16
}

void chunk_rle_encode_diff(wbuf *w, const uint64_t *a, const uint64_t *b, size_t n)
{
#define GET_DIFF(i) zigzag((int64_t)(a[i] - b[i]))
    RLE_ENCODE(w, n, GET_DIFF);
#undef GET_DIFF
}

/* Reads the next run: value and length; checks it stays within n. */
static int next_run(rbuf *r, size_t done, size_t n, uint64_t *value, size_t *len)
{
    *value = rb_varint(r);
    uint64_t l = rb_varint(r);
    if (r->bad || l == 0 || l > n - done)
        return CHUNK_ECORRUPT;
    *len = (size_t)l;
    return 0;
}

#define RLE_DECODE(r, n, MAXV, STORE)                                                          \
    do {                                                                                       \
        uint64_t runs_ = rb_varint(r);                                                         \
        if ((r)->bad || runs_ > (n) || (runs_ == 0 && (n) > 0))                                \
            return CHUNK_ECORRUPT;                                                             \
        size_t done_ = 0;                                                                      \
        for (uint64_t k_ = 0; k_ < runs_; k_++) {                                              \
            uint64_t val_;                                                                     \
            size_t len_;                                                                       \
            if (next_run((r), done_, (n), &val_, &len_) < 0 || val_ > (MAXV))                  \
                return CHUNK_ECORRUPT;                                                         \
            for (size_t j_ = done_; j_ < done_ + len_; j_++)                                   \
                STORE(j_, val_);                                                               \
            done_ += len_;                                                                     \
        }                                                                                      \
        if (done_ != (n))                                                                      \
            return CHUNK_ECORRUPT;                                                             \
    } while (0)

int chunk_rle_decode_u8(rbuf *r, size_t n, uint8_t *out)
{
#define STORE_U8(j, v) (out[j] = (uint8_t)(v))
    RLE_DECODE(r, n, 0xffu, STORE_U8);
#undef STORE_U8
    return 0;
}

int chunk_rle_decode_u16(rbuf *r, size_t n, uint16_t *out)
{
#define STORE_U16(j, v) (out[j] = (uint16_t)(v))
    RLE_DECODE(r, n, 0xffffu, STORE_U16);
#undef STORE_U16
    return 0;
}

int chunk_rle_decode_diff(rbuf *r, size_t n, const uint64_t *base, uint64_t *out)
{
#define STORE_DIFF(j, v) (out[j] = base[j] + (uint64_t)unzigzag(v))
    RLE_DECODE(r, n, UINT64_MAX, STORE_DIFF);
#undef STORE_DIFF
    return 0;
}

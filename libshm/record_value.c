/*
 * record_value.c — build and read TagValue records (schemas/shmbus.fbs).
 *
 * libshm always builds the same 84-byte layout, every field present, in the
 * caller's memory (typically a claimed ring slot: zero copy):
 *
 *    0  u32  root offset = 36
 *    4  "SHMV" file identifier
 *    8  vtable: u16 length 22, u16 table size 48, nine u16 field offsets
 *   30  6 zero bytes, so that the table's 8-byte fields are 8-byte aligned
 *   36  table: i32 soffset 28 (its vtable is at 36 - 28 = 8)
 *   40  sequence      u64     table+4       64  raw          i64  table+28
 *   48  timestamp_ns  i64     table+12      72  device_id    u32  table+36
 *   56  value         f64     table+20      76  tag_id       u32  table+40
 *   80  flags u16 (+44), 82 quality u8 (+46), 83 exception_code u8 (+47)
 *   84  end
 *
 * The decoder has a fast path for exactly that layout: when the first 40
 * bytes (root offset, identifier, whole vtable, padding, soffset) equal the
 * canonical ones and at least 84 bytes are there, every check the verifier
 * would make is already decided (table at 36 of size 48 inside the buffer,
 * every field offset inside and aligned), so fields are loaded directly.
 * Any other buffer — built by flatc, by python3-flatbuffers, by a newer
 * schema, or damaged — goes through the generic verifier and vtable lookups.
 * Both paths give the same answer on every input (the fuzz target checks).
 */
#include "internal.h"
#include "record_internal.h"

enum {
    TV_ROOT = 36,
    TV_SEQUENCE = TV_ROOT + 4,
    TV_TIMESTAMP = TV_ROOT + 12,
    TV_VALUE = TV_ROOT + 20,
    TV_RAW = TV_ROOT + 28,
    TV_DEVICE_ID = TV_ROOT + 36,
    TV_TAG_ID = TV_ROOT + 40,
    TV_FLAGS = TV_ROOT + 44,
    TV_QUALITY = TV_ROOT + 46,
    TV_EXCEPTION = TV_ROOT + 47,
    TV_PREFIX_LEN = 40,
};
_Static_assert(TV_EXCEPTION + 1 == SHM__TAG_VALUE_LEN, "layout ends at SHM__TAG_VALUE_LEN");

/* Field ids in schema order, with the table offsets of the fixed layout. */
/* clang-format off */
static const uint8_t tv_prefix[TV_PREFIX_LEN] = {
    TV_ROOT, 0, 0, 0, 'S', 'H', 'M', 'V',
    22, 0,                /* vtable length: 4 + 2 * 9 fields */
    48, 0,                /* table size: soffset + 44 bytes of fields */
    4, 0,                 /* 0 sequence */
    12, 0,                /* 1 timestamp_ns */
    36, 0,                /* 2 device_id */
    40, 0,                /* 3 tag_id */
    20, 0,                /* 4 value */
    28, 0,                /* 5 raw */
    46, 0,                /* 6 quality */
    47, 0,                /* 7 exception_code */
    44, 0,                /* 8 flags */
    0, 0, 0, 0, 0, 0,     /* padding */
    TV_ROOT - 8, 0, 0, 0, /* soffset: vtable at 8 */
};
/* clang-format on */

/* Field sizes and names by id, for the generic path. */
static const struct {
    uint8_t size;
    const char *name;
} tv_fields[] = {
    {8, "sequence"}, {8, "timestamp_ns"}, {4, "device_id"},      {4, "tag_id"}, {8, "value"},
    {8, "raw"},      {1, "quality"},      {1, "exception_code"}, {2, "flags"},
};
enum { TV_FIELDS = sizeof tv_fields / sizeof tv_fields[0] };

int shm_tag_value_encode(const shm_tag_value *v, void *buf, size_t cap)
{
    if (v == NULL || buf == NULL)
        return shm__fail(SHM_EINVAL, "shm_tag_value_encode: %s is NULL",
                         v == NULL ? "value" : "buffer");
    if (cap < SHM__TAG_VALUE_LEN)
        return shm__fail(SHM_ETOOBIG, "TagValue needs %d bytes, the buffer has %zu",
                         SHM__TAG_VALUE_LEN, cap);
    uint8_t *b = buf;
    memcpy(b, tv_prefix, sizeof tv_prefix);
    shm__st64(b + TV_SEQUENCE, v->sequence);
    shm__st64(b + TV_TIMESTAMP, (uint64_t)v->timestamp_ns);
    shm__stf64(b + TV_VALUE, v->value);
    shm__st64(b + TV_RAW, (uint64_t)v->raw);
    shm__st32(b + TV_DEVICE_ID, v->device_id);
    shm__st32(b + TV_TAG_ID, v->tag_id);
    shm__st16(b + TV_FLAGS, v->flags);
    b[TV_QUALITY] = v->quality;
    b[TV_EXCEPTION] = v->exception_code;
    return SHM__TAG_VALUE_LEN;
}

/* True when b starts with the canonical 40 bytes: five word compares
 * against constants (written out so the compiler folds tv_prefix). */
static inline int tv_is_canonical(const uint8_t *b)
{
    _Static_assert(TV_PREFIX_LEN == 40, "five words");
    uint64_t diff = (shm__ld64(b) ^ shm__ld64(tv_prefix)) |
                    (shm__ld64(b + 8) ^ shm__ld64(tv_prefix + 8)) |
                    (shm__ld64(b + 16) ^ shm__ld64(tv_prefix + 16)) |
                    (shm__ld64(b + 24) ^ shm__ld64(tv_prefix + 24)) |
                    (shm__ld64(b + 32) ^ shm__ld64(tv_prefix + 32));
    return diff == 0;
}

int shm__tag_value_decode_generic(const void *buf, size_t len, shm_tag_value *out)
{
    struct shm__fb_table t;
    int rc = shm__fb_root(buf, len, SHM__TAG_VALUE_IDENT, SHM__TAG_VALUE_LEN_MAX, "TagValue", &t);
    if (rc < 0)
        return rc;
    uint32_t at[TV_FIELDS];
    for (unsigned id = 0; id < TV_FIELDS; id++) {
        rc = shm__fb_field(&t, id, tv_fields[id].size, tv_fields[id].name, &at[id]);
        if (rc < 0)
            return rc;
    }
    /* Everything verified: read, with the schema's defaults for absent fields. */
    const uint8_t *b = buf;
    out->sequence = at[0] ? shm__ld64(b + at[0]) : 0;
    out->timestamp_ns = at[1] ? (int64_t)shm__ld64(b + at[1]) : 0;
    out->device_id = at[2] ? shm__ld32(b + at[2]) : 0;
    out->tag_id = at[3] ? shm__ld32(b + at[3]) : 0;
    out->value = at[4] ? shm__ldf64(b + at[4]) : 0.0;
    out->raw = at[5] ? (int64_t)shm__ld64(b + at[5]) : 0;
    out->quality = at[6] ? b[at[6]] : SHM_Q_GOOD;
    out->exception_code = at[7] ? b[at[7]] : 0;
    out->flags = at[8] ? shm__ld16(b + at[8]) : 0;
    return 0;
}

int shm_tag_value_decode(const void *buf, size_t len, shm_tag_value *out)
{
    if (out == NULL)
        return shm__fail(SHM_EINVAL, "shm_tag_value_decode: out is NULL");
    const uint8_t *b = buf;
    if (b != NULL && len >= SHM__TAG_VALUE_LEN && len <= SHM__TAG_VALUE_LEN_MAX &&
        tv_is_canonical(b)) {
        out->sequence = shm__ld64(b + TV_SEQUENCE);
        out->timestamp_ns = (int64_t)shm__ld64(b + TV_TIMESTAMP);
        out->device_id = shm__ld32(b + TV_DEVICE_ID);
        out->tag_id = shm__ld32(b + TV_TAG_ID);
        out->value = shm__ldf64(b + TV_VALUE);
        out->raw = (int64_t)shm__ld64(b + TV_RAW);
        out->quality = b[TV_QUALITY];
        out->exception_code = b[TV_EXCEPTION];
        out->flags = shm__ld16(b + TV_FLAGS);
        return 0;
    }
    return shm__tag_value_decode_generic(buf, len, out);
}

/*
 * record_meta.c — build and read TagMeta records (schemas/catalog.fbs), the
 * entries of the segment's tag catalog.
 *
 * libshm builds one layout, every field present (scale too, even when it is
 * the default 1.0), strings last:
 *
 *    0  u32  root offset = 36
 *    4  "SHMC" file identifier
 *    8  vtable: u16 length 22, u16 table size 44, nine u16 field offsets
 *   30  6 zero bytes (aligns the table's doubles)
 *   36  table: i32 soffset 28 (vtable at 8)
 *   40  scale f64 (+4)    48  offset f64 (+12)    56  id u32 (+20)
 *   60  device_id u32 (+24)    64/68/72  uoffsets of name, device, unit
 *   76  data_type u8 (+40)     77  priority u8 (+41)    78  2 zero bytes
 *   80  strings name, device, unit: u32 length, bytes, NUL, zero padding to
 *       4 bytes between strings; the buffer ends at unit's NUL.
 *
 * At most 80 + 3 * 260 = 860 bytes, below SHM_CATALOG_ENTRY_MAX. Decoding
 * goes through the generic verifier (catalog reads are rare); strings are
 * returned as pointers into the buffer, NUL-terminated, never copied.
 */
#include "internal.h"
#include "record_internal.h"

enum {
    TM_ROOT = 36,
    TM_SCALE = TM_ROOT + 4,
    TM_OFFSET = TM_ROOT + 12,
    TM_ID = TM_ROOT + 20,
    TM_DEVICE_ID = TM_ROOT + 24,
    TM_NAME = TM_ROOT + 28, /* uoffsets of the three strings, 4 apart */
    TM_DATA_TYPE = TM_ROOT + 40,
    TM_PRIORITY = TM_ROOT + 41,
    TM_STRINGS = TM_ROOT + 44,
    TM_PREFIX_LEN = 40,
    TM_STRING_COUNT = 3,
};
_Static_assert(TM_STRINGS + TM_STRING_COUNT * (4 + SHM__META_STRING_MAX + 1) <=
                   SHM__TAG_META_LEN_MAX,
               "the largest TagMeta fits a catalog entry");

/* clang-format off */
static const uint8_t tm_prefix[TM_PREFIX_LEN] = {
    TM_ROOT, 0, 0, 0, 'S', 'H', 'M', 'C',
    22, 0,                /* vtable length: 4 + 2 * 9 fields */
    44, 0,                /* table size */
    20, 0,                /* 0 id */
    24, 0,                /* 1 device_id */
    28, 0,                /* 2 name */
    32, 0,                /* 3 device */
    36, 0,                /* 4 unit */
    40, 0,                /* 5 data_type */
    41, 0,                /* 6 priority */
    4, 0,                 /* 7 scale */
    12, 0,                /* 8 offset */
    0, 0, 0, 0, 0, 0,     /* padding */
    TM_ROOT - 8, 0, 0, 0, /* soffset: vtable at 8 */
};
/* clang-format on */

static const char *const tm_string_names[TM_STRING_COUNT] = {"name", "device", "unit"};

int shm_tag_meta_encode(const shm_tag_meta *m, void *buf, size_t cap)
{
    if (m == NULL || buf == NULL)
        return shm__fail(SHM_EINVAL, "shm_tag_meta_encode: %s is NULL",
                         m == NULL ? "meta" : "buffer");
    const char *s[TM_STRING_COUNT] = {m->name, m->device, m->unit};
    size_t n[TM_STRING_COUNT];
    uint32_t at[TM_STRING_COUNT];
    size_t end = TM_STRINGS;
    for (int i = 0; i < TM_STRING_COUNT; i++) {
        if (s[i] == NULL)
            s[i] = ""; /* NULL means empty, as an absent string decodes */
        n[i] = strnlen(s[i], SHM__META_STRING_MAX + 1);
        if (n[i] > SHM__META_STRING_MAX)
            return shm__fail(SHM_EINVAL, "TagMeta.%s: longer than %d bytes", tm_string_names[i],
                             SHM__META_STRING_MAX);
        if (!shm__utf8_valid((const uint8_t *)s[i], n[i]))
            return shm__fail(SHM_EINVAL, "TagMeta.%s: not valid UTF-8", tm_string_names[i]);
        end = (end + 3) & ~(size_t)3;
        at[i] = (uint32_t)end;
        end += 4 + n[i] + 1;
    }
    if (cap < end)
        return shm__fail(SHM_ETOOBIG, "TagMeta needs %zu bytes, the buffer has %zu", end, cap);

    uint8_t *b = buf;
    memcpy(b, tm_prefix, sizeof tm_prefix);
    shm__stf64(b + TM_SCALE, m->scale);
    shm__stf64(b + TM_OFFSET, m->offset);
    shm__st32(b + TM_ID, m->id);
    shm__st32(b + TM_DEVICE_ID, m->device_id);
    b[TM_DATA_TYPE] = m->data_type;
    b[TM_PRIORITY] = m->priority;
    b[TM_PRIORITY + 1] = 0;
    b[TM_PRIORITY + 2] = 0;
    size_t pos = TM_STRINGS;
    for (int i = 0; i < TM_STRING_COUNT; i++) {
        while (pos < at[i])
            b[pos++] = 0; /* alignment padding between strings */
        uint32_t slot = TM_NAME + 4 * (uint32_t)i;
        shm__st32(b + slot, at[i] - slot); /* uoffset is relative to where it is stored */
        shm__st32(b + at[i], (uint32_t)n[i]);
        memcpy(b + at[i] + 4, s[i], n[i]);
        b[at[i] + 4 + n[i]] = 0;
        pos = at[i] + 4 + n[i] + 1;
    }
    return (int)end;
}

int shm_tag_meta_decode(const void *buf, size_t len, shm_tag_meta *out)
{
    if (out == NULL)
        return shm__fail(SHM_EINVAL, "shm_tag_meta_decode: out is NULL");
    struct shm__fb_table t;
    int rc = shm__fb_root(buf, len, SHM__TAG_META_IDENT, SHM__TAG_META_LEN_MAX, "TagMeta", &t);
    if (rc < 0)
        return rc;

    static const struct {
        uint8_t id, size;
        const char *name;
    } scalars[] = {
        {0, 4, "id"},       {1, 4, "device_id"}, {5, 1, "data_type"},
        {6, 1, "priority"}, {7, 8, "scale"},     {8, 8, "offset"},
    };
    uint32_t at[6];
    for (unsigned i = 0; i < 6; i++) {
        rc = shm__fb_field(&t, scalars[i].id, scalars[i].size, scalars[i].name, &at[i]);
        if (rc < 0)
            return rc;
    }
    const char *str[TM_STRING_COUNT];
    for (unsigned i = 0; i < TM_STRING_COUNT; i++) {
        uint32_t n;
        rc = shm__fb_string(&t, 2 + i, tm_string_names[i], SHM__META_STRING_MAX, &str[i], &n);
        if (rc < 0)
            return rc;
    }

    /* Everything verified: read, with the schema's defaults for absent fields. */
    const uint8_t *b = buf;
    out->id = at[0] ? shm__ld32(b + at[0]) : 0;
    out->device_id = at[1] ? shm__ld32(b + at[1]) : 0;
    out->data_type = at[2] ? b[at[2]] : SHM_DT_BOOL;
    out->priority = at[3] ? b[at[3]] : 0;
    out->scale = at[4] ? shm__ldf64(b + at[4]) : 1.0;
    out->offset = at[5] ? shm__ldf64(b + at[5]) : 0.0;
    out->name = str[0];
    out->device = str[1];
    out->unit = str[2];
    return 0;
}

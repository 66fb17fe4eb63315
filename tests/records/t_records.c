/*
 * t_records.c — the record codec on valid input: TagValue and TagMeta
 * round trips over edge values, in-place encoding at any alignment, buffer
 * size limits, schema defaults for absent fields, layouts other than the
 * one libshm builds (vtable after the table, trimmed vtables, fields from a
 * newer schema), and the enum names. Rejections are in t_records_reject.c;
 * compatibility with flatc and python3-flatbuffers in records_interop.py.
 */
#include "record_internal.h"

#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t bits_of(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static double double_of(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static void assert_value_equal(const shm_tag_value *a, const shm_tag_value *b)
{
    assert_int_equal(a->sequence, b->sequence);
    assert_int_equal(a->timestamp_ns, b->timestamp_ns);
    assert_int_equal(a->device_id, b->device_id);
    assert_int_equal(a->tag_id, b->tag_id);
    assert_int_equal(bits_of(a->value), bits_of(b->value)); /* bit-exact, NaN payloads too */
    assert_int_equal(a->raw, b->raw);
    assert_int_equal(a->quality, b->quality);
    assert_int_equal(a->exception_code, b->exception_code);
    assert_int_equal(a->flags, b->flags);
}

/* Decodes from an exact-size heap copy (so ASan sees a read past the end),
 * through the public decoder and the generic one, which must agree. */
static int decode_exact(const uint8_t *b, size_t n, shm_tag_value *out)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, b, n);
    shm_tag_value generic;
    memset(out, 0xa5, sizeof *out);
    int rc = shm_tag_value_decode(copy, n, out);
    int rc_generic = shm__tag_value_decode_generic(copy, n, &generic);
    assert_int_equal(rc, rc_generic);
    if (rc == 0)
        assert_value_equal(out, &generic);
    free(copy);
    return rc;
}

static const shm_tag_value value_cases[] = {
    {0},
    {.sequence = UINT64_MAX,
     .timestamp_ns = INT64_MAX,
     .device_id = UINT32_MAX,
     .tag_id = UINT32_MAX,
     .value = 1.7976931348623157e308,
     .raw = INT64_MAX,
     .quality = 255,
     .exception_code = 255,
     .flags = UINT16_MAX},
    {.sequence = 1,
     .timestamp_ns = INT64_MIN,
     .value = -0.0,
     .raw = INT64_MIN,
     .quality = SHM_Q_DECODE_ERROR},
    {.sequence = 42,
     .timestamp_ns = 1763900000123456789,
     .device_id = 3,
     .tag_id = 17,
     .value = 21.5,
     .raw = 2150,
     .quality = SHM_Q_GOOD},
    {.sequence = 43, .value = 4.9406564584124654e-324, .quality = SHM_Q_STALE},
    {.sequence = 44, .quality = SHM_Q_DEVICE_EXCEPTION, .exception_code = 2, .flags = 0x8001},
};

static void test_value_round_trip(void **state)
{
    (void)state;
    const double specials[] = {NAN,
                               -NAN,
                               INFINITY,
                               -INFINITY,
                               double_of(0x7ff8000000000123),
                               double_of(0xfff0000000000001) /* signalling NaN */};
    for (size_t i = 0; i < sizeof value_cases / sizeof value_cases[0] + 6; i++) {
        shm_tag_value v = value_cases[i % (sizeof value_cases / sizeof value_cases[0])];
        if (i >= sizeof value_cases / sizeof value_cases[0])
            v.value = specials[i - sizeof value_cases / sizeof value_cases[0]];
        uint8_t buf[SHM_TAG_VALUE_MAX];
        int n = shm_tag_value_encode(&v, buf, sizeof buf);
        assert_int_equal(n, SHM__TAG_VALUE_LEN);
        assert_true(n <= SHM_TAG_VALUE_MAX);
        shm_tag_value out;
        assert_int_equal(decode_exact(buf, (size_t)n, &out), 0);
        assert_value_equal(&v, &out);
    }
}

/* Encoding writes exactly SHM__TAG_VALUE_LEN bytes, at any address, and a
 * record read from a larger slot (trailing bytes) still decodes. */
static void test_value_in_place_any_alignment(void **state)
{
    (void)state;
    const shm_tag_value v = value_cases[3];
    for (size_t shift = 0; shift < 8; shift++) {
        uint8_t slot[SHM_TAG_VALUE_MAX + 16];
        memset(slot, 0xee, sizeof slot);
        int n = shm_tag_value_encode(&v, slot + shift, SHM_TAG_VALUE_MAX);
        assert_int_equal(n, SHM__TAG_VALUE_LEN);
        for (size_t i = 0; i < shift; i++)
            assert_int_equal(slot[i], 0xee);
        for (size_t i = shift + (size_t)n; i < sizeof slot; i++)
            assert_int_equal(slot[i], 0xee);
        shm_tag_value out;
        assert_int_equal(shm_tag_value_decode(slot + shift, (size_t)n, &out), 0);
        assert_value_equal(&v, &out);
        assert_int_equal(shm_tag_value_decode(slot + shift, SHM_TAG_VALUE_MAX, &out), 0);
        assert_value_equal(&v, &out);
    }
}

static void test_value_encode_limits(void **state)
{
    (void)state;
    shm_tag_value v = value_cases[1];
    uint8_t buf[SHM_TAG_VALUE_MAX];
    assert_int_equal(shm_tag_value_encode(&v, buf, SHM__TAG_VALUE_LEN - 1), SHM_ETOOBIG);
    assert_non_null(strstr(shm_last_error(), "needs 84 bytes"));
    assert_int_equal(shm_tag_value_encode(&v, buf, SHM__TAG_VALUE_LEN), SHM__TAG_VALUE_LEN);
    assert_int_equal(shm_tag_value_encode(NULL, buf, sizeof buf), SHM_EINVAL);
    assert_int_equal(shm_tag_value_encode(&v, NULL, sizeof buf), SHM_EINVAL);
    assert_int_equal(shm_tag_value_decode(buf, SHM__TAG_VALUE_LEN, NULL), SHM_EINVAL);
    shm_tag_value out;
    assert_int_equal(shm_tag_value_decode(NULL, 0, &out), SHM_EBADRECORD);
    /* A record may be as long as the largest slot payload, no longer. */
    uint8_t big[SHM__TAG_VALUE_LEN_MAX + 1];
    memset(big, 0, sizeof big);
    memcpy(big, buf, SHM__TAG_VALUE_LEN);
    assert_int_equal(shm_tag_value_decode(big, SHM__TAG_VALUE_LEN_MAX, &out), 0);
    assert_int_equal(shm_tag_value_decode(big, sizeof big, &out), SHM_EBADRECORD);
    assert_non_null(strstr(shm_last_error(), "exceeds the 4080-byte limit"));
}

/* Builds a buffer by hand: header, then `body` at offset 8. */
static size_t hand_buffer(uint8_t *b, const char *ident, uint32_t root, const uint8_t *body,
                          size_t body_len)
{
    shm__st32(b, root);
    memcpy(b + 4, ident, 4);
    memcpy(b + 8, body, body_len);
    return 8 + body_len;
}

/* The smallest valid TagValue: an empty vtable (4 bytes) and a table holding
 * only its soffset. Every field takes the schema's default. */
static void test_value_all_defaults(void **state)
{
    (void)state;
    uint8_t body[8] = {4, 0, 4, 0, /* vtable at 8: length 4, table size 4 */
                       4, 0, 0, 0 /* table at 12: soffset 4 */};
    uint8_t b[16];
    size_t n = hand_buffer(b, "SHMV", 12, body, sizeof body);
    shm_tag_value out;
    assert_int_equal(decode_exact(b, n, &out), 0);
    shm_tag_value zero = {0};
    assert_value_equal(&out, &zero);
    assert_int_equal(out.quality, SHM_Q_GOOD);
}

/* A table before its vtable (negative soffset), fields in another order, a
 * vtable trimmed after field 5, and a field a newer schema appended (id 20)
 * pointing nowhere sensible: all legal FlatBuffers, read correctly. */
static void test_value_other_layouts(void **state)
{
    (void)state;
    uint8_t b[96] = {0};
    memcpy(b + 4, "SHMV", 4);
    shm__st32(b, 8);                                       /* table at 8 */
    const uint32_t table = 8, vt = 40;                     /* table 8..40, vtable at 40 */
    shm__st32(b + table, (uint32_t)(int32_t)(table - vt)); /* soffset -32 */
    shm__st32(b + table + 4, 77);                          /* tag_id */
    shm__st64(b + table + 8, 123456789);                   /* raw */
    shm__stf64(b + table + 16, -2.5);                      /* value */
    shm__st64(b + table + 24, 99);                         /* sequence */
    shm__st16(b + vt, 4 + 2 * 21);                         /* vtable: 21 slots */
    shm__st16(b + vt + 2, 32);                             /* table size */
    shm__st16(b + vt + 4 + 2 * 0, 24);                     /* sequence */
    shm__st16(b + vt + 4 + 2 * 3, 4);                      /* tag_id */
    shm__st16(b + vt + 4 + 2 * 4, 16);                     /* value */
    shm__st16(b + vt + 4 + 2 * 5, 8);                      /* raw */
    shm__st16(b + vt + 4 + 2 * 20, 60000);                 /* unknown field: ignored */
    size_t n = vt + 4 + 2 * 21;
    shm_tag_value out;
    assert_int_equal(decode_exact(b, n, &out), 0);
    assert_int_equal(out.sequence, 99);
    assert_int_equal(out.tag_id, 77);
    assert_int_equal(out.raw, 123456789);
    assert_true(out.value == -2.5);
    assert_int_equal(out.timestamp_ns, 0);
    assert_int_equal(out.quality, SHM_Q_GOOD);
    assert_int_equal(out.flags, 0);

    /* Same table, vtable trimmed to ids 0..5 (as the official builders trim
     * trailing absent fields). */
    shm__st16(b + vt, 4 + 2 * 6);
    assert_int_equal(decode_exact(b, vt + 4 + 2 * 6, &out), 0);
    assert_int_equal(out.sequence, 99);
    assert_int_equal(out.raw, 123456789);
}

static void assert_meta_equal(const shm_tag_meta *a, const shm_tag_meta *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->device_id, b->device_id);
    assert_string_equal(a->name ? a->name : "", b->name ? b->name : "");
    assert_string_equal(a->device ? a->device : "", b->device ? b->device : "");
    assert_string_equal(a->unit ? a->unit : "", b->unit ? b->unit : "");
    assert_int_equal(a->data_type, b->data_type);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(bits_of(a->scale), bits_of(b->scale));
    assert_int_equal(bits_of(a->offset), bits_of(b->offset));
}

static void test_meta_round_trip(void **state)
{
    (void)state;
    /* 255 bytes, ending in multi-byte characters: 250 x, then é (2) and € (3). */
    char longest[SHM__META_STRING_MAX + 1];
    memset(longest, 'x', 250);
    memcpy(longest + 250, "\xc3\xa9\xe2\x82\xac", 6);
    assert_int_equal(strlen(longest), SHM__META_STRING_MAX);
    assert_true(shm__utf8_valid((const uint8_t *)longest, SHM__META_STRING_MAX));

    const shm_tag_meta cases[] = {
        {.scale = 1.0},
        {.id = 1,
         .device_id = 2,
         .name = "boiler1.temperature",
         .device = "plc1",
         .unit = "\xc2\xb0"
                 "C",
         .data_type = SHM_DT_FLOAT32,
         .priority = 3,
         .scale = 0.1,
         .offset = -273.15},
        {.id = UINT32_MAX,
         .device_id = UINT32_MAX,
         .name = longest,
         .device = longest,
         .unit = longest,
         .data_type = SHM_DT_STRING,
         .priority = 255,
         .scale = NAN,
         .offset = -INFINITY},
        {.id = 5, .name = "", .device = "d", .unit = "ab", .scale = 0.0, .offset = -0.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[SHM_CATALOG_ENTRY_MAX];
        int n = shm_tag_meta_encode(&cases[i], buf, sizeof buf);
        assert_true(n > 0 && n <= SHM_CATALOG_ENTRY_MAX);
        uint8_t *copy = malloc((size_t)n);
        memcpy(copy, buf, (size_t)n);
        shm_tag_meta out;
        assert_int_equal(shm_tag_meta_decode(copy, (size_t)n, &out), 0);
        assert_meta_equal(&cases[i], &out);
        /* strings are views into the buffer, not copies */
        assert_true((const uint8_t *)out.name > copy && (const uint8_t *)out.name < copy + n);
        assert_true((const uint8_t *)out.unit + strlen(out.unit) == copy + n - 1);
        free(copy);
    }
    /* the largest TagMeta: three 255-byte strings */
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
    assert_int_equal(shm_tag_meta_encode(&cases[2], buf, sizeof buf), 80 + 3 * 260);
}

static void test_meta_null_strings_and_limits(void **state)
{
    (void)state;
    shm_tag_meta m = {.id = 9, .scale = 2.0};
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
    int n = shm_tag_meta_encode(&m, buf, sizeof buf);
    assert_int_equal(n, 80 + 8 + 8 + 5); /* three empty strings */
    shm_tag_meta out;
    assert_int_equal(shm_tag_meta_decode(buf, (size_t)n, &out), 0);
    assert_string_equal(out.name, "");
    assert_string_equal(out.device, "");
    assert_string_equal(out.unit, "");

    assert_int_equal(shm_tag_meta_encode(&m, buf, (size_t)n - 1), SHM_ETOOBIG);
    char too_long[SHM__META_STRING_MAX + 2];
    memset(too_long, 'y', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    m.device = too_long;
    assert_int_equal(shm_tag_meta_encode(&m, buf, sizeof buf), SHM_EINVAL);
    assert_non_null(strstr(shm_last_error(), "TagMeta.device: longer than 255 bytes"));
    m.device = "ok";
    m.unit = "\xff";
    assert_int_equal(shm_tag_meta_encode(&m, buf, sizeof buf), SHM_EINVAL);
    assert_non_null(strstr(shm_last_error(), "TagMeta.unit: not valid UTF-8"));
    assert_int_equal(shm_tag_meta_encode(NULL, buf, sizeof buf), SHM_EINVAL);
    assert_int_equal(shm_tag_meta_decode(buf, sizeof buf, NULL), SHM_EINVAL);
}

/* A TagMeta with every field absent: scale defaults to 1.0, strings to "". */
static void test_meta_defaults(void **state)
{
    (void)state;
    uint8_t body[8] = {4, 0, 4, 0, 4, 0, 0, 0};
    uint8_t b[16];
    size_t n = hand_buffer(b, "SHMC", 12, body, sizeof body);
    shm_tag_meta out;
    assert_int_equal(shm_tag_meta_decode(b, n, &out), 0);
    assert_true(out.scale == 1.0);
    assert_true(out.offset == 0.0);
    assert_int_equal(out.id, 0);
    assert_int_equal(out.data_type, SHM_DT_BOOL);
    assert_string_equal(out.name, "");
    assert_string_equal(out.unit, "");
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(shm_quality_name(SHM_Q_GOOD), "GOOD");
    assert_string_equal(shm_quality_name(SHM_Q_COMM_FAIL), "COMM_FAIL");
    assert_string_equal(shm_quality_name(SHM_Q_DECODE_ERROR), "DECODE_ERROR");
    assert_string_equal(shm_quality_name(7), "UNKNOWN");
    assert_string_equal(shm_quality_name(-1), "UNKNOWN");
    assert_string_equal(shm_data_type_name(SHM_DT_BOOL), "BOOL");
    assert_string_equal(shm_data_type_name(SHM_DT_FLOAT32), "FLOAT32");
    assert_string_equal(shm_data_type_name(SHM_DT_STRING), "STRING");
    assert_string_equal(shm_data_type_name(11), "UNKNOWN");
}

static void test_utf8(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int valid;
    } cases[] = {
        {"", 1},
        {"plain ascii", 1},
        {"\xc2\xb0"
         "C",
         1},                     /* degree sign */
        {"\xe2\x82\xac", 1},     /* euro */
        {"\xf0\x9f\x98\x80", 1}, /* emoji */
        {"\xf4\x8f\xbf\xbf", 1}, /* U+10FFFF */
        {"\x80", 0},             /* lone continuation */
        {"\xc0\xaf", 0},         /* overlong '/' */
        {"\xe0\x80\xaf", 0},     /* overlong, 3 bytes */
        {"\xed\xa0\x80", 0},     /* surrogate U+D800 */
        {"\xf4\x90\x80\x80", 0}, /* U+110000 */
        {"\xf5\x80\x80\x80", 0}, /* lead byte > 0xf4 */
        {"\xe2\x82", 0},         /* truncated */
        {"a\xc3", 0},            /* truncated at the end */
        {"\xc3\x28", 0},         /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_int_equal(shm__utf8_valid((const uint8_t *)cases[i].s, strlen(cases[i].s)),
                         cases[i].valid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_round_trip),
        cmocka_unit_test(test_value_in_place_any_alignment),
        cmocka_unit_test(test_value_encode_limits),
        cmocka_unit_test(test_value_all_defaults),
        cmocka_unit_test(test_value_other_layouts),
        cmocka_unit_test(test_meta_round_trip),
        cmocka_unit_test(test_meta_null_strings_and_limits),
        cmocka_unit_test(test_meta_defaults),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

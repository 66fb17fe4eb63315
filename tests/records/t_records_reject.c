/*
 * t_records_reject.c — the verifier refuses damaged records, each with its
 * own diagnostic, and never reads outside the buffer. Every decode here runs
 * on an exact-size heap copy, so under AddressSanitizer (build-asan) a read
 * one byte past the end aborts the test.
 *
 * Cases: every truncation of both record kinds; root offsets pointing into
 * the header, outside, misaligned; vtables outside, misaligned, too short,
 * odd, too big, running past the end; tables too small or too long; fields
 * overlapping the soffset, outside the table, misaligned; strings with a zero
 * offset, outside, misaligned, oversize, unterminated, with a NUL inside, not
 * UTF-8; wrong file identifiers; records over the size limit; and a sweep of
 * every single-byte corruption of both kinds.
 */
#include "record_internal.h"

#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { VALUE, META };

/* Decodes an exact-size heap copy; for TagValue the fast and the generic
 * decoders must agree. Returns the decoder's result. */
static int decode_exact(enum kind k, const uint8_t *b, size_t n)
{
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, b, n);
    int rc;
    if (k == VALUE) {
        shm_tag_value v, g;
        rc = shm_tag_value_decode(copy, n, &v);
        char diag[512];
        snprintf(diag, sizeof diag, "%s", shm_last_error());
        int rc_generic = shm__tag_value_decode_generic(copy, n, &g);
        assert_int_equal(rc, rc_generic);
        if (rc == 0)
            assert_memory_equal(&v, &g, offsetof(shm_tag_value, flags) + sizeof v.flags);
        else
            assert_string_equal(diag, shm_last_error()); /* same reason from both paths */
    } else {
        shm_tag_meta m;
        rc = shm_tag_meta_decode(copy, n, &m);
    }
    free(copy);
    return rc;
}

/* Asserts the buffer is rejected with a diagnostic containing `expect`. */
static void expect_reject(enum kind k, const uint8_t *b, size_t n, const char *expect)
{
    int rc = decode_exact(k, b, n);
    if (rc != SHM_EBADRECORD || strstr(shm_last_error(), expect) == NULL) {
        fprintf(stderr, "expected rejection with \"%s\"; got rc %d, diag \"%s\"\n", expect, rc,
                shm_last_error());
        fail();
    }
}

static size_t good_value(uint8_t *b)
{
    shm_tag_value v = {.sequence = 7,
                       .timestamp_ns = 1,
                       .device_id = 2,
                       .tag_id = 3,
                       .value = 4.5,
                       .raw = 6,
                       .quality = SHM_Q_STALE,
                       .flags = 1};
    int n = shm_tag_value_encode(&v, b, SHM_TAG_VALUE_MAX);
    assert_int_equal(n, SHM__TAG_VALUE_LEN);
    return (size_t)n;
}

static size_t good_meta(uint8_t *b)
{
    shm_tag_meta m = {.id = 1,
                      .device_id = 2,
                      .name = "tank.level",
                      .device = "plc",
                      .unit = "m",
                      .data_type = SHM_DT_INT16,
                      .scale = 0.01};
    int n = shm_tag_meta_encode(&m, b, SHM_CATALOG_ENTRY_MAX);
    assert_true(n > 0);
    return (size_t)n;
}

/* Every proper prefix of a record is refused: the encoders write no byte
 * that a reader can do without. */
static void test_truncated(void **state)
{
    (void)state;
    uint8_t b[SHM_CATALOG_ENTRY_MAX];
    size_t n = good_value(b);
    assert_int_equal(decode_exact(VALUE, b, n), 0);
    for (size_t len = 0; len < n; len++)
        expect_reject(VALUE, b, len, "TagValue: ");
    expect_reject(VALUE, b, 7, "7-byte buffer is shorter than the 8-byte header");
    expect_reject(VALUE, b, 39, "root offset 36 is outside the 39-byte buffer");
    expect_reject(VALUE, b, 83, "table at 36 of 48 bytes runs past the end of the 83-byte buffer");

    n = good_meta(b);
    assert_int_equal(decode_exact(META, b, n), 0);
    for (size_t len = 0; len < n; len++)
        expect_reject(META, b, len, "TagMeta");
    expect_reject(META, b, n - 1, "TagMeta.unit: string of 1 bytes at");
}

static void test_identifier(void **state)
{
    (void)state;
    uint8_t b[SHM_CATALOG_ENTRY_MAX];
    size_t n = good_value(b);
    memcpy(b + 4, "SHMX", 4);
    expect_reject(VALUE, b, n, "file identifier \"SHMX\" (53 48 4d 58), expected \"SHMV\"");
    memcpy(b + 4, "\0\1\2\3", 4);
    expect_reject(VALUE, b, n, "file identifier \"????\" (00 01 02 03)");
    /* each kind refuses the other */
    n = good_meta(b);
    expect_reject(VALUE, b, n, "expected \"SHMV\"");
    n = good_value(b);
    expect_reject(META, b, n, "expected \"SHMC\"");
}

static void test_size_limit(void **state)
{
    (void)state;
    uint8_t *b = calloc(1, SHM__TAG_VALUE_LEN_MAX + 1);
    good_value(b);
    expect_reject(VALUE, b, SHM__TAG_VALUE_LEN_MAX + 1, "4081-byte buffer exceeds the 4080-byte");
    good_meta(b);
    char want[64];
    snprintf(want, sizeof want, "%d-byte buffer exceeds the %d-byte", SHM__TAG_META_LEN_MAX + 1,
             SHM__TAG_META_LEN_MAX);
    expect_reject(META, b, SHM__TAG_META_LEN_MAX + 1, want);
    free(b);
}

static void test_root_offset(void **state)
{
    (void)state;
    uint8_t b[SHM_TAG_VALUE_MAX];
    size_t n = good_value(b);
    shm__st32(b, 0);
    expect_reject(VALUE, b, n, "root offset 0 points into the 8-byte header");
    shm__st32(b, 4);
    expect_reject(VALUE, b, n, "root offset 4 points into the 8-byte header");
    shm__st32(b, 84);
    expect_reject(VALUE, b, n, "root offset 84 is outside the 84-byte buffer");
    shm__st32(b, 81);
    expect_reject(VALUE, b, n, "root offset 81 is outside");
    shm__st32(b, UINT32_MAX);
    expect_reject(VALUE, b, n, "root offset 4294967295 is outside");
    shm__st32(b, 38);
    expect_reject(VALUE, b, n, "root table at 38 is not 4-byte aligned");
}

static void test_vtable(void **state)
{
    (void)state;
    uint8_t good[SHM_TAG_VALUE_MAX], b[SHM_TAG_VALUE_MAX];
    size_t n = good_value(good);

    memcpy(b, good, n);
    shm__st32(b + 36, 40); /* vtable at -4 */
    expect_reject(VALUE, b, n, "vtable at -4 (table at 36, soffset 40) is outside");
    shm__st32(b + 36, (uint32_t)INT32_MAX);
    expect_reject(VALUE, b, n, "soffset 2147483647) is outside");
    shm__st32(b + 36, (uint32_t)-46); /* vtable at 82: its 4-byte header would pass 84 */
    expect_reject(VALUE, b, n, "vtable at 82 (table at 36, soffset -46) is outside the 84-byte");
    shm__st32(b + 36, (uint32_t)INT32_MIN);
    expect_reject(VALUE, b, n, "is outside the 84-byte buffer");
    shm__st32(b + 36, 27); /* vtable at 9 */
    expect_reject(VALUE, b, n, "vtable at 9 is not 2-byte aligned");

    memcpy(b, good, n);
    shm__st16(b + 8, 2);
    expect_reject(VALUE, b, n, "vtable length 2 is too short");
    shm__st16(b + 8, 0);
    expect_reject(VALUE, b, n, "vtable length 0 is too short");
    shm__st16(b + 8, 21);
    expect_reject(VALUE, b, n, "vtable length 21 is odd");
    shm__st16(b + 8, SHM__VTABLE_LEN_MAX + 2);
    expect_reject(VALUE, b, n, "vtable length 134 is too big (at most 132: 64 fields)");
    shm__st16(b + 8, UINT16_MAX - 1);
    expect_reject(VALUE, b, n, "vtable length 65534 is too big");
    shm__st16(b + 8, 78); /* within the limit, but 8 + 78 > 84 */
    expect_reject(VALUE, b, n, "vtable at 8 of 78 bytes runs past the end of the 84-byte buffer");
    /* the largest allowed vtable is fine when the buffer holds it */
    uint8_t big[8 + SHM__VTABLE_LEN_MAX + 8] = {0};
    shm__st32(big, 8 + SHM__VTABLE_LEN_MAX);
    memcpy(big + 4, "SHMV", 4);
    shm__st16(big + 8, SHM__VTABLE_LEN_MAX);
    shm__st16(big + 10, 4);
    shm__st32(big + 8 + SHM__VTABLE_LEN_MAX, SHM__VTABLE_LEN_MAX);
    assert_int_equal(decode_exact(VALUE, big, 8 + SHM__VTABLE_LEN_MAX + 4), 0);
}

static void test_table_and_fields(void **state)
{
    (void)state;
    uint8_t good[SHM_TAG_VALUE_MAX], b[SHM_TAG_VALUE_MAX];
    size_t n = good_value(good);

    memcpy(b, good, n);
    shm__st16(b + 10, 3);
    expect_reject(VALUE, b, n, "table size 3 is smaller than its 4-byte soffset");
    shm__st16(b + 10, 49);
    expect_reject(VALUE, b, n, "table at 36 of 49 bytes runs past the end");

    memcpy(b, good, n);
    shm__st16(b + 12, 2); /* sequence inside the soffset */
    expect_reject(VALUE, b, n, "TagValue.sequence: field offset 2 overlaps the table's soffset");
    memcpy(b, good, n);
    shm__st16(b + 12, 44); /* sequence at table+44: 8 bytes past a 48-byte table */
    expect_reject(VALUE, b, n,
                  "TagValue.sequence: field at table offset 44 (8 bytes) lies outside");
    memcpy(b, good, n);
    shm__st16(b + 12 + 2 * 8, 48); /* flags just past the table */
    expect_reject(VALUE, b, n, "TagValue.flags: field at table offset 48 (2 bytes) lies outside");
    memcpy(b, good, n);
    shm__st16(b + 12 + 2 * 2, 38); /* device_id at 74 */
    expect_reject(VALUE, b, n, "TagValue.device_id: field at 74 is not 4-byte aligned");
    memcpy(b, good, n);
    shm__st16(b + 12 + 2 * 4, 16); /* value at 52 */
    expect_reject(VALUE, b, n, "TagValue.value: field at 52 is not 8-byte aligned");
    memcpy(b, good, n);
    shm__st16(b + 12 + 2 * 8, 47); /* flags at 83 */
    expect_reject(VALUE, b, n, "TagValue.flags: field at table offset 47 (2 bytes) lies outside");
}

/* Positions in the TagMeta libshm builds (record_meta.c). */
enum { M_NAME_SLOT = 64, M_DEVICE_SLOT = 68, M_UNIT_SLOT = 72, M_STRINGS = 80 };

static void test_strings(void **state)
{
    (void)state;
    uint8_t good[SHM_CATALOG_ENTRY_MAX], b[SHM_CATALOG_ENTRY_MAX];
    size_t n = good_meta(good);
    /* name "tank.level" (10) at 80..95, device "plc" at 96..103, unit "m" at 104..109 */
    assert_int_equal(n, 110);

    memcpy(b, good, n);
    shm__st32(b + M_NAME_SLOT, 0);
    expect_reject(META, b, n, "TagMeta.name: string offset is 0");
    shm__st32(b + M_NAME_SLOT, (uint32_t)n);
    expect_reject(META, b, n, "TagMeta.name: string at 174 (offset 110 from 64) is outside");
    shm__st32(b + M_NAME_SLOT, UINT32_MAX);
    expect_reject(META, b, n, "TagMeta.name: string at 4294967359 (offset 4294967295");
    shm__st32(b + M_NAME_SLOT, 18);
    expect_reject(META, b, n, "TagMeta.name: string at 82 is not 4-byte aligned");

    memcpy(b, good, n);
    shm__st32(b + M_STRINGS, SHM__META_STRING_MAX + 1);
    expect_reject(META, b, n, "TagMeta.name: string of 256 bytes is longer than 255");
    shm__st32(b + M_STRINGS, UINT32_MAX);
    expect_reject(META, b, n, "TagMeta.name: string of 4294967295 bytes is longer than 255");
    shm__st32(b + M_STRINGS, 200);
    expect_reject(META, b, n, "TagMeta.name: string of 200 bytes at 80 runs past the end");
    shm__st32(b + M_STRINGS, 12); /* its NUL would be device's length byte */
    expect_reject(META, b, n, "TagMeta.name: string at 80 is not NUL-terminated");
    shm__st32(b + M_STRINGS, 10);
    b[M_STRINGS + 4 + 4] = '\0';
    expect_reject(META, b, n, "TagMeta.name: string contains a NUL byte at index 4");
    b[M_STRINGS + 4 + 4] = 0xc0;
    expect_reject(META, b, n, "TagMeta.name: string is not valid UTF-8");

    memcpy(b, good, n);
    b[n - 1] = 'x'; /* unit's NUL overwritten: the last byte */
    expect_reject(META, b, n, "TagMeta.unit: string at 104 is not NUL-terminated");
    memcpy(b, good, n);
    shm__st16(b + 12 + 2 * 3, 30); /* device's uoffset slot at table+30: not 4-aligned */
    expect_reject(META, b, n, "TagMeta.device: field at 66 is not 4-byte aligned");
    memcpy(b, good, n);
    shm__st16(b + 12 + 2 * 4, 42); /* unit's uoffset past the 44-byte table */
    expect_reject(META, b, n, "TagMeta.unit: field at table offset 42 (4 bytes) lies outside");
    memcpy(b, good, n);
    shm__st16(b + 12 + 2 * 7, 24); /* scale over device_id: not 8-aligned */
    expect_reject(META, b, n, "TagMeta.scale: field at 60 is not 8-byte aligned");
}

/* Records cannot nest: our tables hold scalars and strings only, and fields
 * a reader does not know are never followed. A vtable that claims unknown
 * fields with absurd offsets, or a table whose unknown field holds an offset
 * back to itself (a cycle, the nesting attack on recursive verifiers), is read
 * for its known fields in constant time. */
static void test_nesting_not_followed(void **state)
{
    (void)state;
    uint8_t b[SHM_TAG_VALUE_MAX];
    size_t n = good_value(b);
    /* grow the vtable over the padding to 12 fields (8..36): the new ones
     * point at the table's own sequence, far outside, into the soffset */
    shm__st16(b + 8, 4 + 2 * 12);
    shm__st16(b + 30, 4);      /* field 9 */
    shm__st16(b + 32, 0xffff); /* field 10 */
    shm__st16(b + 34, 1);      /* field 11 */
    assert_int_equal(decode_exact(VALUE, b, n), 0);
    shm_tag_value v;
    assert_int_equal(shm_tag_value_decode(b, n, &v), 0);
    assert_int_equal(v.sequence, 7);
    assert_int_equal(v.quality, SHM_Q_STALE);
}

/* Every single-byte corruption of both kinds, with every byte value: each
 * result is an accepted record or a rejection with a diagnostic; the fast and
 * generic TagValue paths agree; nothing reads out of bounds (ASan). */
static void test_single_byte_sweep(void **state)
{
    (void)state;
    for (int k = VALUE; k <= META; k++) {
        uint8_t good[SHM_CATALOG_ENTRY_MAX], b[SHM_CATALOG_ENTRY_MAX];
        size_t n = k == VALUE ? good_value(good) : good_meta(good);
        unsigned accepted = 0, rejected = 0;
        for (size_t pos = 0; pos < n; pos++) {
            for (unsigned byte = 0; byte < 256; byte++) {
                memcpy(b, good, n);
                b[pos] = (uint8_t)byte;
                int rc = decode_exact((enum kind)k, b, n);
                if (rc == 0) {
                    accepted++;
                } else {
                    assert_int_equal(rc, SHM_EBADRECORD);
                    assert_true(strncmp(shm_last_error(), k == VALUE ? "TagValue" : "TagMeta", 7) ==
                                0);
                    rejected++;
                }
            }
        }
        /* both outcomes happen: field bytes are free, structure bytes are not */
        assert_true(accepted > 0);
        assert_true(rejected > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_identifier),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_root_offset),
        cmocka_unit_test(test_vtable),
        cmocka_unit_test(test_table_and_fields),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_nesting_not_followed),
        cmocka_unit_test(test_single_byte_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

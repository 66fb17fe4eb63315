/*
 * t_export_units.c — the parts of shmbus-export that need no server: the
 * spool file (round trip, torn tail, damaged block, damaged header, lock,
 * size limit, crash between truncate and header), CRC-32C, backoff bounds,
 * the binary COPY encoding, MQTT topics and payloads, password files.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

#include "export.h"
#include "mqtt_internal.h"
#include "pg_internal.h"
#include "shmtest.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static export_row row(uint64_t seq)
{
    return (export_row){.seq = seq,
                        .time_ns = (int64_t)seq * 1000,
                        .tag_id = (uint32_t)(seq % 7),
                        .device_id = 1,
                        .value = (double)seq / 4,
                        .raw = (int64_t)seq,
                        .quality = SHM_Q_GOOD};
}

static const char *spool_file(char *buf, size_t len)
{
    char dir[256];
    shmtest_tmpdir(dir, sizeof dir);
    snprintf(buf, len, "%s/postgres-t.spool", dir);
    return buf;
}

static void append_rows(export_spool *s, uint64_t first, size_t n)
{
    export_row rows[64];
    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++)
        rows[i] = row(first + i);
    assert_int_equal(export_spool_append(s, rows, n, 1ull << 30), 0);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* ------------------------------------------------------------------ CRC */

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(export_crc32c(0, "123456789", 9), 0xE3069283u);
    /* Incremental equals one shot. */
    uint32_t c = export_crc32c(0, "1234", 4);
    assert_int_equal(export_crc32c(c, "56789", 5), 0xE3069283u);
    assert_int_equal(export_crc32c(0, "", 0), 0);
}

/* ---------------------------------------------------------------- spool */

static void test_spool_round_trip(void **state)
{
    (void)state;
    char path[512];
    spool_file(path, sizeof path);
    char reason[EXPORT_REASON_MAX];
    export_spool *s;
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    assert_string_equal(reason, "");
    assert_int_equal(export_spool_pending_bytes(s), 0);
    append_rows(s, 100, 10);
    append_rows(s, 110, 20);
    append_rows(s, 130, 5);
    uint64_t pending = export_spool_pending_bytes(s);
    assert_int_equal(pending, 3 * 24 + 35 * sizeof(export_row));
    export_spool_close(&s);
    assert_null(s);

    /* Reopened: same pending data; peek takes whole blocks up to the limit. */
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    assert_int_equal(export_spool_pending_bytes(s), pending);
    export_batch b = {0};
    assert_int_equal(export_spool_peek(s, &b, 25), 10); /* 10 + 20 > 25: one block */
    assert_true(b.may_repeat);
    assert_int_equal(b.rows[0].seq, 100);
    export_row want = row(109);
    assert_memory_equal(&b.rows[9], &want, sizeof want);
    /* Not consumed: a second peek returns the same rows. */
    assert_int_equal(export_spool_peek(s, &b, 25), 10);
    assert_int_equal(export_spool_consume(s), 0);
    assert_int_equal(export_spool_peek(s, &b, 1000), 25);
    assert_int_equal(b.rows[0].seq, 110);
    assert_int_equal(b.rows[24].seq, 134);
    export_spool_close(&s);

    /* The read position survived the close: only 25 rows left. */
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    assert_int_equal(export_spool_peek(s, &b, 1000), 25);
    assert_int_equal(export_spool_consume(s), 0);
    assert_int_equal(export_spool_pending_bytes(s), 0);
    assert_int_equal(export_spool_peek(s, &b, 1000), 0);
    assert_int_equal(file_size(path), 64); /* emptied back to its header */
    export_spool_close(&s);
    export_batch_free(&b);
}

static void test_spool_torn_tail(void **state)
{
    (void)state;
    char path[512], reason[EXPORT_REASON_MAX];
    spool_file(path, sizeof path);
    export_spool *s;
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    append_rows(s, 1, 8);
    append_rows(s, 9, 8);
    export_spool_close(&s);
    /* A crash in the middle of the second append. */
    off_t full = file_size(path);
    assert_int_equal(truncate(path, full - 17), 0);
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    assert_non_null(strstr(reason, "torn or damaged tail"));
    assert_int_equal(export_spool_pending_bytes(s), 24 + 8 * sizeof(export_row));
    export_batch b = {0};
    assert_int_equal(export_spool_peek(s, &b, 100), 8);
    assert_int_equal(b.rows[7].seq, 8);
    /* New blocks go after the last good one. */
    append_rows(s, 50, 2);
    assert_int_equal(export_spool_peek(s, &b, 100), 10);
    assert_int_equal(b.rows[9].seq, 51);
    export_spool_close(&s);
    export_batch_free(&b);
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

static void test_spool_damaged_block(void **state)
{
    (void)state;
    char path[512], reason[EXPORT_REASON_MAX];
    spool_file(path, sizeof path);
    export_spool *s;
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    append_rows(s, 1, 4);
    append_rows(s, 5, 4);
    append_rows(s, 9, 4);
    export_spool_close(&s);
    /* One bit of the second block's rows rots: it and everything after go. */
    off_t second = 64 + 24 + 4 * (off_t)sizeof(export_row);
    flip_byte(path, second + 24 + 5);
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    assert_non_null(strstr(reason, "torn or damaged tail at byte"));
    export_batch b = {0};
    assert_int_equal(export_spool_peek(s, &b, 100), 4);
    assert_int_equal(file_size(path), second);
    export_spool_close(&s);
    export_batch_free(&b);
}

static void test_spool_bad_header_and_lock(void **state)
{
    (void)state;
    char path[512], reason[EXPORT_REASON_MAX];
    spool_file(path, sizeof path);
    export_spool *s, *s2;
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    /* A second opener (another process, or a second descriptor) is refused. */
    assert_int_equal(export_spool_open(path, &s2, reason, sizeof reason), -EWOULDBLOCK);
    assert_non_null(strstr(reason, "held by another process"));
    append_rows(s, 1, 3);
    export_spool_close(&s);
    flip_byte(path, 20); /* inside the header: its CRC no longer matches */
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), EXPORT_ECORRUPT);
    assert_non_null(strstr(reason, "not a shmbus spool"));

    /* Not a spool at all. */
    int fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    char junk[100];
    memset(junk, 'x', sizeof junk);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t)sizeof junk);
    close(fd);
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), EXPORT_ECORRUPT);
}

static void test_spool_limit_and_interrupted_empty(void **state)
{
    (void)state;
    char path[512], reason[EXPORT_REASON_MAX];
    spool_file(path, sizeof path);
    export_spool *s;
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    export_row rows[10];
    for (int i = 0; i < 10; i++)
        rows[i] = row((uint64_t)i);
    size_t block = 24 + 10 * sizeof(export_row);
    assert_int_equal(export_spool_append(s, rows, 10, block), 0);
    assert_int_equal(export_spool_append(s, rows, 10, block + block - 1), -ENOSPC);
    assert_int_equal(export_spool_pending_bytes(s), block);
    export_spool_close(&s);

    /* A crash while emptying: the file was truncated to its header, but the
     * header still holds the read offset of an earlier partial replay,
     * which now points past the end. That means "all delivered", never
     * "corrupt". */
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    append_rows(s, 20, 10);
    export_batch b = {0};
    assert_int_equal(export_spool_peek(s, &b, 10), 10); /* the first block only */
    assert_int_equal(export_spool_consume(s), 0);      /* header: read offset 64 + block */
    export_spool_close(&s);
    assert_int_equal(truncate(path, 64), 0);
    assert_int_equal(export_spool_open(path, &s, reason, sizeof reason), 0);
    assert_string_equal(reason, "");
    assert_int_equal(export_spool_pending_bytes(s), 0);
    assert_int_equal(export_spool_peek(s, &b, 100), 0);
    append_rows(s, 40, 3); /* and it works on from there */
    assert_int_equal(export_spool_peek(s, &b, 100), 3);
    assert_int_equal(b.rows[0].seq, 40);
    export_spool_close(&s);
    export_batch_free(&b);
}

/* -------------------------------------------------------------- backoff */

static void test_backoff(void **state)
{
    (void)state;
    export_backoff b;
    export_backoff_init(&b, 100, 1000, 42);
    uint32_t caps[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        uint32_t d = export_backoff_next(&b);
        assert_true(d >= 50 && d <= caps[i]);
    }
    /* Jitter: many draws at the cap are not all the same. */
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int i = 0; i < 200; i++) {
        uint32_t d = export_backoff_next(&b);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo >= 50 && hi <= 1000 && hi - lo > 400);
    export_backoff_reset(&b);
    assert_true(export_backoff_next(&b) <= 100);
}

/* ------------------------------------------------------------ pg COPY */

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void test_pg_copy(void **state)
{
    (void)state;
    assert_int_equal(pg_timestamp_us(946684800000000000LL), 0); /* 2000-01-01 */
    assert_int_equal(pg_timestamp_us(946684800000001999LL), 1);
    assert_int_equal(pg_timestamp_us(-1), -946684800000000LL - 1); /* floor */
    export_row r = row(12345);
    r.value = -2.5;
    r.exception_code = 3;
    unsigned char buf[256];
    assert_int_equal(pg_copy_size(1), 19 + 78 + 2);
    pg_copy_encode(&r, 1, 7, (char *)buf);
    assert_memory_equal(buf, "PGCOPY\n\377\r\n\0", 11);
    const unsigned char *p = buf + 19;
    assert_int_equal(p[0] << 8 | p[1], 8); /* fields */
    p += 2;
    assert_int_equal(get64(p + 4), (uint64_t)pg_timestamp_us(r.time_ns));
    p += 12;
    assert_int_equal(p[7], 7); /* source id */
    p += 8;
    assert_int_equal(p[7], 12345 % 7); /* tag id */
    p += 8;
    double v;
    uint64_t bits = get64(p + 4);
    memcpy(&v, &bits, 8);
    assert_true(v == -2.5);
    p += 12 + 12; /* value, raw */
    assert_int_equal(p[5], SHM_Q_GOOD);
    assert_int_equal(p[6 + 5], 3); /* exception */
    p += 12;
    assert_int_equal(get64(p + 4), 12345);
    p += 12;
    assert_int_equal(p[0], 0xff);
    assert_int_equal(p[1], 0xff);
    assert_int_equal(p + 2 - buf, (long)pg_copy_size(1));
}

/* ------------------------------------------------------------ MQTT text */

static void test_mqtt_format(void **state)
{
    (void)state;
    export_tag tag = {.known = true, .data_type = "FLOAT32"};
    snprintf(tag.name, sizeof tag.name, "flow/rate+#");
    snprintf(tag.device, sizeof tag.device, "plc 1");
    snprintf(tag.unit, sizeof tag.unit, "m\"3/h");
    export_row r = row(1);
    r.time_ns = 1795000000123456789LL;
    r.value = 0.1;
    r.seq = 18446744073709551615ull;
    char topic[MQTT_TOPIC_MAX], payload[MQTT_PAYLOAD_MAX];
    assert_true(mqtt_format_topic("plant/gw1", &r, &tag, topic, sizeof topic) > 0);
    assert_string_equal(topic, "plant/gw1/plc 1/flow_rate__");
    assert_true(mqtt_format_payload(&r, &tag, payload, sizeof payload) > 0);
    assert_string_equal(payload, "{\"time\":\"2026-11-18T11:06:40.123456Z\",\"value\":0.1,"
                                 "\"quality\":\"GOOD\",\"unit\":\"m\\\"3/h\","
                                 "\"seq\":18446744073709551615}");
    r.value = NAN;
    r.quality = SHM_Q_DEVICE_EXCEPTION;
    r.exception_code = 2;
    r.seq = 5;
    assert_true(mqtt_format_payload(&r, &tag, payload, sizeof payload) > 0);
    assert_non_null(strstr(payload, "\"value\":null,\"quality\":\"DEVICE_EXCEPTION\""));
    assert_non_null(strstr(payload, "\"seq\":5,\"exception\":2}"));
    r.value = 1.0 / 3.0;
    mqtt_format_payload(&r, &tag, payload, sizeof payload);
    assert_non_null(strstr(payload, "\"value\":0.3333333333333333,")); /* reads back exactly */

    export_tag unknown = {.data_type = "unknown"};
    r.device_id = 4;
    r.tag_id = 77;
    mqtt_format_topic("p", &r, &unknown, topic, sizeof topic);
    assert_string_equal(topic, "p/device4/tag77");
    char t[40];
    mqtt_format_time(-1, t, sizeof t); /* one ns before the epoch */
    assert_string_equal(t, "1969-12-31T23:59:59.999999Z");
    /* A topic that does not fit is refused, not cut. */
    assert_int_equal(mqtt_format_topic("p", &r, &unknown, topic, 8), -1);
}

/* -------------------------------------------------------------- secrets */

static void test_secret(void **state)
{
    (void)state;
    char dir[256], path[512], out[64], reason[EXPORT_REASON_MAX];
    shmtest_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/pw", dir);
    FILE *f = fopen(path, "w");
    fputs("hunter2\r\nsecond line\n", f);
    fclose(f);
    chmod(path, 0600);
    bool insecure = true;
    assert_int_equal(export_read_secret(path, out, sizeof out, &insecure, reason, sizeof reason), 0);
    assert_string_equal(out, "hunter2");
    assert_false(insecure);
    chmod(path, 0644);
    assert_int_equal(export_read_secret(path, out, sizeof out, &insecure, reason, sizeof reason), 0);
    assert_true(insecure);
    f = fopen(path, "w");
    fputs("\n", f);
    fclose(f);
    assert_int_equal(export_read_secret(path, out, sizeof out, &insecure, reason, sizeof reason),
                     -EINVAL);
    assert_non_null(strstr(reason, "empty first line"));
    snprintf(path, sizeof path, "%s/missing", dir);
    assert_int_equal(export_read_secret(path, out, sizeof out, &insecure, reason, sizeof reason),
                     -ENOENT);
    assert_non_null(strstr(reason, "No such file"));
    export_wipe(out, sizeof out);
    assert_int_equal(out[0], 0);
    assert_string_equal(export_strerror(EXPORT_EDOWN), "target unavailable");
    assert_string_equal(export_strerror(-ENOSPC), strerror(ENOSPC));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_spool_round_trip),
        cmocka_unit_test(test_spool_torn_tail),
        cmocka_unit_test(test_spool_damaged_block),
        cmocka_unit_test(test_spool_bad_header_and_lock),
        cmocka_unit_test(test_spool_limit_and_interrupted_empty),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_pg_copy),
        cmocka_unit_test(test_mqtt_format),
        cmocka_unit_test(test_secret),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * t_poller_units.c — unit tests of the poller's pure parts: the request
 * planner, the register codec for every type and byte order, shmbus-sim's
 * generators, RTU framing and CRC, reconnect backoff and circuit breaker,
 * and the controller's message parser.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"
#include "control.h"
#include "health.h"
#include "plan.h"
#include "rtu_frame.h"
#include "simgen.h"
#include "tagcodec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char err[8192];

static config *load(const char *yaml)
{
    config *cfg = NULL;
    if (config_load_string(yaml, strlen(yaml), "t.yaml", &cfg, err, sizeof err) != 0)
        fail_msg("config: %s", err);
    return cfg;
}

#define HDR(extra)                                                                       \
    "devices:\n  - name: d\n    host: 127.0.0.1\n    address_base: 0\n" extra            \
    "    poll_groups: [{name: fast, interval_ms: 100}, {name: slow, interval_ms: 1000}]\n" \
    "    tags:\n"

/* ---------------------------------------------------------------- planner */

static void test_plan_merges_and_splits(void **state)
{
    (void)state;
    config *cfg = load(HDR("    max_gap: 3\n")
                       "      - {name: a, register: holding, address: 0}\n"
                       "      - {name: b, register: holding, address: 1, type: float32}\n"
                       "      - {name: c, register: holding, address: 6}\n"   /* gap 3: merged */
                       "      - {name: e, register: holding, address: 11}\n"  /* gap 4: split */
                       "      - {name: f, register: input, address: 1}\n"     /* other fc */
                       "      - {name: g, register: holding, address: 2, unit_id: 2}\n"
                       "      - {name: h, register: holding, address: 7, poll_group: slow}\n"
                       "      - {name: i, register: coil, address: 0}\n"
                       "      - {name: j, register: coil, address: 3}\n"
                       "      - {name: k, register: holding, address: 20, type: bit, bit: 1}\n"
                       "      - {name: l, register: holding, address: 20, type: bit, bit: 7}\n");
    plan p;
    assert_int_equal(plan_build(&cfg->devices[0], &p), 0);
    /* fast: unit1 fc1 [0..3]; unit1 fc3 [0..6]; [11..11]... wait: 20 too far
     * from 11 (gap 8), so [20]; unit1 fc4 [1]; unit2 fc3 [2]. slow: [7]. */
    assert_int_equal(p.n_requests, 7);
    const plan_request *r = p.requests;
    assert_int_equal(r[0].group, 0);
    assert_int_equal(r[0].unit_id, 1);
    assert_int_equal(r[0].fc, 1);
    assert_int_equal(r[0].address, 0);
    assert_int_equal(r[0].count, 4);
    assert_int_equal(r[0].n_items, 2);
    assert_int_equal(r[1].fc, 3);
    assert_int_equal(r[1].address, 0);
    assert_int_equal(r[1].count, 7);
    assert_int_equal(r[1].n_items, 3);
    assert_int_equal(p.items[r[1].first_item + 1].offset, 1); /* b */
    assert_int_equal(p.items[r[1].first_item + 2].offset, 6); /* c */
    assert_int_equal(r[2].address, 11);
    assert_int_equal(r[2].count, 1);
    assert_int_equal(r[3].address, 20); /* both bit tags, one register */
    assert_int_equal(r[3].count, 1);
    assert_int_equal(r[3].n_items, 2);
    assert_int_equal(r[4].fc, 4);
    assert_int_equal(r[5].unit_id, 2);
    assert_int_equal(r[6].group, 1);
    assert_int_equal(r[6].address, 7);
    assert_int_equal(p.group_first[0], 0);
    assert_int_equal(p.group_count[0], 6);
    assert_int_equal(p.group_first[1], 6);
    assert_int_equal(p.group_count[1], 1);
    assert_int_equal(p.registers_read, 7 + 1 + 1 + 1 + 1 + 1);
    /* every tag appears exactly once */
    int seen[16] = {0};
    for (size_t i = 0; i < p.n_items; i++)
        seen[p.items[i].tag]++;
    for (size_t i = 0; i < cfg->devices[0].n_tags; i++)
        assert_int_equal(seen[i], 1);
    plan_free(&p);
    config_free(&cfg);
}

static void test_plan_limits(void **state)
{
    (void)state;
    /* 130 consecutive registers: 125 + 5. 2100 coils: 2000 + 100. */
    char yaml[400000];
    int n = snprintf(yaml, sizeof yaml, HDR(""));
    for (int i = 0; i < 130; i++)
        n += snprintf(yaml + n, sizeof yaml - (size_t)n,
                      "      - {name: r%d, register: holding, address: %d}\n", i, i);
    for (int i = 0; i < 2100; i++)
        n += snprintf(yaml + n, sizeof yaml - (size_t)n,
                      "      - {name: c%d, register: coil, address: %d}\n", i, i);
    config *cfg = load(yaml);
    plan p;
    assert_int_equal(plan_build(&cfg->devices[0], &p), 0);
    assert_int_equal(p.n_requests, 4);
    assert_int_equal(p.requests[0].fc, 1);
    assert_int_equal(p.requests[0].count, 2000);
    assert_int_equal(p.requests[1].count, 100);
    assert_int_equal(p.requests[1].address, 2000);
    assert_int_equal(p.requests[2].count, 125);
    assert_int_equal(p.requests[3].count, 5);
    assert_int_equal(p.requests[3].address, 125);
    plan_free(&p);
    config_free(&cfg);

    /* A per-device cap, and a 32-bit tag that would straddle it. */
    cfg = load(HDR("    max_registers: 10\n    max_bits: 8\n    max_gap: 10\n")
               "      - {name: a, register: holding, address: 0, type: uint64}\n"
               "      - {name: b, register: holding, address: 4, type: uint32}\n"
               "      - {name: c, register: holding, address: 6, type: uint64}\n"
               "      - {name: d, register: holding, address: 10}\n"
               "      - {name: e, register: coil, address: 0}\n"
               "      - {name: f, register: coil, address: 7}\n"
               "      - {name: g, register: coil, address: 8}\n");
    assert_int_equal(plan_build(&cfg->devices[0], &p), 0);
    assert_int_equal(p.n_requests, 4);
    assert_int_equal(p.requests[0].count, 8); /* coils 0..7 */
    assert_int_equal(p.requests[1].address, 8);
    assert_int_equal(p.requests[2].count, 10); /* a b c = 0..9 */
    assert_int_equal(p.requests[3].address, 10);
    plan_free(&p);
    config_free(&cfg);
}

static void test_plan_single_request(void **state)
{
    (void)state;
    config *cfg = load(HDR("    single_request: true\n    max_gap: 10\n")
                       "      - {name: a, register: holding, address: 0}\n"
                       "      - {name: b, register: holding, address: 1, type: int32}\n"
                       "      - {name: c, register: holding, address: 3}\n");
    plan p;
    assert_int_equal(plan_build(&cfg->devices[0], &p), 0);
    assert_int_equal(p.n_requests, 3);
    assert_int_equal(p.requests[1].address, 1);
    assert_int_equal(p.requests[1].count, 2);
    plan_free(&p);
    config_free(&cfg);
    cfg = load(HDR("") "      - {name: a, register: input, address: 65532, type: float64}\n");
    assert_int_equal(plan_build(&cfg->devices[0], &p), 0);
    assert_int_equal(p.n_requests, 1);
    assert_int_equal(p.requests[0].address, 65532);
    assert_int_equal(p.requests[0].count, 4);
    plan_free(&p);
    config_free(&cfg);
    /* a device with no tags plans nothing */
    cfg = load("devices:\n  - name: d\n    host: h\n    address_base: 0\n");
    assert_int_equal(plan_build(&cfg->devices[0], &p), 0);
    assert_int_equal(p.n_requests, 0);
    plan_free(&p);
    config_free(&cfg);
}

/* ------------------------------------------------------------------ codec */

static config_tag make_tag(int type, const char *order)
{
    config_tag t;
    memset(&t, 0, sizeof t);
    t.type = (uint8_t)type;
    t.reg = CONFIG_REG_HOLDING;
    t.scale = 1;
    t.registers = (uint16_t)(config_type_registers(type) ? config_type_registers(type) : 1);
    if (order) {
        snprintf(t.order, sizeof t.order, "%s", order);
        assert_int_equal(config_parse_order(order, (unsigned)strlen(order), t.order_map), 0);
    }
    return t;
}

static void expect_regs(const uint16_t *got, const uint16_t *want, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("register %u: got 0x%04x, want 0x%04x", i, got[i], want[i]);
}

static void test_codec_orders(void **state)
{
    (void)state;
    const struct {
        const char *order;
        uint16_t regs[2];
    } f32[] = {{"ABCD", {0x3f80, 0x0000}},
               {"CDAB", {0x0000, 0x3f80}},
               {"BADC", {0x803f, 0x0000}},
               {"DCBA", {0x0000, 0x803f}}};
    for (size_t i = 0; i < 4; i++) {
        config_tag t = make_tag(CONFIG_T_FLOAT32, f32[i].order);
        uint16_t regs[2] = {0};
        tagcodec_encode_registers(&t, 1.0, regs);
        expect_regs(regs, f32[i].regs, 2);
        double v;
        int64_t raw;
        assert_int_equal(tagcodec_decode_registers(&t, f32[i].regs, &v, &raw), TAGCODEC_OK);
        assert_true(v == 1.0);
        assert_int_equal(raw, 0x3f800000);
    }
    const struct {
        const char *order;
        uint16_t regs[4];
    } u64[] = {{"ABCDEFGH", {0x0102, 0x0304, 0x0506, 0x0708}},
               {"HGFEDCBA", {0x0807, 0x0605, 0x0403, 0x0201}},
               {"BADCFEHG", {0x0201, 0x0403, 0x0605, 0x0807}},
               {"GHEFCDAB", {0x0708, 0x0506, 0x0304, 0x0102}}};
    for (size_t i = 0; i < 4; i++) {
        config_tag t = make_tag(CONFIG_T_UINT64, u64[i].order);
        double v;
        int64_t raw;
        assert_int_equal(tagcodec_decode_registers(&t, u64[i].regs, &v, &raw), TAGCODEC_OK);
        assert_true(raw == 0x0102030405060708LL);
        assert_true(v == (double)0x0102030405060708ULL);
        /* Encoding goes through a double: use a value it holds exactly. */
        uint16_t regs[4] = {0};
        tagcodec_encode_registers(&t, (double)0x0001020304050607ULL, regs);
        assert_int_equal(tagcodec_decode_registers(&t, regs, &v, &raw), TAGCODEC_OK);
        assert_true(raw == 0x0001020304050607LL);
    }
    /* int16 and int32 signs, uint32 word swap. */
    config_tag t16 = make_tag(CONFIG_T_INT16, "AB");
    uint16_t r16 = 0xfffe;
    double v;
    int64_t raw;
    tagcodec_decode_registers(&t16, &r16, &v, &raw);
    assert_true(v == -2.0 && raw == -2);
    config_tag t16ba = make_tag(CONFIG_T_UINT16, "BA");
    r16 = 0x3412;
    tagcodec_decode_registers(&t16ba, &r16, &v, &raw);
    assert_int_equal(raw, 0x1234);
    config_tag t32 = make_tag(CONFIG_T_INT32, "CDAB");
    uint16_t r32[2] = {0xfffe, 0xffff};
    tagcodec_decode_registers(&t32, r32, &v, &raw);
    assert_true(v == -2.0);
    config_tag u32 = make_tag(CONFIG_T_UINT32, "ABCD");
    uint16_t ru32[2] = {0xffff, 0xfffe};
    tagcodec_decode_registers(&u32, ru32, &v, &raw);
    assert_true(v == 4294967294.0 && raw == 4294967294LL);
    config_tag i64 = make_tag(CONFIG_T_INT64, "ABCDEFGH");
    uint16_t ri64[4] = {0xffff, 0xffff, 0xffff, 0xff85};
    tagcodec_decode_registers(&i64, ri64, &v, &raw);
    assert_true(v == -123.0 && raw == -123);
    config_tag f64 = make_tag(CONFIG_T_FLOAT64, "ABCDEFGH");
    uint16_t rf64[4];
    tagcodec_encode_registers(&f64, -2.5e-300, rf64);
    tagcodec_decode_registers(&f64, rf64, &v, &raw);
    assert_true(v == -2.5e-300);
}

static void test_codec_scaling_and_failures(void **state)
{
    (void)state;
    config_tag t = make_tag(CONFIG_T_INT16, "AB");
    t.scale = 0.1;
    t.offset = -40;
    uint16_t reg = 0;
    tagcodec_encode_registers(&t, 21.5, &reg); /* (21.5 + 40) / 0.1 = 615 */
    assert_int_equal(reg, 615);
    double v;
    int64_t raw;
    tagcodec_decode_registers(&t, &reg, &v, &raw);
    assert_int_equal(raw, 615);
    assert_true(fabs(v - 21.5) < 1e-12);
    /* Clamping to the type. */
    config_tag u16 = make_tag(CONFIG_T_UINT16, "AB");
    tagcodec_encode_registers(&u16, -5, &reg);
    assert_int_equal(reg, 0);
    tagcodec_encode_registers(&u16, 1e9, &reg);
    assert_int_equal(reg, 65535);
    /* NaN and infinity decode as errors, keeping the bits. */
    config_tag f = make_tag(CONFIG_T_FLOAT32, "ABCD");
    uint16_t nan_regs[2] = {0x7fc0, 0x0000};
    assert_int_equal(tagcodec_decode_registers(&f, nan_regs, &v, &raw), TAGCODEC_ENONFINITE);
    assert_true(isnan(v));
    assert_int_equal(raw, 0x7fc00000);
    uint16_t inf_regs[2] = {0xff80, 0x0000};
    assert_int_equal(tagcodec_decode_registers(&f, inf_regs, &v, &raw), TAGCODEC_ENONFINITE);
    /* Bits and bools. */
    config_tag bit = make_tag(CONFIG_T_BIT, NULL);
    bit.bit = 9;
    reg = 0x0200;
    tagcodec_decode_registers(&bit, &reg, &v, &raw);
    assert_true(v == 1.0 && raw == 1);
    reg = 0xfdff;
    tagcodec_decode_registers(&bit, &reg, &v, &raw);
    assert_true(v == 0.0);
    tagcodec_encode_registers(&bit, 1, &reg);
    assert_int_equal(reg, 0xffff);
    config_tag b = make_tag(CONFIG_T_BOOL, NULL);
    reg = 7;
    tagcodec_decode_registers(&b, &reg, &v, &raw);
    assert_true(v == 1.0);
    tagcodec_decode_bit(&b, 1, &v, &raw);
    assert_true(v == 1.0 && raw == 1);
    /* Strings. */
    config_tag s = make_tag(CONFIG_T_STRING, "AB");
    s.registers = 3;
    uint16_t text[3];
    tagcodec_encode_text(&s, "PUMP1", text);
    assert_int_equal(text[0], ('P' << 8) | 'U');
    assert_int_equal(text[2], ('1' << 8));
    assert_int_equal(tagcodec_decode_registers(&s, text, &v, &raw), TAGCODEC_OK);
    assert_true(v == 5.0);
    char back[9] = {0};
    memcpy(back, &raw, 8); /* little-endian host: first character in the low byte */
    assert_string_equal(back, "PUMP1");
    s.order[0] = 'B';
    tagcodec_encode_text(&s, "PUMP1", text);
    assert_int_equal(text[0], ('U' << 8) | 'P');
    assert_int_equal(tagcodec_decode_registers(&s, text, &v, &raw), TAGCODEC_OK);
    memcpy(back, &raw, 8);
    assert_string_equal(back, "PUMP1");
    text[1] = 0x0102;
    assert_int_equal(tagcodec_decode_registers(&s, text, &v, &raw), TAGCODEC_ETEXT);
    assert_string_equal(tagcodec_strerror(TAGCODEC_ETEXT), "string holds non-printable bytes");
}

/* ---------------------------------------------------------------- simgen */

static void test_simgen(void **state)
{
    (void)state;
    config_sim s = {.kind = CONFIG_SIM_RAMP, .min = 10, .max = 20, .period_s = 10};
    assert_true(simgen_value(&s, 1700000002500) == 12.5);
    s.kind = CONFIG_SIM_SINE;
    s.period_s = 4;
    assert_true(fabs(simgen_value(&s, 1700000001000) - 20) < 1e-9); /* quarter period */
    assert_true(fabs(simgen_value(&s, 1700000003000) - 10) < 1e-9);
    s = (config_sim){.kind = CONFIG_SIM_COUNTER, .min = 0, .max = 9, .step = 3};
    assert_true(simgen_value(&s, 1000) == 3);
    assert_true(simgen_value(&s, 4000) == 2); /* 12 mod 10 */
    s = (config_sim){.kind = CONFIG_SIM_TOGGLE, .period_s = 10};
    assert_true(simgen_value(&s, 1700000004999) == 0);
    assert_true(simgen_value(&s, 1700000005000) == 1);
    s = (config_sim){.kind = CONFIG_SIM_CONSTANT, .value = -7.25};
    assert_true(simgen_value(&s, 123) == -7.25);
    s = (config_sim){.kind = CONFIG_SIM_RANDOM_WALK, .min = 0, .max = 10, .step = 1.5,
                     .period_s = 1, .seed = 42};
    double prev = simgen_value(&s, 1700000000000);
    assert_true(prev == 5.0); /* a restart point: mid-range */
    for (int64_t t = 1700000001000; t < 1700000999000; t += 1000) {
        double v = simgen_value(&s, t);
        assert_true(v >= 0 && v <= 10);
        assert_true(fabs(v - prev) <= 1.5 + 1e-12); /* one step, maybe reflected */
        assert_true(v == simgen_value(&s, t + 999)); /* constant within a step */
        prev = v;
    }
    assert_int_equal(simgen_splitmix64(0), 0xe220a8397b1dcdafULL);
}

/* ------------------------------------------------------------------- RTU */

static void test_rtu_frames(void **state)
{
    (void)state;
    uint8_t req[RTU_REQUEST_LEN];
    rtu_build_read(1, 3, 0, 10, req);
    const uint8_t want[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0xc5, 0xcd};
    assert_memory_equal(req, want, sizeof want);

    uint8_t rsp[9] = {0x11, 0x03, 0x04, 0x12, 0x34, 0xab, 0xcd};
    uint16_t crc = rtu_crc16(rsp, 7);
    rsp[7] = (uint8_t)(crc & 0xff);
    rsp[8] = (uint8_t)(crc >> 8);
    assert_int_equal(rtu_response_len(rsp), 9);
    uint16_t regs[2];
    uint8_t bits[16], exc = 0;
    assert_int_equal(rtu_parse_read(rsp, 9, 0x11, 3, 2, regs, bits, &exc), RTU_OK);
    assert_int_equal(regs[0], 0x1234);
    assert_int_equal(regs[1], 0xabcd);
    assert_int_equal(rtu_parse_read(rsp, 9, 0x12, 3, 2, regs, bits, &exc), RTU_BAD_UNIT);
    assert_int_equal(rtu_parse_read(rsp, 9, 0x11, 4, 2, regs, bits, &exc), RTU_BAD_FUNCTION);
    assert_int_equal(rtu_parse_read(rsp, 9, 0x11, 3, 3, regs, bits, &exc), RTU_BAD_LENGTH);
    rsp[4] ^= 1;
    assert_int_equal(rtu_parse_read(rsp, 9, 0x11, 3, 2, regs, bits, &exc), RTU_BAD_CRC);
    assert_int_equal(rtu_parse_read(rsp, 3, 0x11, 3, 2, regs, bits, &exc), RTU_BAD_LENGTH);

    uint8_t ex[5] = {0x11, 0x83, 0x02};
    crc = rtu_crc16(ex, 3);
    ex[3] = (uint8_t)(crc & 0xff);
    ex[4] = (uint8_t)(crc >> 8);
    assert_int_equal(rtu_response_len(ex), 5);
    assert_int_equal(rtu_parse_read(ex, 5, 0x11, 3, 2, regs, bits, &exc), RTU_EXCEPTION);
    assert_int_equal(exc, 2);

    uint8_t coils[7] = {0x05, 0x01, 0x02, 0xcd, 0x01};
    crc = rtu_crc16(coils, 5);
    coils[5] = (uint8_t)(crc & 0xff);
    coils[6] = (uint8_t)(crc >> 8);
    assert_int_equal(rtu_parse_read(coils, 7, 5, 1, 9, regs, bits, &exc), RTU_OK);
    const uint8_t want_bits[9] = {1, 0, 1, 1, 0, 0, 1, 1, 1};
    assert_memory_equal(bits, want_bits, 9);
    assert_string_equal(rtu_strerror(RTU_BAD_CRC), "CRC mismatch");
}

/* ------------------------------------------------------- backoff, breaker */

static void test_backoff(void **state)
{
    (void)state;
    backoff b;
    backoff_init(&b, 100, 1000, 12345);
    assert_true(backoff_ready(&b, 0));
    uint32_t bounds[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        uint32_t d = backoff_failed(&b, 0);
        assert_true(d >= bounds[i] / 2 && d <= bounds[i]);
        assert_false(backoff_ready(&b, (int64_t)d * 1000000 - 1));
        assert_true(backoff_ready(&b, (int64_t)d * 1000000));
    }
    backoff_lost(&b, 5);
    assert_true(backoff_ready(&b, 5));
    assert_int_equal(b.attempts, 0);
    backoff_failed(&b, 0);
    backoff_succeeded(&b);
    assert_true(backoff_ready(&b, 0));
}

static void test_breaker(void **state)
{
    (void)state;
    breaker k;
    breaker_init(&k, 3, 10);
    int64_t s = 1000000000;
    assert_false(breaker_cycle(&k, false, 0));
    assert_false(breaker_cycle(&k, false, 0));
    assert_true(breaker_allows(&k, 0));
    assert_true(breaker_cycle(&k, false, 0)); /* third failed cycle opens it */
    assert_false(breaker_allows(&k, 10 * s - 1));
    assert_true(breaker_allows(&k, 10 * s)); /* half-open */
    assert_true(breaker_cycle(&k, false, 10 * s)); /* failed try: open again */
    assert_false(breaker_allows(&k, 15 * s));
    assert_int_equal(k.opened, 2);
    assert_false(breaker_cycle(&k, true, 20 * s)); /* an answer closes it */
    assert_true(breaker_allows(&k, 20 * s));
    assert_int_equal(k.failures, 0);
}

/* ------------------------------------------------------- control messages */

static void expect_refused(const char *json, const char *reason)
{
    control_msg m;
    char why[200];
    assert_int_equal(control_parse(json, strlen(json), &m, why, sizeof why), -1);
    if (!strstr(why, reason))
        fail_msg("'%s': reason '%s' lacks '%s'", json, why, reason);
}

static void test_control_parse(void **state)
{
    (void)state;
    control_msg m;
    char why[200];
    const char *j = "{\"cmd\":\"pause\"}";
    assert_int_equal(control_parse(j, strlen(j), &m, why, sizeof why), 0);
    assert_int_equal(m.cmd, CTL_PAUSE);
    j = "{\"cmd\":\"resume\"}";
    assert_int_equal(control_parse(j, strlen(j), &m, why, sizeof why), 0);
    assert_int_equal(m.cmd, CTL_RESUME);
    j = "{\"cmd\":\"set_interval\",\"device\":\"plc1\",\"group\":\"fast\",\"interval_ms\":250}";
    assert_int_equal(control_parse(j, strlen(j), &m, why, sizeof why), 0);
    assert_int_equal(m.cmd, CTL_SET_INTERVAL);
    assert_string_equal(m.device, "plc1");
    assert_string_equal(m.group, "fast");
    assert_int_equal(m.interval_ms, 250);
    j = "{\"cmd\":\"pressure\",\"level\":\"high\"}";
    assert_int_equal(control_parse(j, strlen(j), &m, why, sizeof why), 0);
    assert_int_equal(m.level, PRESSURE_HIGH);
    assert_int_equal(m.min_priority, CONTROL_DEFAULT_MIN_PRIORITY);
    assert_int_equal(m.slow_factor, CONTROL_DEFAULT_SLOW_FACTOR);
    j = "{\"cmd\":\"pressure\",\"level\":\"moderate\",\"min_priority\":5,\"slow_factor\":10}";
    assert_int_equal(control_parse(j, strlen(j), &m, why, sizeof why), 0);
    assert_int_equal(m.level, PRESSURE_MODERATE);
    assert_int_equal(m.min_priority, 5);
    assert_int_equal(m.slow_factor, 10);
    j = "{\"cmd\":\"reset_counters\"}"; /* for someone else */
    assert_int_equal(control_parse(j, strlen(j), &m, why, sizeof why), 0);
    assert_int_equal(m.cmd, CTL_IGNORED);
    j = "{\"cmd\":\"reload\"}";
    assert_int_equal(control_parse(j, strlen(j), &m, why, sizeof why), 0);
    assert_int_equal(m.cmd, CTL_RELOAD);

    expect_refused("{\"cmd\":", "not JSON");
    expect_refused("[1,2]", "not a JSON object");
    expect_refused("{\"command\":\"pause\"}", "\"cmd\" must be a string");
    expect_refused("{\"cmd\":7}", "\"cmd\" must be a string");
    expect_refused("{\"cmd\":\"pause\",\"cmd\":\"resume\"}", "not JSON");
    expect_refused("{\"cmd\":\"pressure\",\"level\":\"extreme\"}", "\"level\" must be one of");
    expect_refused("{\"cmd\":\"pressure\",\"level\":3}", "\"level\" must be one of");
    expect_refused("{\"cmd\":\"pressure\",\"level\":\"low\",\"slow_factor\":0}",
                   "\"slow_factor\" must be an integer in 1..1000");
    expect_refused("{\"cmd\":\"set_interval\",\"group\":\"g\",\"interval_ms\":5}",
                   "\"device\" must be a string");
    expect_refused("{\"cmd\":\"set_interval\",\"device\":\"d\",\"group\":\"g\"}",
                   "\"interval_ms\" must be an integer in 1..86400000");
    expect_refused("{\"cmd\":\"set_interval\",\"device\":\"d\",\"group\":\"g\",\"interval_ms\":\"5\"}",
                   "\"interval_ms\" must be an integer");
    expect_refused("{\"cmd\":\"set_interval\",\"device\":\"\",\"group\":\"g\",\"interval_ms\":5}",
                   "\"device\" must have 1..63 characters");
    char big[CONTROL_MSG_MAX + 100];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"cmd\":\"pause\"}", 15);
    assert_int_equal(control_parse(big, sizeof big, &m, why, sizeof why), -1);
    assert_non_null(strstr(why, "at most 4096"));
    assert_string_equal(pressure_level_name(PRESSURE_CRITICAL), "critical");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_merges_and_splits),
        cmocka_unit_test(test_plan_limits),
        cmocka_unit_test(test_plan_single_request),
        cmocka_unit_test(test_codec_orders),
        cmocka_unit_test(test_codec_scaling_and_failures),
        cmocka_unit_test(test_simgen),
        cmocka_unit_test(test_rtu_frames),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_breaker),
        cmocka_unit_test(test_control_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * t_stats_protocol.c — the JSON protocol on a store filled by the test:
 * every op's answer checked against values computed here, every kind of bad
 * request answered with {"error": ...} naming what was wrong, and random
 * mutations of valid requests always answered with valid JSON.
 */
#include "interp.h"
#include "protocol.h"
#include "statref.h"
#include "tagstore.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h> /* after the three headers it needs */

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <shmbus/shm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEC 1000000000LL
#define T0 (1800000000LL * SEC) /* a fixed "now" for relative times */

typedef struct fixture {
    tagstore store;
    protocol proto;
    int snapshots;
    double temp[100];
} fixture;

static int64_t fixed_now(void *ctx)
{
    (void)ctx;
    return T0;
}

static int fake_snapshot(void *ctx, json_t *result, char *err, size_t len)
{
    fixture *f = ctx;
    f->snapshots++;
    if (f->snapshots > 1) {
        snprintf(err, len, "disk full (test)");
        return -ENOSPC;
    }
    json_object_set_new(result, "path", json_string("/nowhere"));
    return 0;
}

/* Tags: 0 "boiler.temp" (float64): 20 + 0.5 i every 100 ms, i = 0..99;
 * 1 "pump.on" (bool): toggles every 10 samples; 2 "flow": 2 * temp + 1;
 * 3 "empty": only NaN and bad-quality values. */
static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    store_params p = {.window = 50,
                      .history_ns = 3600 * SEC,
                      .history_capacity = 1000,
                      .shard_n = 1,
                      .max_tags = 16,
                      .limits = {.min_ms = 100, .max_ms = 60000}};
    assert_int_equal(tagstore_init(&f->store, &p), 0);
    tag_state *t;
    const char *names[] = {"boiler.temp", "pump.on", "flow", "empty"};
    const uint8_t types[] = {SHM_DT_FLOAT64, SHM_DT_BOOL, SHM_DT_FLOAT32, SHM_DT_FLOAT64};
    for (uint32_t id = 0; id < 4; id++) {
        assert_int_equal(tagstore_ensure(&f->store, id, &t), 0);
        tagstore_set_meta(&f->store, t, names[id], types[id]);
    }
    for (int i = 0; i < 100; i++) {
        int64_t ts = T0 - 100 * SEC + i * (SEC / 10);
        f->temp[i] = 20.0 + 0.5 * i;
        tagstore_apply(&f->store, 0, ts, f->temp[i], SHM_Q_GOOD);
        tagstore_apply(&f->store, 1, ts, (double)((i / 10) % 2), SHM_Q_GOOD);
        tagstore_apply(&f->store, 2, ts, 2.0 * f->temp[i] + 1.0, SHM_Q_GOOD);
    }
    tagstore_apply(&f->store, 3, T0, NAN, SHM_Q_GOOD);
    tagstore_apply(&f->store, 3, T0, 1.0, SHM_Q_COMM_FAIL);
    f->proto = (protocol){.store = &f->store,
                          .hooks = {.ctx = f, .snapshot = fake_snapshot, .now_ns = fixed_now},
                          .max_request = 4096};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    tagstore_free(&f->store);
    free(f);
    return 0;
}

/* Sends text, checks the answer is JSON, returns it (caller decrefs). */
static json_t *call(fixture *f, const char *text)
{
    int is_error = -1;
    char *out = protocol_handle(&f->proto, text, strlen(text), &is_error);
    assert_non_null(out);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    if (!j)
        fail_msg("not JSON: %s", out);
    assert_int_equal(is_error, json_object_get(j, "error") != NULL);
    free(out);
    return j;
}

static void expect_error(fixture *f, const char *text, const char *needle)
{
    json_t *j = call(f, text);
    json_t *e = json_object_get(j, "error");
    if (!json_is_string(e) || !strstr(json_string_value(e), needle))
        fail_msg("request %s: expected an error containing '%s', got %s", text, needle,
                 json_dumps(j, JSON_COMPACT));
    assert_null(json_object_get(j, "ok"));
    json_decref(j);
}

static double num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v))
        fail_msg("key %s: not a number", key);
    return json_number_value(v);
}

static void test_bad_requests(void **state)
{
    fixture *f = *state;
    expect_error(f, "{\"op\":", "malformed JSON");
    expect_error(f, "", "malformed JSON");
    expect_error(f, "not json", "malformed JSON");
    expect_error(f, "[1,2]", "JSON object");
    expect_error(f, "{}", "field 'op' is required");
    expect_error(f, "{\"op\":42}", "field 'op' is required");
    expect_error(f, "{\"op\":\"launch\"}", "unknown op 'launch'");
    expect_error(f, "{\"op\":\"stats\",\"op\":\"range\"}", "malformed JSON"); /* duplicate key */
    expect_error(f, "{\"op\":\"stats\",\"tag\":\"nope\"}", "unknown tag 'nope'");
    expect_error(f, "{\"op\":\"stats\",\"tag\":99}", "unknown tag id 99");
    expect_error(f, "{\"op\":\"stats\",\"tag\":-1}", "unknown tag id -1");
    expect_error(f, "{\"op\":\"stats\",\"tag\":1.5}", "a tag is a name");
    expect_error(f, "{\"op\":\"stats\",\"tags\":[\"boiler.temp\",\"nope\"]}", "unknown tag 'nope'");
    expect_error(f, "{\"op\":\"stats\",\"tags\":7}", "field 'tags'");
    expect_error(f, "{\"op\":\"stats\",\"tag\":0,\"tags\":[1]}", "both given");
    expect_error(f, "{\"op\":\"stats\",\"limit\":0}", "field 'limit'");
    expect_error(f, "{\"op\":\"range\"}", "field 'tag' is required");
    expect_error(f, "{\"op\":\"range\",\"tag\":0,\"from_ns\":10,\"to_ns\":5}", "inverted range");
    expect_error(f, "{\"op\":\"range\",\"tag\":0,\"from\":-10,\"to\":-20}", "inverted range");
    expect_error(f, "{\"op\":\"range\",\"tag\":0,\"from\":\"yesterday\"}", "field 'from'");
    expect_error(f, "{\"op\":\"range\",\"tag\":0,\"from_ns\":1.5}", "field 'from_ns'");
    expect_error(f, "{\"op\":\"range\",\"tag\":0,\"from\":1,\"from_ns\":1}", "both given");
    expect_error(f, "{\"op\":\"range\",\"tag\":0,\"max_points\":3}", "field 'max_points'");
    expect_error(f, "{\"op\":\"range\",\"tag\":0,\"from\":1e300}", "out of range");
    expect_error(f, "{\"op\":\"value_at\",\"tag\":0}", "field 't'");
    expect_error(f, "{\"op\":\"value_at\",\"tag\":0,\"t\":-1,\"mode\":\"cubic\"}", "field 'mode'");
    expect_error(f, "{\"op\":\"correlate\",\"tags\":[0]}", "2 to 32");
    expect_error(f, "{\"op\":\"correlate\",\"tags\":\"all\"}", "2 to 32");
    expect_error(f, "{\"op\":\"correlate\",\"tags\":[0,2],\"from_ns\":9,\"to_ns\":1}",
                 "inverted range");
    expect_error(f, "{\"op\":\"correlate\",\"tags\":[0,3]}", "do not overlap");
    expect_error(f, "{\"op\":\"correlate\",\"tags\":[0,2],\"points\":1}", "field 'points'");
    /* Oversize: over max_request (4096 here). */
    char big[6000];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"op\":\"status\"", 14);
    big[sizeof big - 2] = '}';
    big[sizeof big - 1] = '\0';
    expect_error(f, big, "request too large: 5999 bytes (limit 4096)");
    /* Errors echo op and id. */
    json_t *j = call(f, "{\"op\":\"range\",\"id\":\"q7\"}");
    assert_string_equal(json_string_value(json_object_get(j, "id")), "q7");
    assert_string_equal(json_string_value(json_object_get(j, "op")), "range");
    json_decref(j);
    /* After all that, good requests still work. */
    j = call(f, "{\"op\":\"status\"}");
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_int_equal(num(j, "requests"), f->proto.requests);
    assert_true(num(j, "request_errors") >= 30);
    json_decref(j);
}

static void test_stats(void **state)
{
    fixture *f = *state;
    json_t *j = call(f, "{\"op\":\"stats\",\"tag\":\"boiler.temp\",\"id\":5}");
    assert_int_equal(num(j, "id"), 5);
    json_t *t = json_array_get(json_object_get(j, "tags"), 0);
    /* The window keeps the last 50 of 100 values. */
    ref_stats ref;
    ref_compute(f->temp + 50, 50, &ref);
    assert_int_equal(num(t, "count"), 50);
    assert_int_equal(num(t, "window"), 50);
    assert_true(rel_err(num(t, "mean"), ref.mean) < 1e-12);
    assert_true(rel_err(num(t, "stddev"), ref.stddev) < 1e-12);
    assert_true(num(t, "min") == ref.min && num(t, "max") == ref.max);
    assert_true(num(t, "first") == ref.first && num(t, "last") == ref.last);
    assert_true(fabs(num(t, "trend_per_s") - 5.0) < 1e-9); /* 0.5 per 100 ms */
    assert_int_equal(num(t, "changes"), 49);
    assert_true(fabs(num(t, "sample_interval_ms") - 100.0) < 1e-6);
    assert_true(fabs(num(t, "suggested_interval_ms") - 100.0) < 1e-6); /* clamped */
    assert_int_equal(num(t, "added"), 100);
    assert_string_equal(json_string_value(json_object_get(t, "mode")), "linear");
    json_t *h = json_object_get(t, "history");
    assert_int_equal(num(h, "points"), 100);
    json_decref(j);

    /* A bool is a step tag; it changed 4 times within the last 50 samples. */
    j = call(f, "{\"op\":\"stats\",\"tags\":[1, \"flow\"]}");
    json_t *tags = json_object_get(j, "tags");
    assert_int_equal(json_array_size(tags), 2);
    t = json_array_get(tags, 0);
    assert_string_equal(json_string_value(json_object_get(t, "mode")), "step");
    assert_int_equal(num(t, "changes"), 4);
    /* changes every 1 s over 4.9 s: suggest 4.9 s / 4 / 2 */
    assert_true(fabs(num(t, "suggested_interval_ms") - 612.5) < 1e-6);
    json_decref(j);

    /* Only excluded values: nulls, and the exclusions counted. */
    j = call(f, "{\"op\":\"stats\",\"tag\":\"empty\"}");
    t = json_array_get(json_object_get(j, "tags"), 0);
    assert_int_equal(num(t, "count"), 0);
    assert_true(json_is_null(json_object_get(t, "mean")));
    assert_true(json_is_null(json_object_get(t, "stddev")));
    assert_true(json_is_null(json_object_get(t, "suggested_interval_ms")));
    assert_int_equal(num(t, "excluded_nonfinite"), 1);
    assert_int_equal(num(t, "excluded_quality"), 1);
    json_decref(j);

    /* All tags, paged. */
    j = call(f, "{\"op\":\"stats\",\"limit\":3}");
    assert_int_equal(json_array_size(json_object_get(j, "tags")), 3);
    assert_int_equal(num(j, "total"), 4);
    assert_int_equal(num(j, "next_offset"), 3);
    json_decref(j);
    j = call(f, "{\"op\":\"stats\",\"tags\":\"*\",\"offset\":3}");
    assert_int_equal(json_array_size(json_object_get(j, "tags")), 1);
    assert_null(json_object_get(j, "next_offset"));
    json_decref(j);
    j = call(f, "{\"op\":\"stats\",\"offset\":4294967295,\"limit\":5000}");
    assert_int_equal(json_array_size(json_object_get(j, "tags")), 0);
    json_decref(j);
}

static void test_range(void **state)
{
    fixture *f = *state;
    char req[256];
    int64_t t10 = T0 - 100 * SEC + 10 * (SEC / 10);
    snprintf(req, sizeof req,
             "{\"op\":\"range\",\"tag\":\"boiler.temp\",\"from_ns\":%lld,\"to_ns\":%lld}",
             (long long)t10, (long long)(t10 + 5 * (SEC / 10)));
    json_t *j = call(f, req);
    json_t *pts = json_object_get(j, "points");
    assert_int_equal(json_array_size(pts), 6);
    assert_int_equal(num(j, "total"), 6);
    assert_true(json_is_false(json_object_get(j, "downsampled")));
    for (size_t i = 0; i < 6; i++) {
        json_t *p = json_array_get(pts, i);
        assert_int_equal(json_integer_value(json_array_get(p, 0)), t10 + (int64_t)i * (SEC / 10));
        assert_true(json_number_value(json_array_get(p, 1)) == f->temp[10 + i]);
    }
    json_decref(j);
    /* Relative seconds (before "now" = T0): samples sit 100 s to 90.1 s
     * before now; [-95 s, -92 s] holds i = 50..80. */
    j = call(f, "{\"op\":\"range\",\"tag\":0,\"from\":-95,\"to\":-92}");
    assert_int_equal(num(j, "total"), 31);
    assert_true(json_number_value(json_array_get(json_array_get(json_object_get(j, "points"), 0),
                                                 1)) == f->temp[50]);
    json_decref(j);
    /* Downsampled to at most max_points, keeping first and last. */
    j = call(f, "{\"op\":\"range\",\"tag\":0,\"max_points\":8}");
    pts = json_object_get(j, "points");
    assert_true(json_array_size(pts) <= 8);
    assert_true(json_is_true(json_object_get(j, "downsampled")));
    assert_int_equal(num(j, "total"), 100);
    assert_true(json_number_value(json_array_get(json_array_get(pts, 0), 1)) == f->temp[0]);
    assert_true(json_number_value(json_array_get(json_array_get(pts, json_array_size(pts) - 1),
                                                 1)) == f->temp[99]);
    json_decref(j);
    /* An empty range is not an error. */
    j = call(f, "{\"op\":\"range\",\"tag\":0,\"from_ns\":1,\"to_ns\":2}");
    assert_int_equal(json_array_size(json_object_get(j, "points")), 0);
    json_decref(j);
}

static void test_value_at(void **state)
{
    fixture *f = *state;
    char req[256];
    int64_t t20 = T0 - 100 * SEC + 20 * (SEC / 10);
    /* Between points 20 and 21, a quarter of the way. */
    snprintf(req, sizeof req, "{\"op\":\"value_at\",\"tag\":\"boiler.temp\",\"t_ns\":%lld}",
             (long long)(t20 + SEC / 40));
    json_t *j = call(f, req);
    assert_string_equal(json_string_value(json_object_get(j, "position")), "between");
    assert_true(fabs(num(j, "value") - (f->temp[20] + 0.125)) < 1e-12);
    json_t *prev = json_object_get(j, "prev"), *next = json_object_get(j, "next");
    assert_int_equal(json_integer_value(json_array_get(prev, 0)), t20);
    assert_int_equal(json_integer_value(json_array_get(next, 0)), t20 + SEC / 10);
    json_decref(j);
    /* Same place as a step. */
    snprintf(req, sizeof req, "{\"op\":\"value_at\",\"tag\":0,\"t_ns\":%lld,\"mode\":\"step\"}",
             (long long)(t20 + SEC / 40));
    j = call(f, req);
    assert_true(num(j, "value") == f->temp[20]);
    json_decref(j);
    /* At a point. */
    snprintf(req, sizeof req, "{\"op\":\"value_at\",\"tag\":0,\"t_ns\":%lld}", (long long)t20);
    j = call(f, req);
    assert_string_equal(json_string_value(json_object_get(j, "position")), "exact");
    assert_true(num(j, "value") == f->temp[20]);
    json_decref(j);
    /* Before and after: value null, nearest point named. */
    j = call(f, "{\"op\":\"value_at\",\"tag\":0,\"t\":1}");
    assert_string_equal(json_string_value(json_object_get(j, "position")), "before");
    assert_true(json_is_null(json_object_get(j, "value")));
    assert_true(json_is_null(json_object_get(j, "prev")));
    assert_true(json_is_array(json_object_get(j, "next")));
    json_decref(j);
    j = call(f, "{\"op\":\"value_at\",\"tag\":0,\"t\":0}"); /* now: after the last point */
    assert_string_equal(json_string_value(json_object_get(j, "position")), "after");
    assert_true(json_number_value(json_array_get(json_object_get(j, "prev"), 1)) == f->temp[99]);
    json_decref(j);
    /* The bool holds its value between samples (step by default). */
    snprintf(req, sizeof req, "{\"op\":\"value_at\",\"tag\":\"pump.on\",\"t_ns\":%lld}",
             (long long)(T0 - 100 * SEC + 9 * (SEC / 10) + SEC / 20));
    j = call(f, req);
    assert_true(num(j, "value") == 0.0);
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "step");
    json_decref(j);
}

static void test_correlate_and_intervals(void **state)
{
    fixture *f = *state;
    json_t *j = call(f, "{\"op\":\"correlate\",\"tags\":[\"boiler.temp\",\"flow\",\"pump.on\"]}");
    json_t *m = json_object_get(j, "matrix");
    assert_int_equal(json_array_size(m), 3);
    assert_true(fabs(json_number_value(json_array_get(json_array_get(m, 0), 1)) - 1.0) < 1e-9);
    assert_true(fabs(json_number_value(json_array_get(json_array_get(m, 0), 0)) - 1.0) < 1e-12);
    assert_int_equal(num(j, "aligned"), 200);
    json_decref(j);

    j = call(f, "{\"op\":\"intervals\"}");
    json_t *list = json_object_get(j, "intervals");
    assert_int_equal(json_array_size(list), 4);
    json_t *pump = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(pump, "name")), "pump.on");
    assert_true(fabs(num(pump, "suggested_interval_ms") - 612.5) < 1e-6);
    json_decref(j);

    j = call(f, "{\"op\":\"tags\"}");
    assert_int_equal(json_array_size(json_object_get(j, "tags")), 4);
    json_decref(j);
}

static void test_snapshot_and_stopping(void **state)
{
    fixture *f = *state;
    json_t *j = call(f, "{\"op\":\"snapshot\"}");
    assert_string_equal(json_string_value(json_object_get(j, "path")), "/nowhere");
    json_decref(j);
    expect_error(f, "{\"op\":\"snapshot\"}", "snapshot failed: disk full (test)");
    f->proto.hooks.snapshot = NULL;
    expect_error(f, "{\"op\":\"snapshot\"}", "not configured");
    f->proto.phase = PROTOCOL_STOPPING;
    expect_error(f, "{\"op\":\"status\"}", "shutting down");
    f->proto.phase = PROTOCOL_READY;
}

/* Random mutations of valid requests: always one valid JSON answer. */
static void test_mutations(void **state)
{
    fixture *f = *state;
    static const char *seeds[] = {
        "{\"op\":\"stats\",\"tags\":[\"boiler.temp\",1],\"limit\":3}",
        "{\"op\":\"range\",\"tag\":0,\"from\":-5,\"to\":0,\"max_points\":10}",
        "{\"op\":\"value_at\",\"tag\":\"pump.on\",\"t_ns\":1799999999000000000}",
        "{\"op\":\"correlate\",\"tags\":[0,2],\"points\":50}",
        "{\"op\":\"intervals\",\"offset\":1}",
    };
    static const char alphabet[] = "{}[]\",:0123456789-.eE tnfalsru\\";
    test_rng r;
    rng_seed(&r, 77);
    char buf[512];
    for (int iter = 0; iter < 5000; iter++) {
        const char *s = seeds[rng_next(&r) % 5];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int edits = 1 + (int)(rng_next(&r) % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = rng_next(&r) % n;
            switch (rng_next(&r) % 3) {
            case 0: /* replace */
                buf[at] = alphabet[rng_next(&r) % (sizeof alphabet - 1)];
                break;
            case 1: /* delete */
                memmove(buf + at, buf + at + 1, n - at - 1);
                n--;
                break;
            default: /* insert */
                if (n + 1 < sizeof buf) {
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = alphabet[rng_next(&r) % (sizeof alphabet - 1)];
                    n++;
                }
            }
        }
        int is_error;
        char *out = protocol_handle(&f->proto, buf, n, &is_error);
        assert_non_null(out);
        json_t *j = json_loads(out, 0, NULL);
        assert_non_null(j);
        assert_true(json_object_get(j, "ok") != NULL || json_object_get(j, "error") != NULL);
        json_decref(j);
        free(out);
    }
    /* Binary garbage, embedded NULs. */
    for (int iter = 0; iter < 500; iter++) {
        for (size_t i = 0; i < 64; i++)
            buf[i] = (char)rng_next(&r);
        int is_error;
        char *out = protocol_handle(&f->proto, buf, 64, &is_error);
        assert_non_null(out);
        assert_int_equal(is_error, 1);
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_value_at, setup, teardown),
        cmocka_unit_test_setup_teardown(test_correlate_and_intervals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_stopping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutations, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * t_ctl_units.c — the controller's parts that need no other process: the
 * pressure hysteresis (no flapping, recovery one level at a time), the leak
 * trend, /proc parsing, Prometheus name sanitizing, the HTTP address, and
 * the control-request handler fed good, bad and random input against a real
 * segment (every answer must be a JSON object; bad ones carry "error").
 */
/* cmocka needs these first, in this order */
/* clang-format off */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>
/* clang-format on */

#include "control.h"
#include "ctl.h"
#include "events.h"
#include "http.h"
#include "leak.h"
#include "metrics.h"
#include "pressure.h"
#include "procmem.h"
#include "promname.h"
#include "shmtest.h"
#include "views.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pressure_thresholds defaults(void)
{
    pressure_thresholds t = {.enter = {0, 0.60, 0.80, 0.95, 0.98}, .hysteresis = 0.05};
    return t;
}

static void test_level_names(void **state)
{
    for (int l = 0; l < PRESSURE_LEVELS; l++)
        assert_int_equal(pressure_level_parse(pressure_level_name(l)), l);
    assert_int_equal(pressure_level_parse("severe"), -1);
    assert_string_equal(pressure_level_name(7), "unknown");
}

static void test_rising_jumps_at_once(void **state)
{
    pressure_thresholds t = defaults();
    assert_int_equal(pressure_next_level(&t, PRESSURE_NONE, 0.59), PRESSURE_NONE);
    assert_int_equal(pressure_next_level(&t, PRESSURE_NONE, 0.60), PRESSURE_LOW);
    assert_int_equal(pressure_next_level(&t, PRESSURE_NONE, 0.96), PRESSURE_HIGH);
    assert_int_equal(pressure_next_level(&t, PRESSURE_LOW, 1.0), PRESSURE_CRITICAL);
    assert_int_equal(pressure_next_level(&t, PRESSURE_HIGH, 5.0), PRESSURE_CRITICAL);
}

static void test_falling_one_level_per_check(void **state)
{
    pressure_thresholds t = defaults();
    int l = PRESSURE_CRITICAL;
    int seen[PRESSURE_LEVELS + 1], n = 0;
    while (l != PRESSURE_NONE && n < 10) {
        l = pressure_next_level(&t, l, 0.0);
        seen[n++] = l;
    }
    assert_int_equal(n, 4);
    assert_int_equal(seen[0], PRESSURE_HIGH);
    assert_int_equal(seen[1], PRESSURE_MODERATE);
    assert_int_equal(seen[2], PRESSURE_LOW);
    assert_int_equal(seen[3], PRESSURE_NONE);
}

static void test_hysteresis_prevents_flapping(void **state)
{
    pressure_thresholds t = defaults();
    /* A value wobbling around the moderate threshold changes the level once. */
    int l = PRESSURE_LOW, changes = 0;
    for (int i = 0; i < 1000; i++) {
        double v = 0.80 + (i % 2 ? 0.01 : -0.04); /* 0.76 .. 0.81 */
        int next = pressure_next_level(&t, l, v);
        changes += next != l;
        l = next;
    }
    assert_int_equal(changes, 1);
    assert_int_equal(l, PRESSURE_MODERATE);
    /* Leaving takes a value below 0.80 - 0.05. */
    assert_int_equal(pressure_next_level(&t, PRESSURE_MODERATE, 0.751), PRESSURE_MODERATE);
    assert_int_equal(pressure_next_level(&t, PRESSURE_MODERATE, 0.749), PRESSURE_LOW);
}

static void test_critical_left_only_under_high(void **state)
{
    pressure_thresholds t = defaults();
    assert_true(fabs(pressure_exit_value(&t, PRESSURE_CRITICAL) - 0.93) < 1e-12);
    assert_int_equal(pressure_next_level(&t, PRESSURE_CRITICAL, 0.94), PRESSURE_CRITICAL);
    assert_int_equal(pressure_next_level(&t, PRESSURE_CRITICAL, 0.92), PRESSURE_HIGH);
    /* Without hysteresis, critical still holds until the value is under high. */
    t.hysteresis = 0;
    assert_true(fabs(pressure_exit_value(&t, PRESSURE_CRITICAL) - 0.95) < 1e-12);
    assert_int_equal(pressure_next_level(&t, PRESSURE_CRITICAL, 0.96), PRESSURE_CRITICAL);
    assert_int_equal(pressure_next_level(&t, PRESSURE_CRITICAL, 0.949), PRESSURE_HIGH);
    assert_int_equal(pressure_next_level(&t, PRESSURE_LOW, 0.5999), PRESSURE_NONE);
}

static void test_leak_slope(void **state)
{
    leak_window w;
    double slope;
    leak_reset(&w);
    for (int i = 0; i < 7; i++)
        leak_add(&w, i * 1000, 1e6);
    assert_int_equal(leak_slope(&w, 60000, &slope), -1); /* too few samples */
    leak_reset(&w);
    for (int i = 0; i < 20; i++)
        leak_add(&w, i * 1000, 5e6 + 2e6 * i); /* 2 MB/s */
    assert_int_equal(leak_slope(&w, 30000, &slope), 0);
    assert_true(fabs(slope - 2e6) < 1.0);
    /* 19 s of samples do not yet cover half of a 60 s window. */
    assert_int_equal(leak_slope(&w, 60000, &slope), -1);
    /* Flat with noise: about zero. */
    leak_reset(&w);
    for (int i = 0; i < LEAK_SAMPLES * 2; i++)
        leak_add(&w, i * 500, 8e6 + (i % 3) * 4096);
    assert_int_equal(leak_slope(&w, 30000, &slope), 0);
    assert_true(fabs(slope) < 1000);
    /* Only the window counts: old growth, then flat for longer than it. */
    leak_reset(&w);
    for (int i = 0; i < 32; i++)
        leak_add(&w, i * 1000, 1e6 * i);
    for (int i = 32; i < 64; i++)
        leak_add(&w, i * 1000, 32e6);
    assert_int_equal(leak_slope(&w, 20000, &slope), 0);
    assert_true(fabs(slope) < 1.0);
}

static void test_statm_and_psi(void **state)
{
    procmem_rss r;
    assert_int_equal(procmem_parse_statm("1000 300 100 5 0 200 0\n", 4096, &r), 0);
    assert_int_equal(r.resident_bytes, 300 * 4096);
    assert_int_equal(r.shared_bytes, 100 * 4096);
    assert_int_equal(r.private_bytes, 200 * 4096);
    assert_int_equal(procmem_parse_statm("garbage", 4096, &r), -EINVAL);
    assert_int_equal(procmem_parse_statm("10 20 5", 4096, &r), -EINVAL); /* resident > size */
    assert_int_equal(procmem_parse_statm("10 5 6", 4096, &r), -EINVAL);  /* shared > resident */
    assert_int_equal(procmem_read_rss(getpid(), &r), 0);
    assert_true(r.resident_bytes > 0);
    assert_int_equal(procmem_read_rss(0x7ffffff0, &r), -ENOENT);

    double v = -1;
    assert_int_equal(procmem_parse_psi("some avg10=12.50 avg60=1.00 avg300=0.00 total=5\n"
                                       "full avg10=3.00 avg60=0.00 avg300=0.00 total=1\n",
                                       &v),
                     0);
    assert_true(fabs(v - 0.125) < 1e-9);
    assert_int_equal(procmem_parse_psi("full avg10=3.00\nsome avg10=0.00 avg60=0\n", &v), 0);
    assert_true(v == 0.0);
    assert_int_equal(procmem_parse_psi("some avg60=1.00\n", &v), -EINVAL);
    assert_int_equal(procmem_parse_psi("some avg10=abc\n", &v), -EINVAL);
    assert_int_equal(procmem_parse_psi("some avg10=250.0\n", &v), -EINVAL);
    assert_int_equal(procmem_parse_psi("", &v), -EINVAL);

    /* The file itself: missing, unparsable, good. */
    char dir[512], path[600];
    shmtest_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/memory.pressure", dir);
    assert_int_equal(procmem_read_psi(path, &v), -ENOENT);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("some avg10=not-a-number\n", f);
    fclose(f);
    assert_int_equal(procmem_read_psi(path, &v), -EINVAL);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("some avg10=42.00 avg60=0.00 avg300=0.00 total=7\n", f);
    fclose(f);
    assert_int_equal(procmem_read_psi(path, &v), 0);
    assert_true(fabs(v - 0.42) < 1e-9);
}

static void expect_name(const char *in, bool counter, int rc, const char *family,
                        const char *labels)
{
    char f[PROM_NAME_MAX], l[PROM_LABELS_MAX];
    int got = prom_counter_name(in, counter, f, sizeof f, l, sizeof l);
    if (got != rc)
        fail_msg("'%s': rc %d, expected %d (family '%s', labels '%s')", in, got, rc, f, l);
    if (rc >= 0) {
        assert_string_equal(f, family);
        assert_string_equal(l, labels);
    }
}

static void test_prometheus_names(void **state)
{
    expect_name("poller_requests_total{device=\"plc1\"}", true, 0, "shmbus_poller_requests_total",
                "device=\"plc1\"");
    expect_name("shmbus_x_total", true, 0, "shmbus_x_total", "");
    expect_name("poller_requests", true, 0, "shmbus_poller_requests_total", "");
    expect_name("temperature_celsius", false, 0, "shmbus_temperature_celsius", "");
    expect_name("weird name!-x", false, 1, "shmbus_weird_name__x", "");
    expect_name("a{x=\"q\\\"uote\\\\ \\n\"}", false, 0, "shmbus_a", "x=\"q\\\"uote\\\\ \\n\"");
    expect_name("a{x=\"1\",y=\"2\",}", false, 0, "shmbus_a", "x=\"1\",y=\"2\"");
    expect_name("a{ x=\"1\" , y=\"2\" }", false, 0, "shmbus_a", "x=\"1\",y=\"2\"");
    expect_name("a{x=\"1\",x=\"2\"}", false, 1, "shmbus_a", "x=\"1\"");
    expect_name("a{__x=\"1\",9y=\"2\",b-c=\"3\"}", false, 1, "shmbus_a",
                "l__x=\"1\",_9y=\"2\",b_c=\"3\"");
    expect_name("a{x=1}", false, 1, "shmbus_a", "raw_labels=\"{x=1}\"");
    expect_name("a{x=\"1\"} trailing", false, 1, "shmbus_a",
                "raw_labels=\"{x=\\\"1\\\"} trailing\"");
    expect_name("a{x=\"unterminated", false, 1, "shmbus_a", "raw_labels=\"{x=\\\"unterminated\"");
    expect_name("{x=\"1\"}", false, 1, "shmbus_unnamed", "x=\"1\"");
    expect_name("caf\xc3\xa9{n=\"caf\xc3\xa9 \xff\"}", false, 1, "shmbus_caf__",
                "n=\"caf\xc3\xa9 ?\"");
    expect_name("a{x=\"\\q\"}", false, 1, "shmbus_a", "raw_labels=\"{x=\\\"\\\\q\\\"}\"");
    char long_name[400];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    expect_name(long_name, false, -1, "", "");

    strbuf b = {0};
    prom_label_value(&b, "a\"b\\c\nd\xe2\x82\xac\xe2\x82");
    assert_string_equal(b.data, "a\\\"b\\\\c\\nd\xe2\x82\xac??");
    strbuf_free(&b);
    prom_help_text(&b, "x\\y\nz\"");
    assert_string_equal(b.data, "x\\\\y\\nz\"");
    strbuf_free(&b);
}

static void expect_unit(const char *in, const char *out, double factor)
{
    char f[PROM_NAME_MAX];
    snprintf(f, sizeof f, "%s", in);
    assert_true(prom_base_unit(f, sizeof f) == factor);
    assert_string_equal(f, out);
}

static void test_prometheus_base_units(void **state)
{
    (void)state;
    expect_unit("shmbus_writer_sync_ns_total", "shmbus_writer_sync_seconds_total", 1e-9);
    expect_unit("shmbus_writer_sync_ns_max", "shmbus_writer_sync_seconds_max", 1e-9);
    expect_unit("shmbus_poller_rtt_microseconds_last", "shmbus_poller_rtt_seconds_last", 1e-6);
    expect_unit("shmbus_x_pause_ms", "shmbus_x_pause_seconds", 1e-3);
    expect_unit("shmbus_nsamples_total", "shmbus_nsamples_total", 1);   /* not a token */
    expect_unit("shmbus_runs_total", "shmbus_runs_total", 1);           /* _ns inside a word */
    expect_unit("shmbus_bytes_total", "shmbus_bytes_total", 1);
    char tiny[20] = "shmbus_a_ns_total"; /* no room for _seconds: kept, still valid */
    assert_true(prom_base_unit(tiny, sizeof tiny) == 1);
    assert_string_equal(tiny, "shmbus_a_ns_total");
}

static void test_http_address(void **state)
{
    char url[128];
    assert_int_equal(http_url_from_addr("127.0.0.1:9108", url, sizeof url), 0);
    assert_string_equal(url, "http://127.0.0.1:9108");
    assert_int_equal(http_url_from_addr("[::1]:80", url, sizeof url), 0);
    assert_string_equal(url, "http://[::1]:80");
    assert_int_equal(http_url_from_addr("localhost", url, sizeof url), -1);
    assert_int_equal(http_url_from_addr("127.0.0.1:0", url, sizeof url), -1);
    assert_int_equal(http_url_from_addr("127.0.0.1:70000", url, sizeof url), -1);
    assert_int_equal(http_url_from_addr("127.0.0.1:80x", url, sizeof url), -1);
    assert_int_equal(http_url_from_addr(":80", url, sizeof url), -1);
    assert_int_equal(http_url_from_addr("[::1:80", url, sizeof url), -1);
}

/* ---- control requests against a real segment */

static controller *ctl;
static char seg_name[64];

static int setup_controller(void **state)
{
    static const char yaml[] =
        "segment: {name: placeholder, slot_count: 1024}\n"
        "controller: {required_roles: [writer]}\n"
        "devices:\n"
        "  - name: plc1\n"
        "    host: 127.0.0.1\n"
        "    address_base: 0\n"
        "    poll_groups: [{name: fast, interval_ms: 100}]\n"
        "    tags: [{name: t1, register: holding, address: 0, type: uint16, poll_group: fast}]\n";
    char err[4096], dir[512], url[600];
    ctl = calloc(1, sizeof *ctl);
    assert_non_null(ctl);
    pthread_mutex_init(&ctl->lock, NULL);
    if (config_load_string(yaml, sizeof yaml - 1, "unit.yaml", &ctl->cfg, err, sizeof err) != 0)
        fail_msg("%s", err);
    ctl_settings_from_config(ctl->cfg, &ctl->set);
    shmtest_segment_name(seg_name, sizeof seg_name, "ctlunit");
    free(ctl->cfg->segment.name);
    ctl->cfg->segment.name = strdup(seg_name);
    assert_int_equal(ctl_open_segment(ctl, ctl->cfg, false, false), 0);
    assert_int_equal(ctl_create_groups(ctl, ctl->cfg), 0);
    ctl_counters_open(ctl);
    shmtest_tmpdir(dir, sizeof dir);
    snprintf(url, sizeof url, "ipc://%s/events", dir);
    assert_int_equal(events_open(&ctl->ev, url), 0);
    ctl->paused_applied = 0;
    ctl->started_ms = ctl_now_ms();
    snprintf(ctl->psi_path, sizeof ctl->psi_path, "%s", PROCMEM_PSI_DEFAULT);
    monitor_init(ctl);
    monitor_tick(ctl);
    return 0;
}

static int teardown_controller(void **state)
{
    events_close(&ctl->ev);
    monitor_free(ctl);
    shm_segment_close(&ctl->seg);
    config_free(&ctl->cfg);
    pthread_mutex_destroy(&ctl->lock);
    free(ctl);
    return 0;
}

static json_t *ask(const void *req, size_t len)
{
    char *text = control_handle(ctl, req, len);
    assert_non_null(text);
    json_error_t e;
    json_t *doc = json_loads(text, 0, &e);
    if (!doc || !json_is_object(doc))
        fail_msg("answer is not a JSON object: %s", text);
    free(text);
    return doc;
}

static void expect_error(const char *req, const char *fragment)
{
    json_t *doc = ask(req, strlen(req));
    json_t *e = json_object_get(doc, "error");
    if (!json_is_string(e) || !strstr(json_string_value(e), fragment))
        fail_msg("request %s: expected an error containing '%s', got %s", req, fragment,
                 json_dumps(doc, 0));
    assert_int_equal(json_object_size(doc), 1);
    json_decref(doc);
}

static void test_control_good_requests(void **state)
{
    json_t *d = ask("{\"cmd\":\"status\"}", 16);
    assert_string_equal(json_string_value(json_object_get(d, "segment")), seg_name);
    assert_int_equal(json_integer_value(json_object_get(d, "slot_count")), 1024);
    assert_int_equal(json_array_size(json_object_get(d, "groups")), 2);
    json_decref(d);
    d = ask("{\"cmd\":\"pause\"}", 15);
    assert_true(json_is_true(json_object_get(d, "paused")));
    json_decref(d);
    shm_ring_stats rs;
    shm_ring_stats_get(ctl->seg, &rs);
    assert_int_equal(rs.paused, 1);
    d = ask("{\"cmd\":\"resume\"}", 16);
    assert_true(json_is_false(json_object_get(d, "paused")));
    json_decref(d);
    shm_ring_stats_get(ctl->seg, &rs);
    assert_int_equal(rs.paused, 0);
    const char *si = "{\"cmd\":\"set_interval\",\"device\":\"plc1\",\"group\":\"fast\","
                     "\"interval_ms\":250}";
    d = ask(si, strlen(si));
    assert_true(json_is_true(json_object_get(d, "ok")));
    json_decref(d);
    const char *rc = "{\"cmd\":\"reset_counters\",\"prefix\":\"controller_control\"}";
    d = ask(rc, strlen(rc));
    assert_int_equal(json_integer_value(json_object_get(d, "reset")), 2);
    json_decref(d);
    d = ask("{\"cmd\":\"members\"}", 17);
    assert_true(json_is_array(json_object_get(d, "members")));
    json_decref(d);
    d = ask("{\"cmd\":\"pressure\"}", 18);
    assert_string_equal(json_string_value(json_object_get(d, "level")), "none");
    json_decref(d);
}

static void test_control_bad_requests(void **state)
{
    expect_error("", "empty request");
    expect_error("{", "malformed JSON");
    expect_error("{\"cmd\":\"status\"} trailing", "malformed JSON");
    expect_error("[\"status\"]", "a request is a JSON object");
    expect_error("\"status\"", "malformed JSON"); /* jansson refuses bare values */
    expect_error("{}", "missing \"cmd\"");
    expect_error("{\"cmd\":1}", "\"cmd\" must be a string");
    expect_error("{\"cmd\":null}", "\"cmd\" must be a string");
    expect_error("{\"cmd\":\"shutdown\"}", "unknown command 'shutdown'");
    expect_error("{\"cmd\":\"status\",\"cmd\":\"pause\"}", "malformed JSON"); /* duplicate key */
    expect_error("{\"cmd\":\"status\",\"verbose\":true}", "unknown field 'verbose'");
    expect_error("{\"cmd\":\"set_interval\",\"device\":\"plc1\",\"group\":\"fast\"}",
                 "interval_ms");
    expect_error("{\"cmd\":\"set_interval\",\"device\":\"plc1\",\"group\":\"fast\","
                 "\"interval_ms\":\"100\"}",
                 "must be an integer");
    expect_error("{\"cmd\":\"set_interval\",\"device\":\"plc1\",\"group\":\"fast\","
                 "\"interval_ms\":1.5}",
                 "must be an integer");
    expect_error("{\"cmd\":\"set_interval\",\"device\":\"plc1\",\"group\":\"fast\","
                 "\"interval_ms\":0}",
                 "must be an integer 1..");
    expect_error("{\"cmd\":\"set_interval\",\"device\":7,\"group\":\"fast\",\"interval_ms\":9}",
                 "must be strings");
    expect_error("{\"cmd\":\"set_interval\",\"device\":\"plc9\",\"group\":\"fast\","
                 "\"interval_ms\":9}",
                 "unknown device 'plc9'");
    expect_error("{\"cmd\":\"set_interval\",\"device\":\"plc1\",\"group\":\"slow\","
                 "\"interval_ms\":9}",
                 "has no poll group 'slow'");
    expect_error("{\"cmd\":\"reset_counters\",\"prefix\":5}", "must be a string");
    expect_error("{\"cmd\":\"st\\u0000atus\"}", "malformed JSON"); /* NUL refused */
    expect_error("{\"cmd\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
                 "\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                 "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3"
                 "\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
                 "unknown command"); /* cut inside a multi-byte character: still valid JSON */
    expect_error("{\"cmd\":\"\xff\"}", "malformed JSON");

    size_t big = CTL_REQUEST_MAX + 1;
    char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, ' ', big);
    memcpy(huge, "{\"cmd\":\"status\"}", 16);
    json_t *d = ask(huge, big);
    assert_non_null(strstr(json_string_value(json_object_get(d, "error")), "exceeds the limit"));
    json_decref(d);
    free(huge);

    /* Binary garbage: always an answer, always an object. */
    srand(7);
    char buf[512];
    for (int i = 0; i < 2000; i++) {
        size_t n = (size_t)(rand() % (int)sizeof buf);
        for (size_t k = 0; k < n; k++)
            buf[k] = (char)(i % 3 ? rand() : "{}[]\":,cmd0 "[rand() % 12]);
        json_decref(ask(buf, n));
    }
    /* And it still serves. */
    d = ask("{\"cmd\":\"status\"}", 16);
    assert_null(json_object_get(d, "error"));
    json_decref(d);
}

static void test_metrics_of_a_fresh_segment(void **state)
{
    strbuf b = {0};
    monitor_tick(ctl);
    assert_int_equal(metrics_render(ctl, &b), 0);
    assert_non_null(strstr(b.data, "# TYPE shmbus_ring_slots gauge\nshmbus_ring_slots 1024\n"));
    assert_non_null(strstr(b.data, "shmbus_group_lag_records{group=\"writer\"} 0\n"));
    assert_non_null(strstr(b.data, "# TYPE shmbus_controller_checks_total counter\n"));
    assert_non_null(strstr(
        b.data, "shmbus_controller_pressure_transitions_total{from=\"none\",to=\"low\"} 0\n"));
    strbuf_free(&b);
    /* A named counter in nanoseconds is shown in seconds. */
    shm_counter *k;
    assert_int_equal(shm_counter_open(ctl->seg, "unit_test_wait_ns_total{w=\"1\"}", SHM_COUNTER, &k), 0);
    shm_counter_add(k, 1500000000);
    assert_int_equal(metrics_render(ctl, &b), 0);
    assert_non_null(strstr(b.data, "# TYPE shmbus_unit_test_wait_seconds_total counter\n"));
    assert_non_null(strstr(b.data, "shmbus_unit_test_wait_seconds_total{w=\"1\"} 1.5\n"));
    assert_null(strstr(b.data, "wait_ns_total{")); /* (the HELP text names the original) */
    strbuf_free(&b);

    bool healthy = true;
    json_t *h = view_health(ctl, &healthy);
    assert_false(healthy); /* required role writer has no member */
    assert_string_equal(json_string_value(json_array_get(json_object_get(h, "missing"), 0)),
                        "writer");
    json_decref(h);
    shm_consumer *w;
    assert_int_equal(shm_consumer_open(ctl->seg, "writer", "writer-1", &w), 0);
    monitor_tick(ctl);
    h = view_health(ctl, &healthy);
    assert_true(healthy);
    json_decref(h);
    shm_consumer_close(&w);
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_level_names),
        cmocka_unit_test(test_rising_jumps_at_once),
        cmocka_unit_test(test_falling_one_level_per_check),
        cmocka_unit_test(test_hysteresis_prevents_flapping),
        cmocka_unit_test(test_critical_left_only_under_high),
        cmocka_unit_test(test_leak_slope),
        cmocka_unit_test(test_statm_and_psi),
        cmocka_unit_test(test_prometheus_names),
        cmocka_unit_test(test_prometheus_base_units),
        cmocka_unit_test(test_http_address),
    };
    const struct CMUnitTest with_segment[] = {
        cmocka_unit_test(test_control_good_requests),
        cmocka_unit_test(test_control_bad_requests),
        cmocka_unit_test(test_metrics_of_a_fresh_segment),
    };
    int failed = cmocka_run_group_tests(pure, NULL, NULL);
    failed += cmocka_run_group_tests(with_segment, setup_controller, teardown_controller);
    return failed;
}

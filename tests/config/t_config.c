/*
 * t_config.c — the group configuration loader: defaults, every section,
 * environment overrides, the annotated examples, and every error path with
 * the exact "file:line: field: reason" text an operator would read.
 */
#include <stdarg.h>
#include <setjmp.h>
#include <stddef.h>
#include <cmocka.h>

#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char err[8192];

static config *load_ok(const char *yaml)
{
    config *cfg = NULL;
    int rc = config_load_string(yaml, strlen(yaml), "plant.yaml", &cfg, err, sizeof err);
    if (rc != 0)
        fail_msg("expected success, got %d:\n%s", rc, err);
    assert_non_null(cfg);
    return cfg;
}

/* Loads yaml, expects -EINVAL and `line` among the reported lines. */
static void expect_error(const char *yaml, const char *line)
{
    config *cfg = NULL;
    int rc = config_load_string(yaml, strlen(yaml), "plant.yaml", &cfg, err, sizeof err);
    assert_null(cfg);
    if (rc != -EINVAL)
        fail_msg("expected -EINVAL, got %d (%s)", rc, err);
    const char *p = err;
    size_t n = strlen(line);
    while ((p = strstr(p, line)) != NULL) {
        if ((p == err || p[-1] == '\n') && (p[n] == '\0' || p[n] == '\n'))
            return;
        p++;
    }
    fail_msg("expected the line\n  %s\namong the errors:\n%s", line, err);
}

/* A device header (lines 1..6) so tag lines are predictable: the first tag
 * starts on line 7. */
#define DEV "devices:\n"                  /* 1 */ \
            "  - name: plc1\n"            /* 2 */ \
            "    host: 127.0.0.1\n"       /* 3 */ \
            "    address_base: 0\n"       /* 4 */ \
            "    poll_groups: [{name: fast, interval_ms: 100}, {name: slow, interval_ms: 5000}]\n" \
            "    tags:\n"                 /* 6 */

/* ---------------------------------------------------------------- success */

static void test_defaults(void **state)
{
    (void)state;
    unsetenv("SHMBUS_SEGMENT");
    config *cfg = NULL;
    assert_int_equal(config_defaults(&cfg, err, sizeof err), 0);
    assert_string_equal(cfg->segment.name, "shmbus");
    assert_int_equal(cfg->segment.slot_size, 128);
    assert_int_equal(cfg->segment.slot_count, 65536);
    assert_int_equal(cfg->segment.policy, CONFIG_POLICY_BACKPRESSURE);
    assert_string_equal(cfg->paths.run_dir, "/run/shmbus");
    assert_string_equal(cfg->paths.data_dir, "/var/lib/shmbus");
    assert_int_equal(cfg->writer.batch_records, 500);
    assert_int_equal(cfg->writer.batch_age_ms, 500);
    assert_true(cfg->writer.chunk_bytes == 64ull << 20);
    assert_int_equal(cfg->writer.chunk_age_s, 3600);
    assert_int_equal(cfg->writer.retention_age_s, 0);
    assert_false(cfg->writer.force_pwrite);
    assert_int_equal(cfg->stats.window, 1000);
    assert_int_equal(cfg->stats.history_s, 3600);
    assert_int_equal(cfg->stats.history_capacity, 10000);
    assert_int_equal(cfg->stats.snapshot_interval_s, 60);
    assert_int_equal(cfg->stats.publish_interval_s, 5);
    assert_int_equal(cfg->stats.shards, 1);
    assert_int_equal(cfg->stats.memory_limit_mb, 10);
    assert_string_equal(cfg->controller.http, "127.0.0.1:9108");
    assert_true(cfg->controller.pressure_low == 0.60 && cfg->controller.pressure_critical == 0.98);
    assert_int_equal(cfg->controller.check_interval_ms, 100);
    assert_false(cfg->postgres.enabled);
    assert_false(cfg->mqtt.enabled);
    assert_int_equal(cfg->n_devices, 0);
    config_free(&cfg);
    assert_null(cfg);
    config_free(&cfg); /* NULL-safe */
}

static void test_all_sections(void **state)
{
    (void)state;
    config *cfg = load_ok("segment: {name: plant-a, slot_size: 256, slot_count: 1024, "
                          "policy: drop-oldest, max_members: 64}\n"
                          "paths: {run_dir: /tmp/r, data_dir: /tmp/d}\n"
                          "writer: {batch_records: 100, batch_age_ms: 50, chunk_bytes: 8MiB,\n"
                          "         chunk_age_s: 60, retention_age_s: 86400,\n"
                          "         retention_bytes: 10G, force_pwrite: true}\n"
                          "stats: {window: 100, history_s: 60, history_capacity: 500,\n"
                          "        snapshot_interval_s: 10, publish_interval_s: 1, shards: 2}\n"
                          "controller:\n"
                          "  http: 127.0.0.1:9200\n"
                          "  pressure: {low: 0.5, moderate: 0.7, high: 0.9, critical: 0.99}\n"
                          "  check_interval_ms: 50\n"
                          "  rss_limit_mb: 64\n"
                          "  device_quota: 0.25\n"
                          "  required_roles: [poller, writer]\n"
                          "export:\n"
                          "  postgres: {conninfo: 'host=db dbname=plant', batch_records: 1000}\n"
                          "  mqtt: {host: broker, port: 8883, qos: 2, retain: yes}\n");
    assert_string_equal(cfg->segment.name, "plant-a");
    assert_int_equal(cfg->segment.slot_size, 256);
    assert_int_equal(cfg->segment.slot_count, 1024);
    assert_int_equal(cfg->segment.policy, CONFIG_POLICY_DROP_OLDEST);
    assert_int_equal(cfg->segment.max_members, 64);
    assert_string_equal(cfg->paths.run_dir, "/tmp/r");
    assert_string_equal(cfg->paths.data_dir, "/tmp/d");
    assert_int_equal(cfg->writer.batch_records, 100);
    assert_true(cfg->writer.chunk_bytes == 8ull << 20);
    assert_true(cfg->writer.retention_bytes == 10ull << 30);
    assert_true(cfg->writer.force_pwrite);
    assert_int_equal(cfg->stats.shards, 2);
    assert_string_equal(cfg->controller.http, "127.0.0.1:9200");
    assert_true(cfg->controller.pressure_moderate == 0.7);
    assert_int_equal(cfg->controller.rss_limit_mb, 64);
    assert_true(cfg->controller.device_quota == 0.25);
    assert_int_equal(cfg->controller.n_required_roles, 2);
    assert_string_equal(cfg->controller.required_roles[1], "writer");
    assert_true(cfg->postgres.enabled);
    assert_string_equal(cfg->postgres.conninfo, "host=db dbname=plant");
    assert_int_equal(cfg->postgres.batch_records, 1000);
    assert_true(cfg->mqtt.enabled);
    assert_string_equal(cfg->mqtt.host, "broker");
    assert_int_equal(cfg->mqtt.port, 8883);
    assert_int_equal(cfg->mqtt.qos, 2);
    assert_true(cfg->mqtt.retain);
    config_free(&cfg);
}

static void test_devices_and_tags(void **state)
{
    (void)state;
    config *cfg = load_ok(DEV "      - {name: t0, register: holding, address: 0, type: float32, "
                              "order: CDAB, scale: 0.1, offset: -5, unit: degC}\n"
                              "      - {name: t1, register: coil, address: 0}\n"
                              "      - {name: t2, register: holding, address: 2, type: bit, bit: 3,"
                              " poll_group: slow, priority: 5}\n"
                              "      - {name: t3, register: holding, address: 2, type: bit, bit: 4}\n"
                              "      - {name: t4, register: input, address: 10, type: uint64, "
                              "order: GHEFCDAB, unit_id: 7}\n"
                              "      - {name: t5, register: input, address: 20, type: string, "
                              "length: 3, order: BA}\n"
                              "  - name: line2\n"
                              "    transport: rtu\n"
                              "    serial: {device: /dev/ttyUSB0, baud: 19200, parity: even}\n"
                              "    address_base: 1\n"
                              "    unit_id: 12\n"
                              "    tags:\n"
                              "      - {name: r0, register: holding, address: 1, id: 100}\n"
                              "      - {name: r1, register: holding, address: 65535, type: int16}\n"
                              "  - name: gw\n"
                              "    transport: rtu-over-tcp\n"
                              "    host: gw.local\n"
                              "    port: 4001\n"
                              "    address_base: 0\n"
                              "    max_gap: 4\n"
                              "    single_request: true\n"
                              "    reconnect: {min_ms: 50, max_ms: 800}\n"
                              "    breaker: {failures: 2, open_s: 3}\n"
                              "    tags:\n"
                              "      - {name: g0, register: discrete, address: 7, unit_id: 3}\n");
    assert_int_equal(cfg->n_devices, 3);
    assert_int_equal(cfg->n_tags, 9);
    const config_device *d = &cfg->devices[0];
    assert_string_equal(d->name, "plc1");
    assert_int_equal(d->transport, CONFIG_TCP);
    assert_int_equal(d->port, 502);
    assert_int_equal(d->n_poll_groups, 2);
    assert_int_equal(d->poll_groups[1].interval_ms, 5000);
    const config_tag *t = &d->tags[0];
    assert_int_equal(t->id, 0);
    assert_int_equal(t->line, 7);
    assert_int_equal(t->type, CONFIG_T_FLOAT32);
    assert_int_equal(t->reg, CONFIG_REG_HOLDING);
    assert_int_equal(t->registers, 2);
    assert_string_equal(t->order, "CDAB");
    assert_int_equal(t->order_map[0], 2);
    assert_int_equal(t->order_map[1], 3);
    assert_int_equal(t->order_map[2], 0);
    assert_int_equal(t->order_map[3], 1);
    assert_true(t->scale == 0.1 && t->offset == -5.0);
    assert_string_equal(t->unit, "degC");
    assert_int_equal(t->unit_id, 1);
    assert_int_equal(t->poll_group, 0);
    assert_int_equal(d->tags[1].type, CONFIG_T_BOOL);
    assert_int_equal(d->tags[1].reg, CONFIG_REG_COIL);
    assert_string_equal(d->tags[1].order, "");
    assert_int_equal(d->tags[2].bit, 3);
    assert_int_equal(d->tags[2].poll_group, 1);
    assert_int_equal(d->tags[2].priority, 5);
    assert_string_equal(d->tags[4].order, "GHEFCDAB");
    assert_int_equal(d->tags[4].unit_id, 7);
    assert_int_equal(d->tags[4].registers, 4);
    assert_int_equal(d->tags[5].registers, 3);
    assert_string_equal(d->tags[5].order, "BA");
    d = &cfg->devices[1];
    assert_int_equal(d->transport, CONFIG_RTU);
    assert_string_equal(d->serial.device, "/dev/ttyUSB0");
    assert_int_equal(d->serial.baud, 19200);
    assert_int_equal(d->serial.parity, 'E');
    assert_int_equal(d->tags[0].id, 100);
    assert_int_equal(d->tags[0].unit_id, 12);
    assert_int_equal(d->tags[0].protocol_address, 0);
    assert_int_equal(d->tags[1].id, 7); /* its position in the file */
    assert_int_equal(d->tags[1].protocol_address, 65534);
    assert_string_equal(d->tags[1].order, "AB");
    assert_string_equal(d->poll_groups[0].name, "default");
    d = &cfg->devices[2];
    assert_int_equal(d->transport, CONFIG_RTU_OVER_TCP);
    assert_int_equal(d->port, 4001);
    assert_int_equal(d->max_gap, 4);
    assert_true(d->single_request);
    assert_int_equal(d->reconnect_min_ms, 50);
    assert_int_equal(d->breaker_open_s, 3);
    assert_ptr_equal(config_find_tag(cfg, "g0"), &d->tags[0]);
    assert_ptr_equal(config_find_device(cfg, "line2"), &cfg->devices[1]);
    assert_null(config_find_tag(cfg, "nope"));
    /* shmbus-sim's generators: defaults by type, and as written. */
    assert_int_equal(cfg->devices[0].tags[0].sim.kind, CONFIG_SIM_SINE);
    assert_int_equal(cfg->devices[0].tags[1].sim.kind, CONFIG_SIM_TOGGLE);
    assert_int_equal(cfg->devices[0].tags[4].sim.kind, CONFIG_SIM_COUNTER);
    assert_int_equal(cfg->devices[0].tags[5].sim.kind, CONFIG_SIM_CONSTANT);
    assert_string_equal(cfg->devices[0].tags[5].sim.text, "t5");
    assert_int_equal(cfg->devices[0].tags[4].sim.seed, 4);
    config_free(&cfg);
    cfg = load_ok(DEV "      - {name: t0, register: holding, address: 0, type: float32,\n"
                      "         sim: {kind: random_walk, min: -1, max: 1, step: 0.25, period_s: 2,"
                      " seed: 9}}\n"
                      "      - {name: t1, register: holding, address: 2, type: string, length: 2,"
                      " sim: {text: ABCD}}\n");
    const config_sim *sim = &cfg->devices[0].tags[0].sim;
    assert_int_equal(sim->kind, CONFIG_SIM_RANDOM_WALK);
    assert_true(sim->min == -1 && sim->max == 1 && sim->step == 0.25 && sim->period_s == 2);
    assert_int_equal(sim->seed, 9);
    assert_string_equal(cfg->devices[0].tags[1].sim.text, "ABCD");
    config_free(&cfg);
}

static void test_environment(void **state)
{
    (void)state;
    setenv("SHMBUS_SEGMENT", "envseg", 1);
    setenv("SHMBUS_SLOT_COUNT", "1024", 1);
    setenv("SHMBUS_DATA_DIR", "/tmp/envdata", 1);
    setenv("SHMBUS_RUN_DIR", "/tmp/envrun", 1);
    config *cfg = load_ok("segment: {name: fromfile, slot_count: 4096}\n");
    assert_string_equal(cfg->segment.name, "envseg");
    assert_int_equal(cfg->segment.slot_count, 1024);
    assert_string_equal(cfg->paths.data_dir, "/tmp/envdata");
    assert_string_equal(cfg->paths.run_dir, "/tmp/envrun");
    config_free(&cfg);
    setenv("SHMBUS_SLOT_COUNT", "1000", 1);
    expect_error("", "plant.yaml: environment SHMBUS_SLOT_COUNT: '1000' is not a power of two in "
                     "64..1073741824");
    setenv("SHMBUS_SLOT_COUNT", "1024", 1);
    setenv("SHMBUS_SEGMENT", "a/b", 1);
    expect_error("", "plant.yaml: environment SHMBUS_SEGMENT: 'a/b' is not a segment name (1..31 "
                     "characters, no '/' or spaces)");
    unsetenv("SHMBUS_SEGMENT");
    unsetenv("SHMBUS_SLOT_COUNT");
    unsetenv("SHMBUS_DATA_DIR");
    unsetenv("SHMBUS_RUN_DIR");
}

static void test_examples(void **state)
{
    (void)state;
    const char *src = getenv("SHMBUS_SOURCE_DIR");
    if (!src)
        src = ".";
    const char *files[] = {"deploy/examples/sim.yaml", "deploy/examples/plant.yaml"};
    for (size_t i = 0; i < 2; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", src, files[i]);
        config *cfg = NULL;
        int rc = config_load(path, &cfg, err, sizeof err);
        if (rc != 0)
            fail_msg("%s: %d\n%s", path, rc, err);
        assert_true(cfg->n_devices > 0);
        config_free(&cfg);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/deploy/examples/plant.yaml", src);
    config *cfg = NULL;
    assert_int_equal(config_load(path, &cfg, err, sizeof err), 0);
    int seen[3] = {0};
    for (size_t i = 0; i < cfg->n_devices; i++)
        seen[cfg->devices[i].transport] = 1;
    assert_true(seen[CONFIG_TCP] && seen[CONFIG_RTU] && seen[CONFIG_RTU_OVER_TCP]);
    config_free(&cfg);
}

/* ----------------------------------------------------------------- errors */

static void test_file_errors(void **state)
{
    (void)state;
    config *cfg = NULL;
    assert_int_equal(config_load("/nonexistent/plant.yaml", &cfg, err, sizeof err), -ENOENT);
    assert_string_equal(err, "/nonexistent/plant.yaml: cannot open: No such file or directory");
    assert_int_equal(config_load("/tmp", &cfg, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "/tmp: not a regular file"));
    char tmpl[] = "/tmp/t_config_XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    const char *text = "segment:\n  slot_count: 100\n";
    assert_int_equal(write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    assert_int_equal(config_load(tmpl, &cfg, err, sizeof err), -EINVAL);
    char want[256];
    snprintf(want, sizeof want, "%s:2: segment.slot_count: 100 is not a power of two", tmpl);
    assert_string_equal(err, want);
    unlink(tmpl);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("segment:\n  name: a\n   bad: [\n", "plant.yaml:3: YAML syntax: mapping values "
                                                  "are not allowed in this context");
    expect_error("- just\n- a list\n", "plant.yaml:1: expected a mapping (the top level of the file)");
    expect_error("segment: {}\n---\nwriter: {}\n",
                 "plant.yaml:3: more than one YAML document in the file (only one is read)");
    expect_error("segment: {name: x}\nsegmnt: {}\n",
                 "plant.yaml:2: unknown key 'segmnt' (expected segment, paths, writer, stats, "
                 "controller, export, devices)");
    expect_error("segment:\n  name: a\n  name: b\n",
                 "plant.yaml:3: segment.name: duplicate key (first given on line 2)");
    expect_error("segment: [1, 2]\n", "plant.yaml:1: segment: expected a mapping (the segment section)");
}

static void test_section_errors(void **state)
{
    (void)state;
    expect_error("segment:\n  slot_size: 100\n",
                 "plant.yaml:2: segment.slot_size: 100 is not a multiple of 64");
    expect_error("segment:\n  slot_size: 8192\n",
                 "plant.yaml:2: segment.slot_size: 8192 is out of range (64..4096)");
    expect_error("segment:\n  policy: drop-newest\n",
                 "plant.yaml:2: segment.policy: unknown overflow policy 'drop-newest' (expected "
                 "backpressure, drop-oldest)");
    expect_error("segment:\n  name: 'has space'\n",
                 "plant.yaml:2: segment.name: 'has space' is not a segment name (1..31 characters,"
                 " no '/' or spaces)");
    expect_error("segment:\n  max_members: -3\n",
                 "plant.yaml:2: segment.max_members: '-3' is not a non-negative integer");
    expect_error("segment:\n  slot_count: [1]\n",
                 "plant.yaml:2: segment.slot_count: expected an integer, got a list");
    expect_error("writer:\n  chunk_bytes: 64 parsecs\n",
                 "plant.yaml:2: writer.chunk_bytes: '64 parsecs' is not a size (an integer with an "
                 "optional K, M, G, T suffix)");
    expect_error("writer:\n  force_pwrite: maybe\n",
                 "plant.yaml:2: writer.force_pwrite: 'maybe' is not a boolean (expected true or "
                 "false)");
    expect_error("writer:\n  batch_records: 0\n",
                 "plant.yaml:2: writer.batch_records: 0 is out of range (1..1048576)");
    expect_error("stats:\n  shards: 40\n", "plant.yaml:2: stats.shards: 40 is out of range (1..16)");
    expect_error("stats:\n  windw: 5\n",
                 "plant.yaml:2: stats: unknown key 'windw' (expected window, history_s, "
                 "history_capacity, snapshot_interval_s, publish_interval_s, shards, "
                 "memory_limit_mb)");
    expect_error("controller:\n  pressure: {low: 0.9, moderate: 0.8}\n",
                 "plant.yaml:2: controller.pressure: thresholds must rise: low 0.9 < moderate 0.8 "
                 "< high 0.95 < critical 0.98");
    expect_error("controller:\n  pressure: {high: 1.5}\n",
                 "plant.yaml:2: controller.pressure.high: 1.5 is out of range (0..1)");
    expect_error("controller:\n  http: localhost\n",
                 "plant.yaml:2: controller.http: 'localhost' is not an address (expected "
                 "host:port, e.g. 127.0.0.1:9108)");
    expect_error("controller:\n  device_quota: lots\n",
                 "plant.yaml:2: controller.device_quota: 'lots' is not a finite number");
    expect_error("controller:\n  required_roles: [poller, {a: 1}]\n",
                 "plant.yaml:2: controller.required_roles[1]: expected a role name (1..31 "
                 "characters)");
    expect_error("export:\n  mqtt: {qos: 3}\n", "plant.yaml:2: export.mqtt.qos: 3 is out of range (0..2)");
    expect_error("export:\n  kafka: {}\n",
                 "plant.yaml:2: export: unknown key 'kafka' (expected postgres, mqtt)");
    expect_error("paths:\n  run_dir: ''\n", "plant.yaml:2: paths.run_dir: must not be empty");
}

/* The export section: every key of both targets, their defaults, and the
 * checks that keep a bad broker or database setting out of a running export. */
static void test_export_section(void **state)
{
    (void)state;
    config *cfg = NULL;
    assert_int_equal(config_defaults(&cfg, err, sizeof err), 0);
    assert_int_equal(cfg->postgres.batch_records, 500);
    assert_int_equal(cfg->postgres.batch_age_ms, 500);
    assert_int_equal(cfg->postgres.connect_timeout_s, 5);
    assert_int_equal(cfg->postgres.connections, 2);
    assert_int_equal(cfg->postgres.max_batches_per_commit, 16);
    assert_string_equal(cfg->postgres.source, "");
    assert_true(cfg->postgres.spool_max_bytes == 1ull << 30);
    assert_int_equal(cfg->mqtt.qos, 1);
    assert_int_equal(cfg->mqtt.keepalive_s, 30);
    assert_int_equal(cfg->mqtt.batch_records, 500);
    assert_int_equal(cfg->mqtt.ack_timeout_ms, 30000);
    assert_int_equal(cfg->mqtt.backoff_min_ms, 200);
    assert_int_equal(cfg->mqtt.backoff_max_ms, 10000);
    assert_string_equal(cfg->mqtt.tls_ca_file, "");
    assert_false(cfg->mqtt.tls_insecure);
    config_free(&cfg);

    cfg = load_ok("export:\n"
                  "  postgres:\n"
                  "    conninfo: 'postgresql://shmbus@db/plant?sslmode=verify-full'\n"
                  "    password_file: /etc/shmbus/pg.pass\n"
                  "    source: gw1\n"
                  "    batch_records: 2000\n"
                  "    batch_age_ms: 250\n"
                  "    connect_timeout_s: 3\n"
                  "    connections: 3\n"
                  "    max_batches_per_commit: 4\n"
                  "    backoff_min_ms: 50\n"
                  "    backoff_max_ms: 2000\n"
                  "    spool_max_bytes: 64MiB\n"
                  "  mqtt:\n"
                  "    host: broker\n"
                  "    port: 8883\n"
                  "    client_id: gw1\n"
                  "    prefix: plant/gw1\n"
                  "    keepalive_s: 10\n"
                  "    batch_records: 100\n"
                  "    batch_age_ms: 20\n"
                  "    ack_timeout_ms: 5000\n"
                  "    backoff_min_ms: 100\n"
                  "    backoff_max_ms: 100\n"
                  "    spool_max_bytes: 2G\n"
                  "    tls_ca_file: /etc/ssl/ca.pem\n"
                  "    tls_cert_file: /etc/shmbus/c.pem\n"
                  "    tls_key_file: /etc/shmbus/c.key\n"
                  "    tls_insecure: true\n");
    assert_true(cfg->postgres.enabled);
    assert_string_equal(cfg->postgres.conninfo, "postgresql://shmbus@db/plant?sslmode=verify-full");
    assert_string_equal(cfg->postgres.password_file, "/etc/shmbus/pg.pass");
    assert_string_equal(cfg->postgres.source, "gw1");
    assert_int_equal(cfg->postgres.batch_records, 2000);
    assert_int_equal(cfg->postgres.batch_age_ms, 250);
    assert_int_equal(cfg->postgres.connect_timeout_s, 3);
    assert_int_equal(cfg->postgres.connections, 3);
    assert_int_equal(cfg->postgres.max_batches_per_commit, 4);
    assert_int_equal(cfg->postgres.backoff_min_ms, 50);
    assert_int_equal(cfg->postgres.backoff_max_ms, 2000);
    assert_true(cfg->postgres.spool_max_bytes == 64ull << 20);
    assert_true(cfg->mqtt.enabled);
    assert_string_equal(cfg->mqtt.client_id, "gw1");
    assert_string_equal(cfg->mqtt.prefix, "plant/gw1");
    assert_int_equal(cfg->mqtt.keepalive_s, 10);
    assert_int_equal(cfg->mqtt.batch_records, 100);
    assert_int_equal(cfg->mqtt.batch_age_ms, 20);
    assert_int_equal(cfg->mqtt.ack_timeout_ms, 5000);
    assert_int_equal(cfg->mqtt.backoff_min_ms, 100);
    assert_true(cfg->mqtt.spool_max_bytes == 2ull << 30);
    assert_string_equal(cfg->mqtt.tls_ca_file, "/etc/ssl/ca.pem");
    assert_string_equal(cfg->mqtt.tls_cert_file, "/etc/shmbus/c.pem");
    assert_string_equal(cfg->mqtt.tls_key_file, "/etc/shmbus/c.key");
    assert_true(cfg->mqtt.tls_insecure);
    config_free(&cfg);

    /* An empty section switches the target on with every default. */
    cfg = load_ok("export:\n  postgres:\n  mqtt: {}\n");
    assert_true(cfg->postgres.enabled);
    assert_true(cfg->mqtt.enabled);
    assert_int_equal(cfg->postgres.batch_records, 500);
    config_free(&cfg);

    expect_error("export:\n  postgres: {backoff_min_ms: 5000, backoff_max_ms: 100}\n",
                 "plant.yaml:2: export.postgres: backoff_min_ms 5000 is above backoff_max_ms 100");
    expect_error("export:\n  postgres: {max_batches_per_commit: 17}\n",
                 "plant.yaml:2: export.postgres.max_batches_per_commit: 17 is out of range "
                 "(1..16)");
    expect_error("export:\n  postgres: {spool_max_bytes: 1K}\n",
                 "plant.yaml:2: export.postgres.spool_max_bytes: '1K' is out of range "
                 "(1048576..17592186044416 bytes)");
    expect_error("export:\n  postgres: {dbname: plant}\n",
                 "plant.yaml:2: export.postgres: unknown key 'dbname' (expected conninfo, "
                 "password_file, source, batch_records, batch_age_ms, connect_timeout_s, "
                 "connections, max_batches_per_commit, backoff_min_ms, backoff_max_ms, "
                 "spool_max_bytes)");
    expect_error("export:\n  mqtt: {prefix: 'plant/#'}\n",
                 "plant.yaml:2: export.mqtt.prefix: 'plant/#' is not a topic prefix (not empty, "
                 "no '+' or '#', no leading or trailing '/')");
    expect_error("export:\n  mqtt: {prefix: 'plant/'}\n",
                 "plant.yaml:2: export.mqtt.prefix: 'plant/' is not a topic prefix (not empty, "
                 "no '+' or '#', no leading or trailing '/')");
    expect_error("export:\n  mqtt: {client_id: ''}\n",
                 "plant.yaml:2: export.mqtt.client_id: must not be empty");
    expect_error("export:\n  mqtt: {tls_cert_file: /c.pem, tls_ca_file: /ca.pem}\n",
                 "plant.yaml:2: export.mqtt: tls_cert_file and tls_key_file go together");
    expect_error("export:\n  mqtt: {tls_cert_file: /c.pem, tls_key_file: /c.key}\n",
                 "plant.yaml:2: export.mqtt: a client certificate needs tls_ca_file or "
                 "tls_ca_path");
    expect_error("export:\n  mqtt: {batch_records: 0}\n",
                 "plant.yaml:2: export.mqtt.batch_records: 0 is out of range (1..20000)");
    expect_error("export:\n  postgres: {connections: 5}\n",
                 "plant.yaml:2: export.postgres.connections: 5 is out of range (1..4)");
}

static void test_device_errors(void **state)
{
    (void)state;
    expect_error("devices:\n  - host: x\n    address_base: 0\n",
                 "plant.yaml:2: devices[0].name: required: every device needs a name");
    expect_error("devices:\n  - name: 'a b'\n    host: x\n    address_base: 0\n",
                 "plant.yaml:2: devices[0].name: 'a b' is not a valid name (1..48 letters, digits "
                 "or _ . - : /)");
    expect_error("devices:\n  - name: a\n    address_base: 0\n",
                 "plant.yaml:2: devices[0].host: required for transport tcp");
    expect_error("devices:\n  - name: a\n    host: x\n",
                 "plant.yaml:2: devices[0].address_base: required: 0 if tag addresses are "
                 "protocol addresses (as on the wire), 1 if they are register numbers counted "
                 "from 1");
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 2\n",
                 "plant.yaml:4: devices[0].address_base: 2 is out of range (0..1)");
    expect_error("devices:\n  - name: a\n    transport: udp\n    host: x\n    address_base: 0\n",
                 "plant.yaml:3: devices[0].transport: unknown transport 'udp' (expected tcp, rtu, "
                 "rtu-over-tcp)");
    expect_error("devices:\n  - name: a\n    transport: rtu\n    address_base: 0\n",
                 "plant.yaml:2: devices[0].serial: required for transport rtu (device, baud, ...)");
    expect_error("devices:\n  - name: a\n    transport: rtu\n    host: x\n    serial: {device: "
                 "/dev/ttyS0}\n    address_base: 0\n",
                 "plant.yaml:4: devices[0].host: an rtu device is on a serial line (did you mean "
                 "transport: rtu-over-tcp?)");
    expect_error("devices:\n  - name: a\n    transport: rtu\n    serial: {device: /dev/ttyS0, "
                 "parity: mark}\n    address_base: 0\n",
                 "plant.yaml:4: devices[0].serial.parity: unknown parity 'mark' (expected none, "
                 "even, odd, N, E, O)");
    expect_error("devices:\n  - name: a\n    transport: rtu\n    serial: {baud: 9600}\n"
                 "    address_base: 0\n",
                 "plant.yaml:4: devices[0].serial.device: required (e.g. /dev/ttyUSB0)");
    expect_error("devices:\n  - name: a\n    host: x\n    serial: {device: /dev/ttyS0}\n"
                 "    address_base: 0\n",
                 "plant.yaml:4: devices[0].serial: a tcp device has no serial line (did you mean "
                 "transport: rtu?)");
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 0\n    unit_id: 0\n",
                 "plant.yaml:5: devices[0].unit_id: 0 is out of range (1..247)");
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 0\n    max_registers: 126\n",
                 "plant.yaml:5: devices[0].max_registers: 126 is out of range (1..125)");
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 0\n    max_bits: 2001\n",
                 "plant.yaml:5: devices[0].max_bits: 2001 is out of range (1..2000)");
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 0\n    port: 70000\n",
                 "plant.yaml:5: devices[0].port: 70000 is out of range (1..65535)");
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 0\n"
                 "    reconnect: {min_ms: 500, max_ms: 100}\n",
                 "plant.yaml:5: devices[0].reconnect.max_ms: 100 is below min_ms 500");
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 0\n"
                 "    breaker: {failures: 2, open: 5}\n",
                 "plant.yaml:5: devices[0].breaker: unknown key 'open' (expected failures, open_s)");
    expect_error("devices:\n  - name: a\n    host: x\n    adress_base: 0\n",
                 "plant.yaml:4: devices[0]: unknown key 'adress_base' (expected name, transport, "
                 "host, port, serial, unit_id, response_timeout_ms, byte_timeout_ms, pause_ms, "
                 "address_base, max_gap, max_registers, max_bits, single_request, reconnect, "
                 "breaker, poll_groups, tags)");
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 0\n"
                 "  - name: a\n    host: y\n    address_base: 0\n",
                 "plant.yaml:5: devices[1].name: duplicate device name 'a' (first on line 2)");
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 0\n"
                 "    poll_groups: [{name: f, interval_ms: 10}, {name: f}]\n",
                 "plant.yaml:5: devices[0].poll_groups[1].name: duplicate poll group 'f' (first "
                 "on line 5)");
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 0\n"
                 "    poll_groups: [{name: f, interval_ms: 0}]\n",
                 "plant.yaml:5: devices[0].poll_groups[0].interval_ms: 0 is out of range "
                 "(1..86400000)");
    expect_error("devices: {name: a}\n", "plant.yaml:1: devices: expected a list");
    expect_error("devices:\n  -\n", "plant.yaml:2: devices[0]: empty device entry");
}

static void test_tag_errors(void **state)
{
    (void)state;
    expect_error(DEV "      - {name: t0, register: holding, address: 0, type: flot32}\n",
                 "plant.yaml:7: devices[0].tags[0].type: unknown data type 'flot32' (expected bool,"
                 " bit, int16, uint16, int32, uint32, int64, uint64, float32, float64, string)");
    expect_error(DEV "      - {name: t0, register: holdings, address: 0}\n",
                 "plant.yaml:7: devices[0].tags[0].register: unknown register type 'holdings' "
                 "(expected coil, discrete, input, holding)");
    expect_error(DEV "      - {name: t0, address: 0}\n",
                 "plant.yaml:7: devices[0].tags[0].register: required (coil, discrete, input or "
                 "holding)");
    expect_error(DEV "      - {name: t0, register: input}\n",
                 "plant.yaml:7: devices[0].tags[0].address: required");
    expect_error(DEV "      - {register: input, address: 1}\n",
                 "plant.yaml:7: devices[0].tags[0].name: required: every tag needs a name");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, type: float32, order: ABCC}\n",
                 "plant.yaml:7: devices[0].tags[0].order: unknown byte order 'ABCC' for float32 "
                 "(expected 4 letters A..D, e.g. ABCD, BADC, CDAB, DCBA)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, type: float64, order: CDAB}\n",
                 "plant.yaml:7: devices[0].tags[0].order: unknown byte order 'CDAB' for float64 "
                 "(expected 8 letters A..H, e.g. ABCDEFGH, HGFEDCBA, BADCFEHG, GHEFCDAB)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, type: int16, order: ABCD}\n",
                 "plant.yaml:7: devices[0].tags[0].order: unknown byte order 'ABCD' for int16 "
                 "(expected 2 letters A..B, e.g. AB, BA)");
    expect_error(DEV "      - {name: t0, register: coil, address: 0, order: AB}\n",
                 "plant.yaml:7: devices[0].tags[0].order: a bool tag has no byte order");
    expect_error(DEV "      - {name: t0, register: coil, address: 0, type: float32}\n",
                 "plant.yaml:7: devices[0].tags[0].type: a coil holds single bits: its type must "
                 "be bool (got float32)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, type: bit}\n",
                 "plant.yaml:7: devices[0].tags[0].bit: required for type bit (0..15, 0 = least "
                 "significant)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, type: bit, bit: 16}\n",
                 "plant.yaml:7: devices[0].tags[0].bit: 16 is out of range (0..15)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, type: uint16, bit: 1}\n",
                 "plant.yaml:7: devices[0].tags[0].bit: only a tag of type bit has a bit number");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, type: string}\n",
                 "plant.yaml:7: devices[0].tags[0].length: required for type string (registers, "
                 "1..4)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, type: string, length: 9}\n",
                 "plant.yaml:7: devices[0].tags[0].length: 9 is out of range (1..4)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, length: 2}\n",
                 "plant.yaml:7: devices[0].tags[0].length: only a tag of type string has a length");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, unit_id: 248}\n",
                 "plant.yaml:7: devices[0].tags[0].unit_id: 248 is out of range (1..247)");
    expect_error(DEV "      - {name: t0, register: holding, address: 65536}\n",
                 "plant.yaml:7: devices[0].tags[0].address: 65536 is out of range (0..65535 with "
                 "address_base 0)");
    expect_error(DEV "      - {name: t0, register: holding, address: 65535, type: float32}\n",
                 "plant.yaml:7: devices[0].tags[0].address: float32 spans 2 registers from 65535: "
                 "past the end of the table (65535)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, poll_group: medium}\n",
                 "plant.yaml:7: devices[0].tags[0].poll_group: unknown poll group 'medium' (device "
                 "'plc1' has: fast, slow)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, scale: 0}\n",
                 "plant.yaml:7: devices[0].tags[0].scale: 0 would turn every value into 0");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, deadband: -1}\n",
                 "plant.yaml:7: devices[0].tags[0].deadband: -1 is out of range (0..1e+300)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, priority: 300}\n",
                 "plant.yaml:7: devices[0].tags[0].priority: 300 is out of range (0..255)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, colour: red}\n",
                 "plant.yaml:7: devices[0].tags[0]: unknown key 'colour' (expected name, id, "
                 "unit_id, register, address, type, bit, length, order, scale, offset, deadband, "
                 "max_silence_s, priority, unit, poll_group, sim)");
    expect_error(DEV "      - just-a-string\n",
                 "plant.yaml:7: devices[0].tags[0]: expected a mapping (a tag: name, register, "
                 "address, type, ...)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, sim: {kind: square}}\n",
                 "plant.yaml:7: devices[0].tags[0].sim.kind: unknown generator 'square' (expected "
                 "constant, ramp, sine, counter, random_walk, toggle)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, sim: {min: 5, max: 1}}\n",
                 "plant.yaml:7: devices[0].tags[0].sim.max: 1 is below min 5");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, sim: {period_s: 0}}\n",
                 "plant.yaml:7: devices[0].tags[0].sim.period_s: 0 is out of range (0.001..1e+09)");
    /* Address base 1: address 0 does not exist. */
    expect_error("devices:\n  - name: a\n    host: x\n    address_base: 1\n    tags:\n"
                 "      - {name: t0, register: input, address: 0}\n",
                 "plant.yaml:6: devices[0].tags[0].address: 0 is out of range (1..65536 with "
                 "address_base 1)");
}

static void test_cross_errors(void **state)
{
    (void)state;
    expect_error(DEV "      - {name: t0, register: holding, address: 0}\n"
                     "      - {name: t0, register: holding, address: 1}\n",
                 "plant.yaml:8: devices[0].tags[1].name: duplicate tag name 't0' (first on line 7)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0}\n"
                     "      - {name: t1, register: holding, address: 1, id: 0}\n",
                 "plant.yaml:8: devices[0].tags[1].id: duplicate tag id 0 (tag 't0' on line 7 has "
                 "it; ids default to the tag's position in the file)");
    expect_error(DEV "      - {name: t0, register: holding, address: 0, id: 5000}\n",
                 "plant.yaml:7: devices[0].tags[0].id: tag id 5000 is beyond the catalog "
                 "(segment.catalog_capacity 4096)");
    expect_error(DEV "      - {name: t0, register: holding, address: 10, type: float32}\n"
                     "      - {name: t1, register: holding, address: 11}\n",
                 "plant.yaml:8: devices[0].tags[1].address: holding 11..11 of unit 1 overlaps tag "
                 "'t0' (line 7, holding 10..11)");
    /* The later tag in the file is named even when its address is lower. */
    expect_error(DEV "      - {name: t0, register: input, address: 11}\n"
                     "      - {name: t1, register: input, address: 8, type: uint64}\n",
                 "plant.yaml:8: devices[0].tags[1].address: input 8..11 of unit 1 overlaps tag "
                 "'t0' (line 7, input 11..11)");
    expect_error(DEV "      - {name: t0, register: holding, address: 3, type: bit, bit: 1}\n"
                     "      - {name: t1, register: holding, address: 3, type: bit, bit: 2}\n"
                     "      - {name: t2, register: holding, address: 3, type: bit, bit: 1}\n",
                 "plant.yaml:9: devices[0].tags[2].address: holding 3..3 of unit 1 overlaps tag "
                 "'t0' (line 7, holding 3..3)");
    expect_error(DEV "      - {name: t0, register: holding, address: 3, type: bit, bit: 1}\n"
                     "      - {name: t1, register: holding, address: 3}\n",
                 "plant.yaml:8: devices[0].tags[1].address: holding 3..3 of unit 1 overlaps tag "
                 "'t0' (line 7, holding 3..3)");
    /* Not overlaps: other unit id, other table, other device, bits of one register. */
    config *cfg = load_ok(DEV "      - {name: t0, register: holding, address: 3, type: int32}\n"
                              "      - {name: t1, register: holding, address: 3, unit_id: 2}\n"
                              "      - {name: t2, register: input, address: 3}\n"
                              "      - {name: t3, register: holding, address: 5, type: bit, bit: 0}\n"
                              "      - {name: t4, register: holding, address: 5, type: bit, bit: 15}\n"
                              "      - {name: t5, register: holding, address: 6}\n"
                              "  - name: plc2\n    host: y\n    address_base: 0\n    tags:\n"
                              "      - {name: t6, register: holding, address: 3}\n");
    config_free(&cfg);
}

static void test_many_errors_reported(void **state)
{
    (void)state;
    const char *yaml = DEV "      - {name: t0, register: holding, address: 0, type: flot32}\n"
                           "      - {name: t1, register: holdin, address: 0}\n"
                           "      - {name: t2, register: input, address: 0, unit_id: 300}\n";
    config *cfg = NULL;
    assert_int_equal(config_load_string(yaml, strlen(yaml), "plant.yaml", &cfg, err, sizeof err),
                     -EINVAL);
    int lines = 1;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 3);
    assert_non_null(strstr(err, "plant.yaml:7:"));
    assert_non_null(strstr(err, "plant.yaml:8:"));
    assert_non_null(strstr(err, "plant.yaml:9:"));
    /* A flood of errors stops at a bound with a note. */
    char big[40000] = DEV;
    for (int i = 0; i < 60; i++)
        snprintf(big + strlen(big), sizeof big - strlen(big),
                 "      - {name: x%d, register: bad, address: %d}\n", i, i);
    assert_int_equal(config_load_string(big, strlen(big), "plant.yaml", &cfg, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "plant.yaml: too many errors, stopping here"));
    /* A small error buffer is truncated, never overrun. */
    char tiny[16];
    assert_int_equal(config_load_string(yaml, strlen(yaml), "plant.yaml", &cfg, tiny, sizeof tiny),
                     -EINVAL);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_order_parse(void **state)
{
    (void)state;
    uint8_t map[8];
    assert_int_equal(config_parse_order("ABCD", 4, map), 0);
    assert_int_equal(map[0], 0);
    assert_int_equal(map[3], 3);
    assert_int_equal(config_parse_order("dcba", 4, map), 0);
    assert_int_equal(map[0], 3);
    assert_int_equal(config_parse_order("HGFEDCBA", 8, map), 0);
    assert_int_equal(map[0], 7);
    assert_int_equal(config_parse_order("ABCDEFGA", 8, map), -1);
    assert_int_equal(config_parse_order("ABCE", 4, map), -1);
    assert_int_equal(config_parse_order("ABC", 4, map), -1);
    assert_int_equal(config_type_registers(CONFIG_T_FLOAT64), 4);
    assert_string_equal(config_type_name(CONFIG_T_UINT32), "uint32");
    assert_string_equal(config_register_name(CONFIG_REG_INPUT), "input");
    assert_string_equal(config_transport_name(CONFIG_RTU_OVER_TCP), "rtu-over-tcp");
}

int main(void)
{
    unsetenv("SHMBUS_SEGMENT");
    unsetenv("SHMBUS_SLOT_COUNT");
    unsetenv("SHMBUS_SLOT_SIZE");
    unsetenv("SHMBUS_DATA_DIR");
    unsetenv("SHMBUS_RUN_DIR");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),       cmocka_unit_test(test_all_sections),
        cmocka_unit_test(test_devices_and_tags), cmocka_unit_test(test_environment),
        cmocka_unit_test(test_examples),       cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_syntax_errors),  cmocka_unit_test(test_section_errors),
        cmocka_unit_test(test_device_errors),  cmocka_unit_test(test_tag_errors),
        cmocka_unit_test(test_cross_errors),   cmocka_unit_test(test_many_errors_reported),
        cmocka_unit_test(test_order_parse),    cmocka_unit_test(test_export_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

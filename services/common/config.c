/*
 * config.c — loads the group configuration (see config.h): reads the file,
 * lets libyaml build the document, fills the service sections (segment,
 * paths, writer, stats, controller, export), hands `devices` to
 * config_devices.c, applies environment overrides and frees it all.
 */
#include "config.h"
#include "config_internal.h"
#include "config_reader.h"

#include <errno.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (16u << 20) /* a plant file is kilobytes; refuse runaway input */

static const char *const top_keys[] = {"segment", "paths",  "writer",  "stats",
                                       "controller", "export", "devices", NULL};

static int set_defaults(config *cfg)
{
    cfg->segment.name = strdup("shmbus");
    cfg->segment.slot_size = 128;
    cfg->segment.slot_count = 65536;
    cfg->segment.policy = CONFIG_POLICY_BACKPRESSURE;
    cfg->segment.max_members = 128;
    cfg->segment.catalog_capacity = 4096;
    cfg->segment.counter_capacity = 2048;
    cfg->paths.run_dir = strdup("/run/shmbus");
    cfg->paths.data_dir = strdup("/var/lib/shmbus");
    cfg->writer = (config_writer){.batch_records = 500,
                                  .batch_age_ms = 500,
                                  .chunk_bytes = 64ull << 20,
                                  .chunk_age_s = 3600};
    cfg->stats = (config_stats){.window = 1000,
                                .history_s = 3600,
                                .history_capacity = 10000,
                                .snapshot_interval_s = 60,
                                .publish_interval_s = 5,
                                .shards = 1,
                                .memory_limit_mb = 10};
    cfg->controller = (config_controller){.http = strdup("127.0.0.1:9108"),
                                          .pressure_low = 0.60,
                                          .pressure_moderate = 0.80,
                                          .pressure_high = 0.95,
                                          .pressure_critical = 0.98,
                                          .pressure_hysteresis = 0.05,
                                          .check_interval_ms = 100,
                                          .leak_window_s = 300,
                                          .leak_growth_mb_per_min = 10.0};
    cfg->postgres = (config_postgres){.conninfo = strdup(""),
                                      .password_file = strdup(""),
                                      .source = strdup(""),
                                      .batch_records = 500,
                                      .batch_age_ms = 500,
                                      .connect_timeout_s = 5,
                                      .connections = 2,
                                      .backoff_min_ms = 200,
                                      .backoff_max_ms = 10000,
                                      .spool_max_bytes = 1ull << 30};
    cfg->mqtt = (config_mqtt){.host = strdup("127.0.0.1"),
                              .port = 1883,
                              .client_id = strdup("shmbus"),
                              .prefix = strdup("shmbus"),
                              .qos = 1,
                              .username = strdup(""),
                              .password_file = strdup(""),
                              .keepalive_s = 30,
                              .batch_records = 500,
                              .batch_age_ms = 500,
                              .ack_timeout_ms = 30000,
                              .backoff_min_ms = 200,
                              .backoff_max_ms = 10000,
                              .spool_max_bytes = 1ull << 30,
                              .tls_ca_file = strdup(""),
                              .tls_ca_path = strdup(""),
                              .tls_cert_file = strdup(""),
                              .tls_key_file = strdup("")};
    if (!cfg->segment.name || !cfg->paths.run_dir || !cfg->paths.data_dir ||
        !cfg->controller.http || !cfg->postgres.conninfo || !cfg->postgres.password_file ||
        !cfg->mqtt.host || !cfg->mqtt.client_id || !cfg->mqtt.prefix || !cfg->mqtt.username ||
        !cfg->mqtt.password_file || !cfg->postgres.source || !cfg->mqtt.tls_ca_file ||
        !cfg->mqtt.tls_ca_path || !cfg->mqtt.tls_cert_file || !cfg->mqtt.tls_key_file)
        return -ENOMEM;
    return 0;
}

static bool is_power_of_two(uint64_t x)
{
    return x && (x & (x - 1)) == 0;
}

static bool valid_segment_name(const char *s)
{
    if (!*s || strlen(s) > 31)
        return false;
    for (; *s; s++)
        if (*s == '/' || *s <= ' ' || *s == 0x7f)
            return false;
    return true;
}

/* ---------------------------------------------------------------- sections */

static void read_segment(creader *r, yaml_node_t *node, config_segment *s)
{
    static const char *const keys[] = {"name",        "slot_size",        "slot_count",
                                       "policy",      "max_members",      "catalog_capacity",
                                       "counter_capacity", NULL};
    static const char *const policies[] = {"backpressure", "drop-oldest", NULL};
    static const int policy_values[] = {CONFIG_POLICY_BACKPRESSURE, CONFIG_POLICY_DROP_OLDEST};
    size_t saved = cr_push_key(r, "segment");
    if (cr_expect_map(r, node, "the segment section") > 0) {
        cr_check_keys(r, node, keys);
        if (cr_str(r, node, "name", 31, &s->name) > 0 && !valid_segment_name(s->name))
            cr_error(r, cr_get(r, node, "name"), "name",
                     "'%s' is not a segment name (1..31 characters, no '/' or spaces)", s->name);
        if (cr_u32(r, node, "slot_size", 64, 4096, &s->slot_size) > 0 && s->slot_size % 64)
            cr_error(r, cr_get(r, node, "slot_size"), "slot_size",
                     "%u is not a multiple of 64", s->slot_size);
        if (cr_u32(r, node, "slot_count", 64, 1u << 30, &s->slot_count) > 0 &&
            !is_power_of_two(s->slot_count))
            cr_error(r, cr_get(r, node, "slot_count"), "slot_count",
                     "%u is not a power of two", s->slot_count);
        cr_enum(r, node, "policy", "overflow policy", policies, policy_values, &s->policy);
        cr_u32(r, node, "max_members", 2, 256, &s->max_members);
        cr_u32(r, node, "catalog_capacity", 1, 1u << 20, &s->catalog_capacity);
        cr_u32(r, node, "counter_capacity", 16, 1u << 20, &s->counter_capacity);
    }
    cr_pop(r, saved);
}

static void read_paths(creader *r, yaml_node_t *node, config_paths *p)
{
    static const char *const keys[] = {"run_dir", "data_dir", NULL};
    size_t saved = cr_push_key(r, "paths");
    if (cr_expect_map(r, node, "the paths section") > 0) {
        cr_check_keys(r, node, keys);
        if (cr_str(r, node, "run_dir", 200, &p->run_dir) > 0 && !p->run_dir[0])
            cr_error(r, cr_get(r, node, "run_dir"), "run_dir", "must not be empty");
        if (cr_str(r, node, "data_dir", 400, &p->data_dir) > 0 && !p->data_dir[0])
            cr_error(r, cr_get(r, node, "data_dir"), "data_dir", "must not be empty");
    }
    cr_pop(r, saved);
}

static void read_writer(creader *r, yaml_node_t *node, config_writer *w)
{
    static const char *const keys[] = {"batch_records",   "batch_age_ms",    "chunk_bytes",
                                       "chunk_age_s",     "retention_age_s", "retention_bytes",
                                       "force_pwrite",    "depth",           "buffer_bytes",
                                       "block_points",    "seal_memory",     NULL};
    size_t saved = cr_push_key(r, "writer");
    if (cr_expect_map(r, node, "the writer section") > 0) {
        cr_check_keys(r, node, keys);
        cr_u32(r, node, "batch_records", 1, 1u << 20, &w->batch_records);
        cr_u32(r, node, "batch_age_ms", 1, 3600u * 1000, &w->batch_age_ms);
        cr_size(r, node, "chunk_bytes", 64u << 10, 1ull << 40, &w->chunk_bytes);
        cr_u32(r, node, "chunk_age_s", 1, 7u * 86400, &w->chunk_age_s);
        cr_u64(r, node, "retention_age_s", 0, 100ull * 365 * 86400, &w->retention_age_s);
        cr_size(r, node, "retention_bytes", 0, UINT64_MAX, &w->retention_bytes);
        cr_bool(r, node, "force_pwrite", &w->force_pwrite);
        cr_u32(r, node, "depth", 1, 16, &w->depth);
        cr_size(r, node, "buffer_bytes", 64u << 10, 64u << 20, &w->buffer_bytes);
        cr_u32(r, node, "block_points", 1024, 1u << 22, &w->block_points);
        cr_size(r, node, "seal_memory", 1u << 20, 1ull << 32, &w->seal_memory);
    }
    cr_pop(r, saved);
}

static void read_stats(creader *r, yaml_node_t *node, config_stats *s)
{
    static const char *const keys[] = {"window",           "history_s",           "history_capacity",
                                       "snapshot_interval_s", "publish_interval_s", "shards",
                                       "memory_limit_mb",  NULL};
    size_t saved = cr_push_key(r, "stats");
    if (cr_expect_map(r, node, "the stats section") > 0) {
        cr_check_keys(r, node, keys);
        cr_u32(r, node, "window", 1, 10u << 20, &s->window);
        cr_u32(r, node, "history_s", 1, 30u * 86400, &s->history_s);
        cr_u32(r, node, "history_capacity", 64, 100u << 20, &s->history_capacity);
        cr_u32(r, node, "snapshot_interval_s", 1, 86400, &s->snapshot_interval_s);
        cr_u32(r, node, "publish_interval_s", 1, 86400, &s->publish_interval_s);
        cr_u32(r, node, "shards", 1, 16, &s->shards);
        cr_u32(r, node, "memory_limit_mb", 0, 1u << 20, &s->memory_limit_mb);
    }
    cr_pop(r, saved);
}

static void read_pressure(creader *r, yaml_node_t *node, config_controller *c)
{
    static const char *const keys[] = {"low", "moderate", "high", "critical", "hysteresis", NULL};
    size_t saved = cr_push_key(r, "pressure");
    if (cr_expect_map(r, node, "pressure thresholds") > 0) {
        cr_check_keys(r, node, keys);
        cr_double(r, node, "low", 0.0, 1.0, &c->pressure_low);
        cr_double(r, node, "moderate", 0.0, 1.0, &c->pressure_moderate);
        cr_double(r, node, "high", 0.0, 1.0, &c->pressure_high);
        cr_double(r, node, "critical", 0.0, 1.0, &c->pressure_critical);
        cr_double(r, node, "hysteresis", 0.0, 0.5, &c->pressure_hysteresis);
        if (!(c->pressure_low < c->pressure_moderate && c->pressure_moderate < c->pressure_high &&
              c->pressure_high < c->pressure_critical))
            cr_error(r, node, NULL,
                     "thresholds must rise: low %g < moderate %g < high %g < critical %g",
                     c->pressure_low, c->pressure_moderate, c->pressure_high,
                     c->pressure_critical);
    }
    cr_pop(r, saved);
}

static void read_roles(creader *r, yaml_node_t *map, config_controller *c)
{
    yaml_node_t *node = cr_get(r, map, "required_roles");
    int n = cr_seq_len(r, node, "required_roles");
    if (n <= 0)
        return;
    c->required_roles = calloc((size_t)n, sizeof *c->required_roles);
    if (!c->required_roles) {
        r->oom = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        yaml_node_t *item = cr_seq_item(r, node, i);
        const char *v = cr_scalar(item);
        size_t saved = cr_push_key(r, "required_roles");
        cr_push_index(r, (size_t)i);
        if (!v || !*v || strlen(v) > 31)
            cr_error(r, item, NULL, "expected a role name (1..31 characters)");
        else
            c->required_roles[c->n_required_roles++] = cr_strdup(r, v);
        cr_pop(r, saved);
    }
}

static void read_controller(creader *r, yaml_node_t *node, config_controller *c)
{
    static const char *const keys[] = {"http",         "pressure",      "check_interval_ms",
                                       "rss_limit_mb", "device_quota",  "leak_window_s",
                                       "leak_growth_mb_per_min", "required_roles", NULL};
    size_t saved = cr_push_key(r, "controller");
    if (cr_expect_map(r, node, "the controller section") > 0) {
        cr_check_keys(r, node, keys);
        if (cr_str(r, node, "http", 100, &c->http) > 0 && !strchr(c->http, ':'))
            cr_error(r, cr_get(r, node, "http"), "http",
                     "'%s' is not an address (expected host:port, e.g. 127.0.0.1:9108)", c->http);
        yaml_node_t *pressure = cr_get(r, node, "pressure");
        if (pressure)
            read_pressure(r, pressure, c);
        cr_u32(r, node, "check_interval_ms", 10, 60000, &c->check_interval_ms);
        cr_u32(r, node, "rss_limit_mb", 0, 1u << 20, &c->rss_limit_mb);
        cr_double(r, node, "device_quota", 0.0, 1.0, &c->device_quota);
        cr_u32(r, node, "leak_window_s", 10, 7u * 86400, &c->leak_window_s);
        cr_double(r, node, "leak_growth_mb_per_min", 0.0, 1e6, &c->leak_growth_mb_per_min);
        read_roles(r, node, c);
    }
    cr_pop(r, saved);
}

/* Backoff bounds shared by both export targets: min <= max. */
static void read_backoff(creader *r, yaml_node_t *node, uint32_t *min_ms, uint32_t *max_ms)
{
    cr_u32(r, node, "backoff_min_ms", 10, 600000, min_ms);
    cr_u32(r, node, "backoff_max_ms", 10, 3600000, max_ms);
    if (*min_ms > *max_ms)
        cr_error(r, node, NULL, "backoff_min_ms %u is above backoff_max_ms %u", *min_ms, *max_ms);
}

static void read_postgres(creader *r, yaml_node_t *node, config_postgres *p)
{
    static const char *const keys[] = {"conninfo",       "password_file",  "source",
                                       "batch_records",  "batch_age_ms",   "connect_timeout_s",
                                       "connections",    "backoff_min_ms", "backoff_max_ms",
                                       "spool_max_bytes", NULL};
    size_t saved = cr_push_key(r, "postgres");
    if (cr_expect_map(r, node, "the postgres export") >= 0) {
        p->enabled = true;
        cr_check_keys(r, node, keys);
        cr_str(r, node, "conninfo", 1000, &p->conninfo);
        cr_str(r, node, "password_file", 400, &p->password_file);
        cr_str(r, node, "source", 200, &p->source);
        cr_u32(r, node, "batch_records", 1, 1u << 22, &p->batch_records);
        cr_u32(r, node, "batch_age_ms", 1, 3600u * 1000, &p->batch_age_ms);
        cr_u32(r, node, "connect_timeout_s", 1, 3600, &p->connect_timeout_s);
        cr_u32(r, node, "connections", 1, 4, &p->connections);
        read_backoff(r, node, &p->backoff_min_ms, &p->backoff_max_ms);
        cr_size(r, node, "spool_max_bytes", 1u << 20, 1ull << 44, &p->spool_max_bytes);
    }
    cr_pop(r, saved);
}

/* A topic level may not hold MQTT wildcards; the prefix may hold '/'. */
static void check_prefix(creader *r, yaml_node_t *node, const char *prefix)
{
    if (!prefix[0] || strpbrk(prefix, "+#") || prefix[0] == '/' ||
        prefix[strlen(prefix) - 1] == '/')
        cr_error(r, cr_get(r, node, "prefix"), "prefix",
                 "'%s' is not a topic prefix (not empty, no '+' or '#', no leading or trailing '/')",
                 prefix);
}

static void read_mqtt(creader *r, yaml_node_t *node, config_mqtt *m)
{
    static const char *const keys[] = {
        "host",          "port",           "client_id",      "prefix",        "qos",
        "retain",        "username",       "password_file",  "keepalive_s",   "batch_records",
        "batch_age_ms",  "ack_timeout_ms", "backoff_min_ms", "backoff_max_ms", "spool_max_bytes",
        "tls_ca_file",   "tls_ca_path",    "tls_cert_file",  "tls_key_file",  "tls_insecure",
        NULL};
    size_t saved = cr_push_key(r, "mqtt");
    if (cr_expect_map(r, node, "the mqtt export") >= 0) {
        m->enabled = true;
        cr_check_keys(r, node, keys);
        if (cr_str(r, node, "host", 255, &m->host) > 0 && !m->host[0])
            cr_error(r, cr_get(r, node, "host"), "host", "must not be empty");
        uint32_t port = m->port, qos = m->qos;
        cr_u32(r, node, "port", 1, 65535, &port);
        /* The member name (<= 31) is appended; MQTT 3.1.1 brokers accept long ids. */
        if (cr_str(r, node, "client_id", 64, &m->client_id) > 0 && !m->client_id[0])
            cr_error(r, cr_get(r, node, "client_id"), "client_id", "must not be empty");
        if (cr_str(r, node, "prefix", 200, &m->prefix) > 0)
            check_prefix(r, node, m->prefix);
        cr_u32(r, node, "qos", 0, 2, &qos);
        cr_bool(r, node, "retain", &m->retain);
        cr_str(r, node, "username", 200, &m->username);
        cr_str(r, node, "password_file", 400, &m->password_file);
        cr_u32(r, node, "keepalive_s", 5, 65535, &m->keepalive_s);
        /* Up to 3 batches wait for PUBACKs at once, and MQTT message ids are
         * 16-bit: 3 x 20000 stays below the 65535 ids a session has. */
        cr_u32(r, node, "batch_records", 1, 20000, &m->batch_records);
        cr_u32(r, node, "batch_age_ms", 1, 3600u * 1000, &m->batch_age_ms);
        cr_u32(r, node, "ack_timeout_ms", 100, 3600u * 1000, &m->ack_timeout_ms);
        read_backoff(r, node, &m->backoff_min_ms, &m->backoff_max_ms);
        cr_size(r, node, "spool_max_bytes", 1u << 20, 1ull << 44, &m->spool_max_bytes);
        cr_str(r, node, "tls_ca_file", 400, &m->tls_ca_file);
        cr_str(r, node, "tls_ca_path", 400, &m->tls_ca_path);
        cr_str(r, node, "tls_cert_file", 400, &m->tls_cert_file);
        cr_str(r, node, "tls_key_file", 400, &m->tls_key_file);
        cr_bool(r, node, "tls_insecure", &m->tls_insecure);
        if (!m->tls_cert_file[0] != !m->tls_key_file[0])
            cr_error(r, node, NULL, "tls_cert_file and tls_key_file go together");
        if (m->tls_cert_file[0] && !m->tls_ca_file[0] && !m->tls_ca_path[0])
            cr_error(r, node, NULL, "a client certificate needs tls_ca_file or tls_ca_path");
        m->port = (uint16_t)port;
        m->qos = (uint8_t)qos;
    }
    cr_pop(r, saved);
}

static void read_export(creader *r, yaml_node_t *node, config *cfg)
{
    static const char *const keys[] = {"postgres", "mqtt", NULL};
    size_t saved = cr_push_key(r, "export");
    if (cr_expect_map(r, node, "the export section") > 0) {
        cr_check_keys(r, node, keys);
        yaml_node_t *pg = cr_get(r, node, "postgres");
        if (pg)
            read_postgres(r, pg, &cfg->postgres);
        yaml_node_t *mq = cr_get(r, node, "mqtt");
        if (mq)
            read_mqtt(r, mq, &cfg->mqtt);
    }
    cr_pop(r, saved);
}

/* ------------------------------------------------------------ environment */

static int env_override(config *cfg, creader *r)
{
    const char *v;
    if ((v = getenv("SHMBUS_SEGMENT")) && *v) {
        if (!valid_segment_name(v)) {
            cr_error_line(r, 0, NULL,
                          "environment SHMBUS_SEGMENT: '%s' is not a segment name (1..31 "
                          "characters, no '/' or spaces)",
                          v);
        } else {
            free(cfg->segment.name);
            cfg->segment.name = cr_strdup(r, v);
        }
    }
    if ((v = getenv("SHMBUS_SLOT_COUNT")) && *v) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 0);
        if (errno || *end || v[0] == '-' || x < 64 || x > (1u << 30) || !is_power_of_two(x))
            cr_error_line(r, 0, NULL,
                          "environment SHMBUS_SLOT_COUNT: '%s' is not a power of two in "
                          "64..1073741824",
                          v);
        else
            cfg->segment.slot_count = (uint32_t)x;
    }
    if ((v = getenv("SHMBUS_SLOT_SIZE")) && *v) {
        char *end;
        errno = 0;
        unsigned long long x = strtoull(v, &end, 0);
        if (errno || *end || v[0] == '-' || x < 64 || x > 4096 || x % 64)
            cr_error_line(r, 0, NULL,
                          "environment SHMBUS_SLOT_SIZE: '%s' is not a multiple of 64 in 64..4096",
                          v);
        else
            cfg->segment.slot_size = (uint32_t)x;
    }
    if ((v = getenv("SHMBUS_DATA_DIR")) && *v) {
        free(cfg->paths.data_dir);
        cfg->paths.data_dir = cr_strdup(r, v);
    }
    if ((v = getenv("SHMBUS_RUN_DIR")) && *v) {
        free(cfg->paths.run_dir);
        cfg->paths.run_dir = cr_strdup(r, v);
    }
    return r->errors ? -EINVAL : 0;
}

/* ------------------------------------------------------------------- load */

static int load_document(creader *r, yaml_parser_t *parser, yaml_document_t *doc, config *cfg)
{
    if (!yaml_parser_load(parser, doc)) {
        const char *problem = parser->problem ? parser->problem : "syntax error";
        unsigned line = (unsigned)parser->problem_mark.line + 1;
        if (parser->error == YAML_MEMORY_ERROR)
            return -ENOMEM;
        if (parser->context)
            cr_error_line(r, line, NULL, "YAML syntax: %s %s", parser->context, problem);
        else
            cr_error_line(r, line, NULL, "YAML syntax: %s", problem);
        return -EINVAL;
    }
    r->doc = doc;
    yaml_node_t *root = yaml_document_get_root_node(doc);
    if (root && cr_expect_map(r, root, "the top level of the file") > 0) {
        cr_check_keys(r, root, top_keys);
        yaml_node_t *n;
        if ((n = cr_get(r, root, "segment")))
            read_segment(r, n, &cfg->segment);
        if ((n = cr_get(r, root, "paths")))
            read_paths(r, n, &cfg->paths);
        if ((n = cr_get(r, root, "writer")))
            read_writer(r, n, &cfg->writer);
        if ((n = cr_get(r, root, "stats")))
            read_stats(r, n, &cfg->stats);
        if ((n = cr_get(r, root, "controller")))
            read_controller(r, n, &cfg->controller);
        if ((n = cr_get(r, root, "export")))
            read_export(r, n, cfg);
        if ((n = cr_get(r, root, "devices")))
            config_read_devices(r, n, cfg);
    }
    /* A second document in the same file is a mistake worth naming. */
    yaml_document_t extra;
    if (yaml_parser_load(parser, &extra)) {
        yaml_node_t *extra_root = yaml_document_get_root_node(&extra);
        if (extra_root)
            cr_error_line(r, cr_line(extra_root), NULL,
                          "more than one YAML document in the file (only one is read)");
        yaml_document_delete(&extra);
    }
    return 0;
}

int config_load_string(const char *text, size_t len, const char *name, config **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return -ENOMEM;
    int rc = set_defaults(cfg);
    cfg->file = strdup(name ? name : "<config>");
    if (rc == 0 && !cfg->file)
        rc = -ENOMEM;
    if (rc < 0)
        goto fail;

    creader r;
    cr_init(&r, cfg->file, NULL, err, errlen);
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        rc = -ENOMEM;
        goto fail;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    yaml_document_t doc;
    memset(&doc, 0, sizeof doc);
    rc = load_document(&r, &parser, &doc, cfg);
    if (rc == 0 && r.errors == 0 && !r.oom)
        config_validate(&r, cfg);
    if (r.doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
#ifdef __GLIBC__
    /* The document of a big plant file takes tens of MB for a moment; give
     * them back so that long-running services stay small. */
    malloc_trim(0);
#endif
    if (rc == 0 && r.errors == 0 && !r.oom)
        rc = env_override(cfg, &r);
    if (rc == 0 && r.oom)
        rc = -ENOMEM;
    if (rc == 0 && r.errors)
        rc = -EINVAL;
    if (rc < 0)
        goto fail;
    *out = cfg;
    return 0;
fail:
    if (rc == -ENOMEM && err && errlen)
        snprintf(err, errlen, "%s: out of memory while loading", name ? name : "<config>");
    config_free(&cfg);
    return rc;
}

int config_load(const char *path, config **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc;
    char *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return rc;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        rc = -errno;
        snprintf(err, errlen, "%s: cannot stat: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_FILE_MAX) {
        rc = -EINVAL;
        snprintf(err, errlen, "%s: not a regular file of at most %u bytes", path,
                 CONFIG_FILE_MAX);
        goto out;
    }
    text = malloc((size_t)st.st_size + 1);
    if (!text) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, text + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            snprintf(err, errlen, "%s: read failed: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    text[got] = '\0';
    rc = config_load_string(text, got, path, out, err, errlen);
out:
    free(text);
    close(fd);
    return rc;
}

int config_defaults(config **out, char *err, size_t errlen)
{
    return config_load_string("", 0, "<defaults>", out, err, errlen);
}

/* ------------------------------------------------------------------- free */

static void free_device(config_device *d)
{
    free(d->name);
    free(d->host);
    free(d->serial.device);
    for (size_t i = 0; i < d->n_poll_groups; i++)
        free(d->poll_groups[i].name);
    free(d->poll_groups);
    for (size_t i = 0; i < d->n_tags; i++) {
        free(d->tags[i].name);
        free(d->tags[i].unit);
    }
    free(d->tags);
}

void config_free(config **pcfg)
{
    if (!pcfg || !*pcfg)
        return;
    config *cfg = *pcfg;
    free(cfg->file);
    free(cfg->segment.name);
    free(cfg->paths.run_dir);
    free(cfg->paths.data_dir);
    free(cfg->controller.http);
    for (size_t i = 0; i < cfg->controller.n_required_roles; i++)
        free(cfg->controller.required_roles[i]);
    free(cfg->controller.required_roles);
    free(cfg->postgres.conninfo);
    free(cfg->postgres.password_file);
    free(cfg->postgres.source);
    free(cfg->mqtt.host);
    free(cfg->mqtt.client_id);
    free(cfg->mqtt.prefix);
    free(cfg->mqtt.username);
    free(cfg->mqtt.password_file);
    free(cfg->mqtt.tls_ca_file);
    free(cfg->mqtt.tls_ca_path);
    free(cfg->mqtt.tls_cert_file);
    free(cfg->mqtt.tls_key_file);
    for (size_t i = 0; i < cfg->n_devices; i++)
        free_device(&cfg->devices[i]);
    free(cfg->devices);
    free(cfg);
    *pcfg = NULL;
}

/* ---------------------------------------------------------------- lookups */

const config_device *config_find_device(const config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_devices; i++)
        if (strcmp(cfg->devices[i].name, name) == 0)
            return &cfg->devices[i];
    return NULL;
}

const config_tag *config_find_tag(const config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_devices; i++)
        for (size_t j = 0; j < cfg->devices[i].n_tags; j++)
            if (strcmp(cfg->devices[i].tags[j].name, name) == 0)
                return &cfg->devices[i].tags[j];
    return NULL;
}

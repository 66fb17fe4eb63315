/*
 * config_devices.c — the `devices` section of the group configuration: each
 * device's transport and timing, its poll groups and its tags (register
 * table, address, data type, byte order, scaling, deadband, priority).
 * Per-field checks happen here; checks across tags (overlaps, duplicates)
 * in config_validate.c.
 */
#include "config_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const device_keys[] = {
    "name",          "transport",      "host",          "port",
    "serial",        "unit_id",        "response_timeout_ms", "byte_timeout_ms",
    "pause_ms",      "address_base",   "max_gap",       "max_registers",
    "max_bits",      "single_request", "reconnect",     "breaker",
    "poll_groups",   "tags",           NULL};

static const char *const tag_keys[] = {"name",   "id",       "unit_id",  "register",
                                       "address", "type",    "bit",      "length",
                                       "order",  "scale",    "offset",   "deadband",
                                       "max_silence_s", "priority", "unit", "poll_group",
                                       "sim",    NULL};

static const char *const transport_names[] = {"tcp", "rtu", "rtu-over-tcp", NULL};
static const int transport_values[] = {CONFIG_TCP, CONFIG_RTU, CONFIG_RTU_OVER_TCP};

static const char *const register_names[] = {"coil", "discrete", "input", "holding", NULL};
static const int register_values[] = {CONFIG_REG_COIL, CONFIG_REG_DISCRETE, CONFIG_REG_INPUT,
                                      CONFIG_REG_HOLDING};

static const char *const type_names[] = {"bool",   "bit",    "int16",   "uint16",
                                         "int32",  "uint32", "int64",   "uint64",
                                         "float32", "float64", "string", NULL};
static const int type_values[] = {CONFIG_T_BOOL,   CONFIG_T_BIT,    CONFIG_T_INT16,
                                  CONFIG_T_UINT16, CONFIG_T_INT32,  CONFIG_T_UINT32,
                                  CONFIG_T_INT64,  CONFIG_T_UINT64, CONFIG_T_FLOAT32,
                                  CONFIG_T_FLOAT64, CONFIG_T_STRING};

const char *config_type_name(int type)
{
    return type >= 0 && type <= CONFIG_T_STRING ? type_names[type] : "?";
}

const char *config_register_name(int reg)
{
    switch (reg) {
    case CONFIG_REG_COIL:
        return "coil";
    case CONFIG_REG_DISCRETE:
        return "discrete";
    case CONFIG_REG_INPUT:
        return "input";
    case CONFIG_REG_HOLDING:
        return "holding";
    default:
        return "?";
    }
}

const char *config_transport_name(int transport)
{
    return transport >= 0 && transport <= CONFIG_RTU_OVER_TCP ? transport_names[transport] : "?";
}

unsigned config_type_registers(int type)
{
    switch (type) {
    case CONFIG_T_INT16:
    case CONFIG_T_UINT16:
        return 1;
    case CONFIG_T_INT32:
    case CONFIG_T_UINT32:
    case CONFIG_T_FLOAT32:
        return 2;
    case CONFIG_T_INT64:
    case CONFIG_T_UINT64:
    case CONFIG_T_FLOAT64:
        return 4;
    default:
        return 0;
    }
}

int config_parse_order(const char *order, unsigned bytes, uint8_t map[8])
{
    if (bytes < 2 || bytes > 8 || strlen(order) != bytes)
        return -1;
    unsigned seen = 0;
    for (unsigned i = 0; i < bytes; i++) {
        int c = toupper((unsigned char)order[i]);
        unsigned idx = (unsigned)(c - 'A');
        if (c < 'A' || idx >= bytes || (seen & (1u << idx)))
            return -1;
        seen |= 1u << idx;
        map[i] = (uint8_t)idx;
    }
    return 0;
}

/* Names are used in counters, labels and file names: keep them plain. */
static bool valid_name(const char *s, size_t max)
{
    if (!*s || strlen(s) > max)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("_.-:/", *s))
            return false;
    return true;
}

static int read_name(creader *r, yaml_node_t *map, char **out, const char *what)
{
    yaml_node_t *n = cr_get(r, map, "name");
    if (!n || cr_is_null(n)) {
        cr_error(r, map, "name", "required: every %s needs a name", what);
        return -1;
    }
    if (cr_str(r, map, "name", 1000, out) < 0)
        return -1;
    size_t max = strcmp(what, "device") == 0 ? CONFIG_DEVICE_NAME_MAX : CONFIG_NAME_MAX;
    if (!valid_name(*out, max)) {
        cr_error(r, n, "name", "'%s' is not a valid name (1..%zu letters, digits or _ . - : /)",
                 *out, max);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ poll groups */

static void read_poll_groups(creader *r, yaml_node_t *map, config_device *d)
{
    yaml_node_t *node = cr_get(r, map, "poll_groups");
    size_t saved = cr_push_key(r, "poll_groups");
    int n = cr_seq_len(r, node, NULL);
    cr_pop(r, saved);
    size_t count = n > 0 ? (size_t)n : 1;
    d->poll_groups = calloc(count, sizeof *d->poll_groups);
    if (!d->poll_groups) {
        r->oom = 1;
        return;
    }
    if (n <= 0) {
        d->poll_groups[0] = (config_poll_group){.name = cr_strdup(r, "default"),
                                                .interval_ms = 1000,
                                                .line = d->line};
        d->n_poll_groups = 1;
        return;
    }
    static const char *const keys[] = {"name", "interval_ms", NULL};
    for (int i = 0; i < n; i++) {
        yaml_node_t *item = cr_seq_item(r, node, i);
        config_poll_group *g = &d->poll_groups[d->n_poll_groups++];
        g->interval_ms = 1000;
        g->line = cr_line(item);
        saved = cr_push_key(r, "poll_groups");
        cr_push_index(r, (size_t)i);
        if (cr_expect_map(r, item, "a poll group: name, interval_ms") > 0) {
            cr_check_keys(r, item, keys);
            read_name(r, item, &g->name, "poll group");
            cr_u32(r, item, "interval_ms", 1, 86400u * 1000, &g->interval_ms);
            for (size_t j = 0; g->name && j + 1 < d->n_poll_groups; j++)
                if (d->poll_groups[j].name && strcmp(d->poll_groups[j].name, g->name) == 0)
                    cr_error(r, cr_get(r, item, "name"), "name",
                             "duplicate poll group '%s' (first on line %u)", g->name,
                             d->poll_groups[j].line);
        } else if (!item || item->type != YAML_MAPPING_NODE) {
            cr_error(r, item, NULL, "a poll group needs a name");
        }
        cr_pop(r, saved);
    }
}

/* ------------------------------------------------------------------- tags */

static void tag_poll_group(creader *r, yaml_node_t *map, const config_device *d, config_tag *t)
{
    char *group = NULL;
    if (cr_str(r, map, "poll_group", 1000, &group) <= 0) {
        free(group);
        return;
    }
    for (size_t i = 0; i < d->n_poll_groups; i++) {
        if (d->poll_groups[i].name && strcmp(d->poll_groups[i].name, group) == 0) {
            t->poll_group = (uint32_t)i;
            free(group);
            return;
        }
    }
    char known[400] = "";
    size_t used = 0;
    for (size_t i = 0; i < d->n_poll_groups && used + 1 < sizeof known; i++) {
        int w = snprintf(known + used, sizeof known - used, "%s%s", i ? ", " : "",
                         d->poll_groups[i].name ? d->poll_groups[i].name : "?");
        if (w > 0)
            used += (size_t)w;
    }
    cr_error(r, cr_get(r, map, "poll_group"), "poll_group",
             "unknown poll group '%s' (device '%s' has: %s)", group, d->name ? d->name : "?",
             known);
    free(group);
}

/* Type, bit, length and order, checked against the register table. */
static void tag_type(creader *r, yaml_node_t *map, config_tag *t)
{
    bool bit_table = t->reg == CONFIG_REG_COIL || t->reg == CONFIG_REG_DISCRETE;
    int type = bit_table ? CONFIG_T_BOOL : CONFIG_T_UINT16;
    if (cr_enum(r, map, "type", "data type", type_names, type_values, &type) < 0)
        return;
    t->type = (uint8_t)type;
    if (bit_table && type != CONFIG_T_BOOL) {
        cr_error(r, cr_get(r, map, "type"), "type",
                 "a %s holds single bits: its type must be bool (got %s)",
                 config_register_name(t->reg), config_type_name(type));
        return;
    }
    yaml_node_t *bit_node = cr_get(r, map, "bit");
    if (type == CONFIG_T_BIT) {
        uint32_t bit = 0;
        if (!bit_node)
            cr_error(r, map, "bit", "required for type bit (0..15, 0 = least significant)");
        else if (cr_u32(r, map, "bit", 0, 15, &bit) > 0)
            t->bit = (uint8_t)bit;
    } else if (bit_node) {
        cr_error(r, bit_node, "bit", "only a tag of type bit has a bit number");
    }
    yaml_node_t *len_node = cr_get(r, map, "length");
    unsigned regs = config_type_registers(type);
    if (type == CONFIG_T_STRING) {
        uint32_t len = 0;
        if (!len_node)
            cr_error(r, map, "length", "required for type string (registers, 1..%d)",
                     CONFIG_STRING_MAX_REGS);
        else
            cr_u32(r, map, "length", 1, CONFIG_STRING_MAX_REGS, &len);
        regs = len;
    } else if (len_node) {
        cr_error(r, len_node, "length", "only a tag of type string has a length");
    }
    t->registers = (uint16_t)(regs ? regs : 1);

    /* Byte order: bool and bit have none; 16-bit values and strings AB/BA. */
    unsigned bytes = type == CONFIG_T_STRING ? 2 : 2 * config_type_registers(type);
    char *order = NULL;
    int got = cr_str(r, map, "order", 16, &order);
    if (got > 0 && bytes == 0) {
        cr_error(r, cr_get(r, map, "order"), "order", "a %s tag has no byte order",
                 config_type_name(type));
    } else if (bytes) {
        const char *use = got > 0 ? order : "ABCDEFGH";
        char def[9];
        if (got <= 0) {
            memcpy(def, use, bytes);
            def[bytes] = '\0';
            use = def;
        }
        if (config_parse_order(use, bytes, t->order_map) < 0) {
            const char *examples = bytes == 2   ? "AB, BA"
                                   : bytes == 4 ? "ABCD, BADC, CDAB, DCBA"
                                                : "ABCDEFGH, HGFEDCBA, BADCFEHG, GHEFCDAB";
            cr_error(r, cr_get(r, map, "order"), "order",
                     "unknown byte order '%s' for %s (expected %u letters A..%c, e.g. %s)", use,
                     config_type_name(type), bytes, 'A' + bytes - 1, examples);
        } else {
            for (unsigned i = 0; i < bytes; i++)
                t->order[i] = (char)toupper((unsigned char)use[i]);
            t->order[bytes] = '\0';
        }
    }
    free(order);
}

/* shmbus-sim's generator for the tag: defaults by type, then the file. */
static void tag_sim(creader *r, yaml_node_t *map, config_tag *t)
{
    static const char *const keys[] = {"kind", "min",   "max",  "period_s", "step",
                                       "value", "seed", "text", NULL};
    static const char *const kinds[] = {"constant", "ramp",   "sine", "counter",
                                        "random_walk", "toggle", NULL};
    static const int kind_values[] = {CONFIG_SIM_CONSTANT, CONFIG_SIM_RAMP,
                                      CONFIG_SIM_SINE,     CONFIG_SIM_COUNTER,
                                      CONFIG_SIM_RANDOM_WALK, CONFIG_SIM_TOGGLE};
    config_sim *sim = &t->sim;
    bool binary = t->type == CONFIG_T_BOOL || t->type == CONFIG_T_BIT;
    bool floating = t->type == CONFIG_T_FLOAT32 || t->type == CONFIG_T_FLOAT64;
    sim->kind = binary                       ? CONFIG_SIM_TOGGLE
                : floating                   ? CONFIG_SIM_SINE
                : t->type == CONFIG_T_STRING ? CONFIG_SIM_CONSTANT
                                             : CONFIG_SIM_COUNTER;
    sim->min = 0;
    sim->max = binary ? 1 : 100;
    sim->period_s = binary ? 10 : 60;
    sim->step = 1;
    sim->seed = t->id;
    snprintf(sim->text, sizeof sim->text, "%.*s", 2 * t->registers, t->name ? t->name : "");
    yaml_node_t *node = cr_get(r, map, "sim");
    if (!node)
        return;
    size_t saved = cr_push_key(r, "sim");
    if (cr_expect_map(r, node, "a generator: kind, min, max, period_s, step, value, seed") > 0) {
        cr_check_keys(r, node, keys);
        int kind = sim->kind;
        cr_enum(r, node, "kind", "generator", kinds, kind_values, &kind);
        sim->kind = (uint8_t)kind;
        cr_double(r, node, "min", -1e300, 1e300, &sim->min);
        cr_double(r, node, "max", -1e300, 1e300, &sim->max);
        cr_double(r, node, "period_s", 0.001, 1e9, &sim->period_s);
        cr_double(r, node, "step", -1e300, 1e300, &sim->step);
        cr_double(r, node, "value", -1e300, 1e300, &sim->value);
        cr_u32(r, node, "seed", 0, 0xffffffffu, &sim->seed);
        char *text = NULL;
        if (cr_str(r, node, "text", 2u * CONFIG_STRING_MAX_REGS, &text) > 0)
            snprintf(sim->text, sizeof sim->text, "%s", text);
        free(text);
        if (sim->max < sim->min)
            cr_error(r, node, "max", "%g is below min %g", sim->max, sim->min);
    }
    cr_pop(r, saved);
}

static void read_tag(creader *r, yaml_node_t *map, config_device *d, config_tag *t,
                     uint32_t position)
{
    t->id = position;
    t->device = d->id;
    t->unit_id = d->unit_id;
    t->scale = 1.0;
    t->priority = 0;
    t->line = cr_line(map);
    if (cr_expect_map(r, map, "a tag: name, register, address, type, ...") <= 0) {
        if (cr_is_null(map))
            cr_error(r, map, NULL, "empty tag: a tag needs at least name, register, address");
        return;
    }
    cr_check_keys(r, map, tag_keys);
    read_name(r, map, &t->name, "tag");
    cr_u32(r, map, "id", 0, 0x7fffffff, &t->id);
    uint32_t unit = t->unit_id;
    if (cr_u32(r, map, "unit_id", 1, 247, &unit) > 0)
        t->unit_id = (uint8_t)unit;

    int reg = 0;
    if (!cr_get(r, map, "register"))
        cr_error(r, map, "register", "required (coil, discrete, input or holding)");
    else
        cr_enum(r, map, "register", "register type", register_names, register_values, &reg);
    t->reg = (uint8_t)reg;

    yaml_node_t *addr_node = cr_get(r, map, "address");
    if (!addr_node) {
        cr_error(r, map, "address", "required");
    } else if (cr_u32(r, map, "address", 0, 0xffffffffu, &t->address) > 0) {
        uint32_t lo = d->address_base, hi = 65535u + d->address_base;
        if (t->address < lo || t->address > hi)
            cr_error(r, addr_node, "address",
                     "%u is out of range (%u..%u with address_base %u)", t->address, lo, hi,
                     d->address_base);
        else
            t->protocol_address = (uint16_t)(t->address - d->address_base);
    }
    if (reg)
        tag_type(r, map, t);
    if (reg && t->protocol_address + (uint32_t)t->registers > 65536u)
        cr_error(r, addr_node, "address",
                 "%s spans %u registers from %u: past the end of the table (65535)",
                 config_type_name(t->type), t->registers, t->address);

    if (cr_double(r, map, "scale", -1e300, 1e300, &t->scale) > 0 && t->scale == 0.0)
        cr_error(r, cr_get(r, map, "scale"), "scale", "0 would turn every value into 0");
    cr_double(r, map, "offset", -1e300, 1e300, &t->offset);
    cr_double(r, map, "deadband", 0.0, 1e300, &t->deadband);
    cr_u32(r, map, "max_silence_s", 0, 7u * 86400, &t->max_silence_s);
    uint32_t prio = 0;
    if (cr_u32(r, map, "priority", 0, 255, &prio) > 0)
        t->priority = (uint8_t)prio;
    cr_str(r, map, "unit", 31, &t->unit);
    tag_poll_group(r, map, d, t);
    tag_sim(r, map, t);
}

static void read_tags(creader *r, yaml_node_t *map, config_device *d, uint32_t *position)
{
    yaml_node_t *node = cr_get(r, map, "tags");
    size_t saved = cr_push_key(r, "tags");
    int n = cr_seq_len(r, node, NULL);
    cr_pop(r, saved);
    if (n <= 0)
        return;
    d->tags = calloc((size_t)n, sizeof *d->tags);
    if (!d->tags) {
        r->oom = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        config_tag *t = &d->tags[d->n_tags++];
        saved = cr_push_key(r, "tags");
        cr_push_index(r, (size_t)i);
        read_tag(r, cr_seq_item(r, node, i), d, t, (*position)++);
        if (!t->unit)
            t->unit = cr_strdup(r, "");
        cr_pop(r, saved);
    }
}

/* ---------------------------------------------------------------- devices */

static void read_serial(creader *r, yaml_node_t *map, config_serial *s)
{
    static const char *const keys[] = {"device", "baud", "parity", "data_bits", "stop_bits",
                                       NULL};
    static const char *const parities[] = {"none", "even", "odd", "N", "E", "O", NULL};
    static const int parity_values[] = {'N', 'E', 'O', 'N', 'E', 'O'};
    size_t saved = cr_push_key(r, "serial");
    yaml_node_t *node = cr_get(r, map, "serial");
    if (cr_expect_map(r, node, "serial line: device, baud, parity, data_bits, stop_bits") > 0) {
        cr_check_keys(r, node, keys);
        if (cr_str(r, node, "device", 200, &s->device) > 0 && !s->device[0])
            cr_error(r, cr_get(r, node, "device"), "device", "must not be empty");
        cr_u32(r, node, "baud", 50, 4000000, &s->baud);
        int parity = s->parity;
        cr_enum(r, node, "parity", "parity", parities, parity_values, &parity);
        s->parity = (char)parity;
        uint32_t data_bits = s->data_bits, stop_bits = s->stop_bits;
        cr_u32(r, node, "data_bits", 5, 8, &data_bits);
        cr_u32(r, node, "stop_bits", 1, 2, &stop_bits);
        s->data_bits = (uint8_t)data_bits;
        s->stop_bits = (uint8_t)stop_bits;
    }
    cr_pop(r, saved);
}

static void read_backoff(creader *r, yaml_node_t *map, config_device *d)
{
    static const char *const rkeys[] = {"min_ms", "max_ms", NULL};
    static const char *const bkeys[] = {"failures", "open_s", NULL};
    yaml_node_t *node = cr_get(r, map, "reconnect");
    size_t saved = cr_push_key(r, "reconnect");
    if (node && cr_expect_map(r, node, "reconnect backoff: min_ms, max_ms") > 0) {
        cr_check_keys(r, node, rkeys);
        cr_u32(r, node, "min_ms", 1, 3600u * 1000, &d->reconnect_min_ms);
        cr_u32(r, node, "max_ms", 1, 3600u * 1000, &d->reconnect_max_ms);
        if (d->reconnect_max_ms < d->reconnect_min_ms)
            cr_error(r, node, "max_ms", "%u is below min_ms %u", d->reconnect_max_ms,
                     d->reconnect_min_ms);
    }
    cr_pop(r, saved);
    node = cr_get(r, map, "breaker");
    saved = cr_push_key(r, "breaker");
    if (node && cr_expect_map(r, node, "circuit breaker: failures, open_s") > 0) {
        cr_check_keys(r, node, bkeys);
        cr_u32(r, node, "failures", 1, 1000, &d->breaker_failures);
        cr_u32(r, node, "open_s", 1, 86400, &d->breaker_open_s);
    }
    cr_pop(r, saved);
}

static void read_transport(creader *r, yaml_node_t *map, config_device *d)
{
    int transport = CONFIG_TCP;
    cr_enum(r, map, "transport", "transport", transport_names, transport_values, &transport);
    d->transport = transport;
    bool network = transport != CONFIG_RTU;
    yaml_node_t *host = cr_get(r, map, "host"), *serial = cr_get(r, map, "serial");
    if (network) {
        if (!host || cr_is_null(host))
            cr_error(r, map, "host", "required for transport %s",
                     config_transport_name(transport));
        else if (cr_str(r, map, "host", 255, &d->host) > 0 && !d->host[0])
            cr_error(r, host, "host", "must not be empty");
        uint32_t port = d->port;
        cr_u32(r, map, "port", 1, 65535, &port);
        d->port = (uint16_t)port;
        if (serial)
            cr_error(r, serial, "serial", "a %s device has no serial line (did you mean "
                     "transport: rtu?)", config_transport_name(transport));
    } else {
        if (host)
            cr_error(r, host, "host", "an rtu device is on a serial line (did you mean "
                     "transport: rtu-over-tcp?)");
        if (cr_get(r, map, "port"))
            cr_error(r, cr_get(r, map, "port"), "port", "an rtu device has no port");
        if (!serial)
            cr_error(r, map, "serial", "required for transport rtu (device, baud, ...)");
        else
            read_serial(r, map, &d->serial);
        if (!d->serial.device || !d->serial.device[0])
            if (serial)
                cr_error(r, serial, "serial.device", "required (e.g. /dev/ttyUSB0)");
    }
}

static void read_device(creader *r, yaml_node_t *map, config_device *d, uint32_t *position)
{
    d->port = 502;
    d->unit_id = 1;
    d->response_timeout_ms = 1000;
    d->max_registers = 125;
    d->max_bits = 2000;
    d->reconnect_min_ms = 200;
    d->reconnect_max_ms = 30000;
    d->breaker_failures = 3;
    d->breaker_open_s = 10;
    d->serial = (config_serial){.baud = 9600, .parity = 'N', .data_bits = 8, .stop_bits = 1};
    d->line = cr_line(map);
    if (cr_expect_map(r, map, "a device: name, transport, host, ...") <= 0) {
        if (cr_is_null(map))
            cr_error(r, map, NULL, "empty device entry");
        return;
    }
    cr_check_keys(r, map, device_keys);
    read_name(r, map, &d->name, "device");
    read_transport(r, map, d);
    uint32_t unit = d->unit_id;
    if (cr_u32(r, map, "unit_id", 1, 247, &unit) > 0)
        d->unit_id = (uint8_t)unit;
    cr_u32(r, map, "response_timeout_ms", 1, 600u * 1000, &d->response_timeout_ms);
    cr_u32(r, map, "byte_timeout_ms", 0, 600u * 1000, &d->byte_timeout_ms);
    cr_u32(r, map, "pause_ms", 0, 60u * 1000, &d->pause_ms);
    uint32_t base = 0;
    if (!cr_get(r, map, "address_base"))
        cr_error(r, map, "address_base",
                 "required: 0 if tag addresses are protocol addresses (as on the wire), 1 if "
                 "they are register numbers counted from 1");
    else if (cr_u32(r, map, "address_base", 0, 1, &base) > 0)
        d->address_base = (uint8_t)base;
    cr_u32(r, map, "max_gap", 0, 124, &d->max_gap);
    cr_u32(r, map, "max_registers", 1, 125, &d->max_registers);
    cr_u32(r, map, "max_bits", 1, 2000, &d->max_bits);
    cr_bool(r, map, "single_request", &d->single_request);
    read_backoff(r, map, d);
    read_poll_groups(r, map, d);
    if (!r->oom)
        read_tags(r, map, d, position);
}

void config_read_devices(creader *r, yaml_node_t *node, config *cfg)
{
    size_t saved = cr_push_key(r, "devices");
    int n = cr_seq_len(r, node, NULL);
    cr_pop(r, saved);
    if (n <= 0)
        return;
    cfg->devices = calloc((size_t)n, sizeof *cfg->devices);
    if (!cfg->devices) {
        r->oom = 1;
        return;
    }
    uint32_t position = 0;
    for (int i = 0; i < n && !r->oom; i++) {
        config_device *d = &cfg->devices[cfg->n_devices++];
        d->id = (uint32_t)i;
        saved = cr_push_key(r, "devices");
        cr_push_index(r, (size_t)i);
        read_device(r, cr_seq_item(r, node, i), d, &position);
        cr_pop(r, saved);
        cfg->n_tags += d->n_tags;
    }
}

/*
 * config.h — the group configuration: one human-edited YAML file for the
 * whole process group (segment, paths, writer, stats, controller, export,
 * devices with their poll groups and tags), loaded by every service.
 *
 * config_load() parses the file with libyaml into the plain structs below,
 * fills defaults, applies environment overrides and validates everything.
 * Every error names the file, the line and the field:
 *   plant.yaml:42: devices[1].tags[3].type: unknown data type 'flot32' (expected bool, ...)
 * All errors found are reported (one per line), not only the first.
 *
 * Ownership: a config is one allocation tree; config_free() releases it and
 * clears the caller's pointer. A loaded config is never modified by the
 * loader afterwards, so threads may read it freely.
 *
 * Addresses: tag addresses are stored twice — `address` as written in the
 * file and `protocol_address` (0-based, what goes on the wire), derived from
 * the device's address_base.
 */
#ifndef SHMBUS_CONFIG_H
#define SHMBUS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_NAME_MAX 63        /* tag and poll-group names */
#define CONFIG_DEVICE_NAME_MAX 48 /* device names also label counters (<= 111 bytes) */
#define CONFIG_MAX_ERRORS 32 /* errors collected before the loader gives up */

enum config_policy { CONFIG_POLICY_BACKPRESSURE = 0, CONFIG_POLICY_DROP_OLDEST = 1 };

typedef struct config_segment {
    char *name;                /* "shmbus" */
    uint32_t slot_size;        /* 128 */
    uint32_t slot_count;       /* 65536, a power of two */
    int policy;                /* enum config_policy; backpressure */
    uint32_t max_members;      /* 128 */
    uint32_t catalog_capacity; /* 4096; every tag id must be below it */
    uint32_t counter_capacity; /* 2048 */
} config_segment;

typedef struct config_paths {
    char *run_dir;  /* nng ipc sockets; /run/shmbus */
    char *data_dir; /* chunk files, snapshots; /var/lib/shmbus */
} config_paths;

typedef struct config_writer {
    uint32_t batch_records;   /* 500 */
    uint32_t batch_age_ms;    /* 500 */
    uint64_t chunk_bytes;     /* 64 MiB */
    uint32_t chunk_age_s;     /* 3600 */
    uint64_t retention_age_s; /* 0 = off */
    uint64_t retention_bytes; /* 0 = off */
    bool force_pwrite;        /* false: io_uring when available */
    /* memory (services/writer/README.md); 0 = the writer's default */
    uint32_t depth;           /* write + fdatasync pairs in flight (4) */
    uint64_t buffer_bytes;    /* bytes of one in-flight write (1 MiB) */
    uint32_t block_points;    /* points held before a block goes out (32768) */
    uint64_t seal_memory;     /* bytes of points a seal holds at once (4 MiB) */
} config_writer;

typedef struct config_stats {
    uint32_t window;              /* 1000 values */
    uint32_t history_s;           /* 3600 */
    uint32_t history_capacity;    /* 10000 points per tag */
    uint32_t snapshot_interval_s; /* 60 */
    uint32_t publish_interval_s;  /* 5 */
    uint32_t shards;              /* 1 */
    uint32_t memory_limit_mb;     /* 10: per stats process, for the per-tag state; 0 = none */
} config_stats;

typedef struct config_controller {
    char *http;                  /* "127.0.0.1:9108" */
    double pressure_low;         /* 0.60 */
    double pressure_moderate;    /* 0.80 */
    double pressure_high;        /* 0.95 */
    double pressure_critical;    /* 0.98 */
    double pressure_hysteresis;  /* 0.05: a level is left only this far below its threshold */
    uint32_t check_interval_ms;  /* 100 */
    uint32_t rss_limit_mb;       /* per member; 0 = off */
    double device_quota;         /* a device's share of the ring, 0..1; 0 = off */
    uint32_t leak_window_s;      /* 300 */
    double leak_growth_mb_per_min; /* 10 */
    char **required_roles;       /* e.g. "poller", "writer"; healthz fails without them */
    size_t n_required_roles;
} config_controller;

/* Export to PostgreSQL (services/export). Off unless the section is present. */
typedef struct config_postgres {
    bool enabled; /* the section is present */
    char *conninfo;          /* libpq conninfo string or URI; TLS options (sslmode, ...) go here */
    char *password_file;     /* "" = none (libpq then uses PGPASSWORD / PGPASSFILE) */
    char *source;            /* this gateway's name in the database; "" = <hostname>/<segment> */
    uint32_t batch_records;  /* 500 */
    uint32_t batch_age_ms;   /* 500 */
    uint32_t connect_timeout_s; /* 5; used when conninfo sets no connect_timeout */
    uint32_t connections;    /* 2 (1..4): per process, each carrying one batch at a time */
    uint32_t backoff_min_ms; /* 200: first retry after an outage begins */
    uint32_t backoff_max_ms; /* 10000: retries are spread up to this, with jitter */
    uint64_t spool_max_bytes; /* 1 GiB: drop-oldest spool limit (data_dir/export/) */
} config_postgres;

/* Export to an MQTT broker (services/export). Off unless the section is present. */
typedef struct config_mqtt {
    bool enabled;
    char *host; /* "127.0.0.1" */
    uint16_t port; /* 1883 */
    char *client_id; /* "shmbus"; each process connects as <client_id>-<member name> */
    char *prefix;    /* "shmbus"; topics are <prefix>/<device>/<tag> */
    uint8_t qos;     /* 1 */
    bool retain;
    char *username;
    char *password_file;
    uint32_t keepalive_s;    /* 30 */
    uint32_t batch_records;  /* 500 */
    uint32_t batch_age_ms;   /* 500 */
    uint32_t ack_timeout_ms; /* 30000: a batch whose PUBACKs do not all come is resent */
    uint32_t backoff_min_ms; /* 200 */
    uint32_t backoff_max_ms; /* 10000 */
    uint64_t spool_max_bytes; /* 1 GiB */
    char *tls_ca_file;   /* "" = no TLS; set this (or tls_ca_path) to connect with TLS */
    char *tls_ca_path;
    char *tls_cert_file; /* client certificate, with tls_key_file */
    char *tls_key_file;
    bool tls_insecure;   /* do not check the broker's host name (tests only) */
} config_mqtt;

enum config_transport { CONFIG_TCP = 0, CONFIG_RTU = 1, CONFIG_RTU_OVER_TCP = 2 };

/* Modbus register tables; the values are the read function codes. */
enum config_register {
    CONFIG_REG_COIL = 1,
    CONFIG_REG_DISCRETE = 2,
    CONFIG_REG_HOLDING = 3,
    CONFIG_REG_INPUT = 4,
};

/* Data types; the values equal enum shm_data_type in shmbus/shm.h. */
enum config_type {
    CONFIG_T_BOOL = 0,
    CONFIG_T_BIT = 1,
    CONFIG_T_INT16 = 2,
    CONFIG_T_UINT16 = 3,
    CONFIG_T_INT32 = 4,
    CONFIG_T_UINT32 = 5,
    CONFIG_T_INT64 = 6,
    CONFIG_T_UINT64 = 7,
    CONFIG_T_FLOAT32 = 8,
    CONFIG_T_FLOAT64 = 9,
    CONFIG_T_STRING = 10,
};

#define CONFIG_STRING_MAX_REGS 4 /* a TagValue carries up to 8 bytes of text in `raw` */

typedef struct config_poll_group {
    char *name;
    uint32_t interval_ms; /* 1000 */
    uint32_t line;
} config_poll_group;

/* What shmbus-sim serves for a tag (the poller ignores it). The generator
 * gives the engineering value at time t (seconds since the epoch, to the
 * millisecond); the simulator stores (value - offset) / scale in the tag's
 * type and byte order, rounded to nearest for integers. */
enum config_sim_kind {
    CONFIG_SIM_DEFAULT = 0, /* chosen by type: toggle for bool/bit, counter for
                               integers, sine for floats, constant text for strings */
    CONFIG_SIM_CONSTANT,    /* value */
    CONFIG_SIM_RAMP,        /* min + (max - min) * frac(t / period_s) */
    CONFIG_SIM_SINE,        /* (min + max)/2 + (max - min)/2 * sin(2 pi t / period_s) */
    CONFIG_SIM_COUNTER,     /* min + (floor(t * step) mod (max - min + 1)) */
    CONFIG_SIM_RANDOM_WALK, /* +-step every period_s, reflected into [min, max],
                               restarting from the middle every 1000 steps */
    CONFIG_SIM_TOGGLE,      /* 0 for the first half of each period_s, then 1 */
};

typedef struct config_sim {
    uint8_t kind;    /* enum config_sim_kind */
    double min, max; /* 0, 100 */
    double period_s; /* 60 (10 for toggles) */
    double step;     /* 1 */
    double value;    /* constant */
    uint32_t seed;   /* random walk; default the tag id */
    char text[9];    /* string tags: up to 2 * length characters; default the tag name */
} config_sim;

typedef struct config_tag {
    char *name;
    uint32_t id;           /* catalog id; default: position across the whole file */
    uint32_t device;       /* index into config.devices */
    uint32_t poll_group;   /* index into the device's poll_groups */
    uint8_t unit_id;       /* 1..247; default the device's unit_id */
    uint8_t reg;           /* enum config_register */
    uint8_t type;          /* enum config_type */
    uint8_t bit;           /* for CONFIG_T_BIT: 0..15 */
    uint32_t address;      /* as written, in the device's address_base */
    uint16_t protocol_address; /* 0-based, on the wire */
    uint16_t registers;    /* registers (or bits) the tag spans */
    char order[9];         /* byte order letters, e.g. "CDAB"; "AB" for 16-bit types */
    uint8_t order_map[8];  /* order_map[i]: index (0 = most significant) of the value
                              byte found at wire byte i */
    double scale;          /* 1 */
    double offset;         /* 0 */
    double deadband;       /* 0 = publish every poll */
    uint32_t max_silence_s; /* with a deadband: publish at least this often; 0 = never forced */
    uint8_t priority;      /* 0 = highest; 255 lowest */
    char *unit;            /* engineering unit, "" when none */
    config_sim sim;        /* shmbus-sim's generator */
    uint32_t line;         /* where the tag starts in the file */
} config_tag;

typedef struct config_serial {
    char *device;       /* "/dev/ttyUSB0" */
    uint32_t baud;      /* 9600 */
    char parity;        /* 'N', 'E', 'O' */
    uint8_t data_bits;  /* 8 */
    uint8_t stop_bits;  /* 1 */
} config_serial;

typedef struct config_device {
    char *name;
    uint32_t id;          /* index in config.devices */
    int transport;        /* enum config_transport */
    char *host;           /* tcp, rtu-over-tcp */
    uint16_t port;        /* 502 */
    config_serial serial; /* rtu */
    uint8_t unit_id;      /* default unit id of its tags: 1 */
    uint32_t response_timeout_ms; /* 1000 */
    uint32_t byte_timeout_ms;     /* 0 = libmodbus default */
    uint32_t pause_ms;            /* pause between requests: 0 */
    uint8_t address_base;         /* 0 or 1, required */
    uint32_t max_gap;             /* registers of gap filled when merging: 0 */
    uint32_t max_registers;       /* per request, <= 125 */
    uint32_t max_bits;            /* per request, <= 2000 */
    bool single_request;          /* one request per tag */
    uint32_t reconnect_min_ms;    /* 200 */
    uint32_t reconnect_max_ms;    /* 30000 */
    uint32_t breaker_failures;    /* 3 failed cycles in a row open the unit's breaker */
    uint32_t breaker_open_s;      /* 10 */
    config_poll_group *poll_groups;
    size_t n_poll_groups;
    config_tag *tags; /* tags of this device, in file order */
    size_t n_tags;
    uint32_t line;
} config_device;

typedef struct config {
    char *file; /* path it was loaded from ("" for defaults) */
    config_segment segment;
    config_paths paths;
    config_writer writer;
    config_stats stats;
    config_controller controller;
    config_postgres postgres;
    config_mqtt mqtt;
    config_device *devices;
    size_t n_devices;
    size_t n_tags; /* over all devices */
} config;

/* Loads and validates `path`. Returns 0 and sets *out, or a negative errno
 * code (-ENOENT, -EACCES: the file; -EINVAL: its content; -ENOMEM) with the
 * reasons written to err (one "file:line: field: reason" per line). */
int config_load(const char *path, config **out, char *err, size_t errlen);

/* Same, from text in memory; `name` stands for the file in messages. */
int config_load_string(const char *text, size_t len, const char *name, config **out, char *err,
                       size_t errlen);

/* A config with every default and no devices (environment overrides applied).
 * Returns 0, -EINVAL (bad environment value, reason in err) or -ENOMEM. */
int config_defaults(config **out, char *err, size_t errlen);

/* Frees everything and clears *cfg. NULL-safe. */
void config_free(config **cfg);

/* Lookups; NULL when absent. */
const config_device *config_find_device(const config *cfg, const char *name);
const config_tag *config_find_tag(const config *cfg, const char *name);

/* Names of enum values, for messages and the catalog. */
const char *config_type_name(int type);
const char *config_register_name(int reg);
const char *config_transport_name(int transport);

/* Registers a data type occupies (0 for bool and bit, string: its length). */
unsigned config_type_registers(int type);

/* Parses a byte-order string for a type spanning `bytes` bytes: a
 * permutation of the first `bytes` letters (ABCD, CDAB, BADC, DCBA, or the
 * 64-bit ABCDEFGH, HGFEDCBA, BADCFEHG, GHEFCDAB, ...). Fills map[i] with the
 * significance index of the value byte at wire position i. Returns 0 or -1. */
int config_parse_order(const char *order, unsigned bytes, uint8_t map[8]);

#endif

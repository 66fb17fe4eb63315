/*
 * options.c — shmbus-stats' settings: defaults, then the group
 * configuration file (config_load: segment, paths and stats sections, with
 * the loader's environment overrides), then command-line flags.
 */
#include "options.h"

#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void stats_options_usage(FILE *f)
{
    fprintf(f, "usage: shmbus-stats [--config FILE] [--shard K/N] [options]\n"
               "  --config FILE            group configuration (segment, paths, stats sections)\n"
               "  --shard K/N              keep the tags whose hash mod N is K (group stats-K)\n"
               "  --segment NAME           segment name (default: config, else shmbus)\n"
               "  --run-dir DIR            where the nng ipc sockets go\n"
               "  --data-dir DIR           where the snapshot goes\n"
               "  --window N               rolling window, values per tag\n"
               "  --history-s S            time window kept per tag, seconds\n"
               "  --history-capacity N     points per tag before downsampling (>= 64)\n"
               "  --snapshot-interval-s S  snapshot period (0: only at stop)\n"
               "  --publish-interval-s S   summary period on the PUB socket (0: off)\n"
               "  --deadband X             a change is |delta| > X (default 0)\n"
               "  --min-interval-ms X      fastest suggested poll interval (default 100)\n"
               "  --max-interval-ms X      slowest suggested poll interval (default 60000)\n"
               "  --step-tag NAME          interpolate NAME as a step (state tag); repeatable\n"
               "  --max-tags N             tag ids below N (default: catalog capacity)\n"
               "  --max-request BYTES      largest request answered (default 65536)\n"
               "  --memory-limit-mb MB     bytes for the per-tag state (default 10; 0: none);\n"
               "                           window and history shrink to fit it\n"
               "Flags override the configuration file.\n");
}

static int parse_u32(const char *flag, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "shmbus-stats: %s: '%s' is not an integer from %u to %u\n", flag, s, lo,
                hi);
        return -1;
    }
    *out = (uint32_t)v;
    return 0;
}

static int parse_double(const char *flag, const char *s, double lo, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < lo) {
        fprintf(stderr, "shmbus-stats: %s: '%s' is not a number >= %g\n", flag, s, lo);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_shard(const char *s, uint32_t *k, uint32_t *n)
{
    char *slash = strchr(s, '/');
    char kbuf[16];
    if (!slash || (size_t)(slash - s) >= sizeof kbuf)
        goto bad;
    memcpy(kbuf, s, (size_t)(slash - s));
    kbuf[slash - s] = '\0';
    if (parse_u32("--shard", kbuf, 0, 1023, k) || parse_u32("--shard", slash + 1, 1, 1024, n))
        return -1;
    if (*k >= *n)
        goto bad;
    return 0;
bad:
    fprintf(stderr, "shmbus-stats: --shard: '%s' is not K/N with 0 <= K < N <= 1024\n", s);
    return -1;
}

static int copy_str(const char *flag, char *dst, size_t cap, const char *src)
{
    if (!src || !*src || strlen(src) >= cap) {
        fprintf(stderr, "shmbus-stats: %s: '%s' is empty or longer than %zu bytes\n", flag,
                src ? src : "", cap - 1);
        return -1;
    }
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

/* Takes the segment, paths and stats sections of the group configuration. */
static int apply_config(stats_options *o, const config *cfg, uint32_t *config_shards)
{
    if (copy_str("segment.name", o->segment, sizeof o->segment, cfg->segment.name) ||
        copy_str("paths.run_dir", o->run_dir, sizeof o->run_dir, cfg->paths.run_dir) ||
        copy_str("paths.data_dir", o->data_dir, sizeof o->data_dir, cfg->paths.data_dir))
        return -1;
    o->max_tags = cfg->segment.catalog_capacity;
    o->window = cfg->stats.window;
    o->history_s = cfg->stats.history_s;
    o->history_capacity = cfg->stats.history_capacity;
    o->snapshot_interval_s = cfg->stats.snapshot_interval_s;
    o->publish_interval_s = cfg->stats.publish_interval_s;
    o->memory_limit_mb = cfg->stats.memory_limit_mb;
    *config_shards = cfg->stats.shards;
    return 0;
}

/* Loads the file (or the defaults) into *cfg and takes its settings; the
 * caller frees *cfg (its tags are counted once the shard is known). */
static int load_config(stats_options *o, const char *path, config **cfg, uint32_t *config_shards)
{
    char err[4096] = "";
    int rc = path ? config_load(path, cfg, err, sizeof err) : config_defaults(cfg, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shmbus-stats: cannot load %s: %s\n", path ? path : "default settings",
                strerror(-rc));
        if (err[0])
            fprintf(stderr, "%s%s", err, err[strlen(err) - 1] == '\n' ? "" : "\n");
        return -1;
    }
    return apply_config(o, *cfg, config_shards);
}

/* The configured tags this process will keep: ids below max_tags that hash
 * to its shard. */
static uint32_t count_planned_tags(const stats_options *o, const config *cfg)
{
    uint32_t n = 0;
    for (size_t d = 0; d < cfg->n_devices; d++) {
        const config_device *dev = &cfg->devices[d];
        for (size_t i = 0; i < dev->n_tags; i++) {
            uint32_t id = dev->tags[i].id;
            n += id < o->max_tags &&
                 (o->shard_n == 1 || tagstore_shard_of(id, o->shard_n) == o->shard_k);
        }
    }
    return n;
}

void stats_options_store_params(const stats_options *o, store_params *p)
{
    *p = (store_params){
        .window = o->window,
        .history_ns = (int64_t)o->history_s * 1000000000LL,
        .history_capacity = o->history_capacity,
        .memory_limit = (uint64_t)o->memory_limit_mb << 20,
        .planned_tags = o->planned_tags,
        .deadband = o->deadband,
        .limits = {.min_ms = o->min_interval_ms, .max_ms = o->max_interval_ms},
        .shard_k = o->shard_k,
        .shard_n = o->shard_n,
        .max_tags = o->max_tags,
        .step_tags = o->step_tags,
        .n_step_tags = o->n_step_tags,
    };
}

/* The limit must hold the store's tables and the configured tags at the
 * minimal window and history; a bigger plant needs a bigger limit or shards. */
static int check_memory_limit(const stats_options *o)
{
    store_params p;
    stats_options_store_params(o, &p);
    budget_request req;
    budget_grant g;
    if (tagstore_plan(&p, &req, &g) != -ENOSPC)
        return 0;
    char why[512];
    budget_describe(&req, &g, o->memory_limit_name, why, sizeof why);
    int from_file = o->config_path && strcmp(o->memory_limit_name, "stats.memory_limit_mb") == 0;
    fprintf(stderr,
            "shmbus-stats: %s%s%s: %s; set %s to %llu or more, or split the tags over more "
            "stats shards (stats.shards)\n",
            from_file ? o->config_path : "", from_file ? ": " : "", o->memory_limit_name, why,
            o->memory_limit_name, (unsigned long long)((g.total_bytes + (1u << 20) - 1) >> 20));
    return -1;
}

enum {
    OPT_CONFIG = 256,
    OPT_SHARD,
    OPT_SEGMENT,
    OPT_RUN_DIR,
    OPT_DATA_DIR,
    OPT_WINDOW,
    OPT_HISTORY_S,
    OPT_HISTORY_CAP,
    OPT_SNAPSHOT_S,
    OPT_PUBLISH_S,
    OPT_DEADBAND,
    OPT_MIN_MS,
    OPT_MAX_MS,
    OPT_STEP_TAG,
    OPT_MAX_TAGS,
    OPT_MAX_REQUEST,
    OPT_MEMORY_LIMIT,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"segment", required_argument, NULL, OPT_SEGMENT},
    {"run-dir", required_argument, NULL, OPT_RUN_DIR},
    {"data-dir", required_argument, NULL, OPT_DATA_DIR},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"history-s", required_argument, NULL, OPT_HISTORY_S},
    {"history-capacity", required_argument, NULL, OPT_HISTORY_CAP},
    {"snapshot-interval-s", required_argument, NULL, OPT_SNAPSHOT_S},
    {"publish-interval-s", required_argument, NULL, OPT_PUBLISH_S},
    {"deadband", required_argument, NULL, OPT_DEADBAND},
    {"min-interval-ms", required_argument, NULL, OPT_MIN_MS},
    {"max-interval-ms", required_argument, NULL, OPT_MAX_MS},
    {"step-tag", required_argument, NULL, OPT_STEP_TAG},
    {"max-tags", required_argument, NULL, OPT_MAX_TAGS},
    {"max-request", required_argument, NULL, OPT_MAX_REQUEST},
    {"memory-limit-mb", required_argument, NULL, OPT_MEMORY_LIMIT},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

int stats_options_parse(stats_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof *o);
    o->argc = argc;
    o->argv = argv;
    o->shard_n = 1;
    o->deadband = 0;
    o->min_interval_ms = 100;
    o->max_interval_ms = 60000;
    o->max_request = 64 * 1024;

    /* First pass: only --config and --help, so flags can override the file. */
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            stats_options_usage(stdout);
            return 1;
        }
        if (c == OPT_CONFIG)
            o->config_path = optarg;
    }
    uint32_t config_shards = 1;
    config *cfg = NULL;
    o->memory_limit_name = "stats.memory_limit_mb";
    if (load_config(o, o->config_path, &cfg, &config_shards)) {
        config_free(&cfg);
        return -1;
    }

    opterr = 1;
    optind = 1;
    int shard_given = 0, rc = 0;
    while (rc == 0 && (c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            break;
        case OPT_SHARD:
            rc = parse_shard(optarg, &o->shard_k, &o->shard_n);
            shard_given = 1;
            break;
        case OPT_SEGMENT:
            rc = copy_str("--segment", o->segment, sizeof o->segment, optarg);
            if (rc == 0 && strchr(optarg, '/')) {
                fprintf(stderr, "shmbus-stats: --segment: '%s' contains '/'\n", optarg);
                rc = -1;
            }
            break;
        case OPT_RUN_DIR:
            rc = copy_str("--run-dir", o->run_dir, sizeof o->run_dir, optarg);
            break;
        case OPT_DATA_DIR:
            rc = copy_str("--data-dir", o->data_dir, sizeof o->data_dir, optarg);
            break;
        case OPT_WINDOW:
            rc = parse_u32("--window", optarg, 1, 1u << 26, &o->window);
            break;
        case OPT_HISTORY_S:
            rc = parse_u32("--history-s", optarg, 1, 366u * 86400, &o->history_s);
            break;
        case OPT_HISTORY_CAP:
            rc = parse_u32("--history-capacity", optarg, 64, 1u << 26, &o->history_capacity);
            break;
        case OPT_SNAPSHOT_S:
            rc = parse_u32("--snapshot-interval-s", optarg, 0, 86400, &o->snapshot_interval_s);
            break;
        case OPT_PUBLISH_S:
            rc = parse_u32("--publish-interval-s", optarg, 0, 86400, &o->publish_interval_s);
            break;
        case OPT_DEADBAND:
            rc = parse_double("--deadband", optarg, 0, &o->deadband);
            break;
        case OPT_MIN_MS:
            rc = parse_double("--min-interval-ms", optarg, 1, &o->min_interval_ms);
            break;
        case OPT_MAX_MS:
            rc = parse_double("--max-interval-ms", optarg, 1, &o->max_interval_ms);
            break;
        case OPT_STEP_TAG:
            if (o->n_step_tags == STATS_MAX_STEP_TAGS) {
                fprintf(stderr, "shmbus-stats: --step-tag: at most %d\n", STATS_MAX_STEP_TAGS);
                rc = -1;
            } else {
                o->step_tags[o->n_step_tags++] = optarg;
            }
            break;
        case OPT_MAX_TAGS:
            rc = parse_u32("--max-tags", optarg, 1, 1u << 24, &o->max_tags);
            break;
        case OPT_MAX_REQUEST:
            rc = parse_u32("--max-request", optarg, 64, 1u << 20, &o->max_request);
            break;
        case OPT_MEMORY_LIMIT:
            rc = parse_u32("--memory-limit-mb", optarg, 0, 1u << 20, &o->memory_limit_mb);
            o->memory_limit_name = "--memory-limit-mb";
            break;
        default:
            rc = -1; /* getopt printed the reason */
            break;
        }
    }
    if (rc)
        goto fail;
    if (optind < argc) {
        fprintf(stderr, "shmbus-stats: unexpected argument '%s'\n", argv[optind]);
        goto fail;
    }
    if (o->max_interval_ms < o->min_interval_ms) {
        fprintf(stderr, "shmbus-stats: --max-interval-ms (%g) is below --min-interval-ms (%g)\n",
                o->max_interval_ms, o->min_interval_ms);
        goto fail;
    }
    if (config_shards > 1 && !shard_given) {
        fprintf(stderr,
                "shmbus-stats: stats.shards is %u in %s: start one process per shard with "
                "--shard K/%u\n",
                config_shards, o->config_path ? o->config_path : "the configuration",
                config_shards);
        goto fail;
    }
    if (shard_given && config_shards > 1 && o->shard_n != config_shards) {
        fprintf(stderr, "shmbus-stats: --shard %u/%u disagrees with stats.shards = %u\n",
                o->shard_k, o->shard_n, config_shards);
        goto fail;
    }
    o->planned_tags = count_planned_tags(o, cfg);
    config_free(&cfg);
    return check_memory_limit(o);
fail:
    config_free(&cfg);
    return -1;
}

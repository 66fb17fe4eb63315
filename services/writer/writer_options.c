/*
 * writer_options.c — shmbus-writer's options: the `segment`, `paths` and
 * `writer` sections of the group configuration (services/common/config.h),
 * then command-line flags, which override the file.
 */
#include "config.h"
#include "writer.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The memory plan's defaults (README "Memory"): about 12 MiB in all
 * besides code and the ring. */
#define DEFAULT_DEPTH 4
#define DEFAULT_BUFFER (1u << 20)
#define DEFAULT_BLOCK_POINTS 32768u
#define DEFAULT_SEAL_MEMORY CHUNK_SEAL_MEMORY_DEFAULT

static void usage(FILE *f)
{
    fprintf(f,
            "usage: shmbus-writer [--config FILE] [--name ID] [options]\n"
            "Persists the records of consumer group `writer` into chunk files under\n"
            "<data_dir>/chunks, acknowledging each batch once it is durable.\n"
            "  --config FILE          group configuration (segment, paths, writer sections)\n"
            "  --name ID              this writer's name ([A-Za-z0-9_-], default writer-1);\n"
            "                         its chunk files are <ID>.<no>.chunk\n"
            "  --segment NAME         segment (overrides segment.name)\n"
            "  --data DIR             data directory (overrides paths.data_dir)\n"
            "  --batch-records N      write a batch at N records (writer.batch_records)\n"
            "  --batch-age-ms MS      ...or when its oldest record is MS old (writer.batch_age_ms)\n"
            "  --chunk-bytes N        seal a chunk at N bytes (writer.chunk_bytes)\n"
            "  --chunk-age-s S        ...or S seconds after it was started (writer.chunk_age_s)\n"
            "  --retention-age-s S    delete sealed chunks older than S seconds (0: keep)\n"
            "  --retention-bytes N    keep at most N bytes of chunks (0: no budget)\n"
            "  --force-pwrite         pwrite + fdatasync instead of io_uring (writer.force_pwrite)\n"
            "  --depth N              write + sync pairs in flight (writer.depth, default %d)\n"
            "  --buffer-bytes N       bytes of one in-flight write (writer.buffer_bytes,\n"
            "                         default %u); a larger block is cut into several writes\n"
            "  --block-points N       points held before a block must go out\n"
            "                         (writer.block_points, default %u)\n"
            "  --seal-memory N        bytes of points a seal holds at once; a larger chunk\n"
            "                         is regrouped through a temporary file (writer.seal_memory,\n"
            "                         default %u)\n",
            DEFAULT_DEPTH, DEFAULT_BUFFER, DEFAULT_BLOCK_POINTS, DEFAULT_SEAL_MEMORY);
}

static int parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    uint64_t mul = 1;
    if (end != s && *end) {
        if (strcmp(end, "KiB") == 0 || strcmp(end, "k") == 0)
            mul = 1ull << 10;
        else if (strcmp(end, "MiB") == 0 || strcmp(end, "M") == 0)
            mul = 1ull << 20;
        else if (strcmp(end, "GiB") == 0 || strcmp(end, "G") == 0)
            mul = 1ull << 30;
        else
            mul = 0;
    }
    if (errno || end == s || mul == 0 || s[0] == '-' || v > max / mul || v * mul < min) {
        fprintf(stderr, "shmbus-writer: %s: '%s' is not a number in %llu..%llu\n", flag, s,
                (unsigned long long)min, (unsigned long long)max);
        return -1;
    }
    *out = v * mul;
    return 0;
}

static int copy_str(const char *flag, char *dst, size_t cap, const char *src)
{
    if (strlen(src) >= cap) {
        fprintf(stderr, "shmbus-writer: %s: '%s' is longer than %zu bytes\n", flag, src, cap - 1);
        return -1;
    }
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

static int from_config(writer_options *o, const config *cfg)
{
    if (copy_str("segment.name", o->segment, sizeof o->segment, cfg->segment.name) < 0 ||
        copy_str("paths.data_dir", o->data_dir, sizeof o->data_dir, cfg->paths.data_dir) < 0)
        return -1;
    o->batch_records = cfg->writer.batch_records;
    o->batch_age_ms = cfg->writer.batch_age_ms;
    o->chunk_bytes = cfg->writer.chunk_bytes;
    o->chunk_age_s = cfg->writer.chunk_age_s;
    o->retention_age_s = cfg->writer.retention_age_s;
    o->retention_bytes = cfg->writer.retention_bytes;
    o->force_pwrite = cfg->writer.force_pwrite;
    if (cfg->writer.depth)
        o->depth = cfg->writer.depth;
    if (cfg->writer.buffer_bytes)
        o->buffer_bytes = (size_t)cfg->writer.buffer_bytes;
    if (cfg->writer.block_points)
        o->block_points = cfg->writer.block_points;
    if (cfg->writer.seal_memory)
        o->seal_memory = (size_t)cfg->writer.seal_memory;
    o->segment_options = (shm_segment_options){
        .slot_size = cfg->segment.slot_size,
        .slot_count = cfg->segment.slot_count,
        .policy = cfg->segment.policy == CONFIG_POLICY_DROP_OLDEST ? SHM_POLICY_DROP_OLDEST
                                                                   : SHM_POLICY_BACKPRESSURE,
        .max_members = cfg->segment.max_members,
        .catalog_capacity = cfg->segment.catalog_capacity,
        .counter_capacity = cfg->segment.counter_capacity,
    };
    return 0;
}

enum {
    OPT_CONFIG = 256,
    OPT_NAME,
    OPT_SEGMENT,
    OPT_DATA,
    OPT_BATCH_RECORDS,
    OPT_BATCH_AGE,
    OPT_CHUNK_BYTES,
    OPT_CHUNK_AGE,
    OPT_RET_AGE,
    OPT_RET_BYTES,
    OPT_FORCE_PWRITE,
    OPT_DEPTH,
    OPT_BUFFER,
    OPT_BLOCK_POINTS,
    OPT_SEAL_MEMORY,
    OPT_HELP,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"name", required_argument, NULL, OPT_NAME},
    {"segment", required_argument, NULL, OPT_SEGMENT},
    {"data", required_argument, NULL, OPT_DATA},
    {"batch-records", required_argument, NULL, OPT_BATCH_RECORDS},
    {"batch-age-ms", required_argument, NULL, OPT_BATCH_AGE},
    {"chunk-bytes", required_argument, NULL, OPT_CHUNK_BYTES},
    {"chunk-age-s", required_argument, NULL, OPT_CHUNK_AGE},
    {"retention-age-s", required_argument, NULL, OPT_RET_AGE},
    {"retention-bytes", required_argument, NULL, OPT_RET_BYTES},
    {"force-pwrite", no_argument, NULL, OPT_FORCE_PWRITE},
    {"depth", required_argument, NULL, OPT_DEPTH},
    {"buffer-bytes", required_argument, NULL, OPT_BUFFER},
    {"block-points", required_argument, NULL, OPT_BLOCK_POINTS},
    {"seal-memory", required_argument, NULL, OPT_SEAL_MEMORY},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* The test hook SHMBUS_WRITER_FAULT=fsync-eio-after:N (see README). */
static int fault_from_env(writer_options *o)
{
    const char *f = getenv("SHMBUS_WRITER_FAULT");
    if (!f || !*f)
        return 0;
    const char *prefix = "fsync-eio-after:";
    if (strncmp(f, prefix, strlen(prefix)) == 0)
        return parse_u64("SHMBUS_WRITER_FAULT", f + strlen(prefix), 1, UINT64_MAX,
                         &o->fault_fsync_after);
    fprintf(stderr, "shmbus-writer: SHMBUS_WRITER_FAULT: unknown fault '%s'\n", f);
    return -1;
}

int writer_options_parse(int argc, char **argv, writer_options *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->name, sizeof o->name, "writer-1");
    o->depth = DEFAULT_DEPTH;
    o->buffer_bytes = DEFAULT_BUFFER;
    o->block_points = DEFAULT_BLOCK_POINTS;
    o->seal_memory = DEFAULT_SEAL_MEMORY;
    /* First pass: --config and --help, so that flags override the file. */
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (c == OPT_HELP) {
            usage(stdout);
            return 1;
        }
        if (c == OPT_CONFIG && copy_str("--config", o->config_path, sizeof o->config_path, optarg))
            return -1;
    }
    char err[4096];
    config *cfg = NULL;
    int rc = o->config_path[0] ? config_load(o->config_path, &cfg, err, sizeof err)
                               : config_defaults(&cfg, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "shmbus-writer: %s%s%s\n", o->config_path[0] ? o->config_path : "defaults",
                err[0] ? ":\n" : ": ", err[0] ? err : strerror(-rc));
        return -1;
    }
    rc = from_config(o, cfg);
    config_free(&cfg);
    if (rc < 0)
        return -1;

    opterr = 1;
    optind = 1;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            break;
        case OPT_NAME:
            if (copy_str("--name", o->name, sizeof o->name, optarg) < 0)
                return -1;
            break;
        case OPT_SEGMENT:
            if (copy_str("--segment", o->segment, sizeof o->segment, optarg) < 0)
                return -1;
            break;
        case OPT_DATA:
            if (copy_str("--data", o->data_dir, sizeof o->data_dir, optarg) < 0)
                return -1;
            break;
        case OPT_BATCH_RECORDS:
            if (parse_u64("--batch-records", optarg, 1, 1u << 20, &v) < 0)
                return -1;
            o->batch_records = (uint32_t)v;
            break;
        case OPT_BATCH_AGE:
            if (parse_u64("--batch-age-ms", optarg, 0, 3600000, &v) < 0)
                return -1;
            o->batch_age_ms = (uint32_t)v;
            break;
        case OPT_CHUNK_BYTES:
            if (parse_u64("--chunk-bytes", optarg, 4096, 1ull << 32, &o->chunk_bytes) < 0)
                return -1;
            break;
        case OPT_CHUNK_AGE:
            if (parse_u64("--chunk-age-s", optarg, 1, 366u * 86400, &v) < 0)
                return -1;
            o->chunk_age_s = (uint32_t)v;
            break;
        case OPT_RET_AGE:
            if (parse_u64("--retention-age-s", optarg, 0, UINT64_MAX / 1000000000, &o->retention_age_s) < 0)
                return -1;
            break;
        case OPT_RET_BYTES:
            if (parse_u64("--retention-bytes", optarg, 0, UINT64_MAX, &o->retention_bytes) < 0)
                return -1;
            break;
        case OPT_FORCE_PWRITE:
            o->force_pwrite = true;
            break;
        case OPT_DEPTH:
            if (parse_u64("--depth", optarg, 1, 16, &v) < 0)
                return -1;
            o->depth = (unsigned)v;
            break;
        case OPT_BUFFER:
            if (parse_u64("--buffer-bytes", optarg, 64u << 10, 64u << 20, &v) < 0)
                return -1;
            o->buffer_bytes = (size_t)v;
            break;
        case OPT_BLOCK_POINTS:
            if (parse_u64("--block-points", optarg, 1024, 1u << 22, &v) < 0)
                return -1;
            o->block_points = (uint32_t)v;
            break;
        case OPT_SEAL_MEMORY:
            if (parse_u64("--seal-memory", optarg, 1u << 20, 1ull << 32, &v) < 0)
                return -1;
            o->seal_memory = (size_t)v;
            break;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shmbus-writer: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!chunk_writer_name_valid(o->name)) {
        fprintf(stderr, "shmbus-writer: --name '%s': use 1..%d of [A-Za-z0-9_-]\n", o->name,
                CHUNK_NAME_MAX);
        return -1;
    }
    if (snprintf(o->chunk_dir, sizeof o->chunk_dir, "%s/chunks", o->data_dir) >=
        (int)sizeof o->chunk_dir) {
        fprintf(stderr, "shmbus-writer: data directory '%s' is too long\n", o->data_dir);
        return -1;
    }
    return fault_from_env(o);
}

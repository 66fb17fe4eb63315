/*
 * options.c — shmstat's command line.
 *
 *   shmstat [--name NAME] [--json] [-w SECONDS [-n COUNT]]
 *   shmstat [--name NAME] --tail N [--json | --raw]
 *
 * The segment name defaults to $SHMBUS_SEGMENT, else "shmbus".
 */
#include "shmstat.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void options_usage(FILE *out)
{
    fprintf(out, "usage: shmstat [--name NAME] [--json] [-w SECONDS [-n COUNT]]\n"
                 "       shmstat [--name NAME] --tail N [--json | --raw]\n"
                 "\n"
                 "Shows a shmbus shared-memory segment (/shmbus.NAME), mapped read-only.\n"
                 "  --name NAME     segment name (default: $SHMBUS_SEGMENT, else \"shmbus\")\n"
                 "  --json, -j      print one JSON document (JSON lines with -w)\n"
                 "  -w SECONDS      refresh every SECONDS with rates from the interval\n"
                 "  -n COUNT        stop after COUNT reports (implies -w 1 when -w is absent)\n"
                 "  --tail N        print the newest N records (decoded TagValue, else hex)\n"
                 "  --raw           with --tail: write size-prefixed FlatBuffers to stdout\n"
                 "  -h, --help      this text\n"
                 "Exit status: 0 ok, 1 output error, 2 usage error or segment not attachable.\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "shmstat: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    options_usage(stderr);
    return SHMSTAT_EXIT_USAGE;
}

static int parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int options_parse(int argc, char **argv, struct shmstat_options *o)
{
    enum { OPT_NAME = 256, OPT_TAIL, OPT_RAW };
    static const struct option longopts[] = {
        {"name", required_argument, NULL, OPT_NAME},
        {"json", no_argument, NULL, 'j'},
        {"watch", required_argument, NULL, 'w'},
        {"count", required_argument, NULL, 'n'},
        {"tail", required_argument, NULL, OPT_TAIL},
        {"raw", no_argument, NULL, OPT_RAW},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    const char *name = getenv("SHMBUS_SEGMENT");
    if (!name || !*name)
        name = "shmbus";
    int have_n = 0;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":jw:n:h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_NAME:
            name = optarg;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'w': {
            char *end;
            errno = 0;
            double v = strtod(optarg, &end);
            if (errno || *optarg == '\0' || *end != '\0' || !isfinite(v) || v < 0.01 || v > 86400)
                return usage_error("-w %s: expected seconds between 0.01 and 86400", optarg);
            o->watch = 1;
            o->interval_s = v;
            break;
        }
        case 'n':
            if (parse_long(optarg, 1, 1000000000L, &o->count) != 0)
                return usage_error("-n %s: expected a count of 1 or more", optarg);
            have_n = 1;
            break;
        case OPT_TAIL: {
            long n;
            if (parse_long(optarg, 1, SHMSTAT_TAIL_MAX, &n) != 0)
                return usage_error("--tail %s: expected 1..65536 records", optarg);
            o->tail = (uint32_t)n;
            break;
        }
        case OPT_RAW:
            o->raw = 1;
            break;
        case 'h':
            options_usage(stdout);
            return -1;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (strlen(name) > SHM_NAME_MAX || *name == '\0')
        return usage_error("segment name '%s' is empty or longer than 31 characters", name);
    snprintf(o->name, sizeof o->name, "%s", name);
    if (have_n && !o->watch) {
        o->watch = 1;
        o->interval_s = 1.0;
    }
    if (o->raw && !o->tail)
        return usage_error("%s only goes with --tail N", "--raw");
    if (o->raw && o->json)
        return usage_error("%s: choose --json or --raw", "--tail");
    if (o->tail && o->watch)
        return usage_error("%s prints once; it does not combine with -w or -n", "--tail");
    return 0;
}

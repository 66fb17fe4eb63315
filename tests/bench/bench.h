/*
 * bench.h — shared helpers of shmbus-bench subcommands: clocks, medians,
 * JSON-line output and the --quick flag. Every figure a benchmark prints is
 * measured in that run; each case carries its baseline and ratio.
 */
#ifndef SHMBUS_BENCH_H
#define SHMBUS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bench_registry.h" /* declares every bench_<name>() */

int64_t bench_now_ns(void);
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

/* Child processes, for benchmarks that start the real services. */
void bench_sleep_s(double s);
/* The path of executable `name` in shmbus-bench's own folder (build/bin). */
void bench_bin_path(char *out, size_t len, const char *name);
/* A base port with `count` consecutive free loopback ports, or -1. */
int bench_free_port_range(int count);
/* Starts argv[0] with stdout and stderr appended to `log`; the child gets
 * SIGTERM if shmbus-bench dies first. Returns its pid or -1. */
pid_t bench_spawn(char *const argv[], const char *log);
/* SIGTERM, up to 4 s to exit, then SIGKILL; reaps. No-op for pid <= 0. */
void bench_stop(pid_t pid);
/* Waits until 127.0.0.1:port accepts a connection: 0, or -1 after `seconds`. */
int bench_wait_port(int port, double seconds);
/* Resident memory in MiB of a process: its own pages (own = anon + file:
 * RssAnon + RssFile, the latter its mapped files, executable included)
 * and, apart, the shared-memory pages it touched (RssShmem: the segment,
 * shared by every member); VmHWM; CPU seconds used (utime + stime). */
typedef struct bench_usage {
    double own_mb, anon_mb, file_mb, shmem_mb, hwm_mb, cpu_s;
} bench_usage;
void bench_proc_usage(pid_t pid, bench_usage *u);

#endif

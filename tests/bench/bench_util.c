/*
 * bench_util.c — clocks, medians, CPU time of children and JSON lines for
 * shmbus-bench.
 */
#include "bench.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double bench_proc_cpu_s(int pid)
{
    char path[64], buf[1024] = "";
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f && !fgets(buf, sizeof buf, f)) /* one line */
        buf[0] = '\0';
    if (f)
        fclose(f);
    const char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double bench_percentile(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)ceil(p / 100.0 * (double)n);
    if (i > 0)
        i--;
    if (i >= n)
        i = n - 1;
    return v[i];
}

int bench_has_flag(int argc, char **argv, const char *flag)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return 1;
    return 0;
}

const char *bench_flag_value(int argc, char **argv, const char *flag)
{
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], flag) == 0)
            return argv[i + 1];
    return NULL;
}

static void append(bench_json *j, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(j->buf + j->len, sizeof j->buf - j->len, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof j->buf - j->len)
        j->len += (size_t)n;
}

void bench_json_begin(bench_json *j, const char *bench, const char *case_name)
{
    j->len = 0;
    append(j, "{\"bench\":\"%s\",\"case\":\"%s\"", bench, case_name);
}

void bench_json_str(bench_json *j, const char *key, const char *value)
{
    append(j, ",\"%s\":\"%s\"", key, value);
}

void bench_json_num(bench_json *j, const char *key, double value)
{
    if (isfinite(value))
        append(j, ",\"%s\":%.6g", key, value);
    else
        append(j, ",\"%s\":null", key);
}

void bench_json_int(bench_json *j, const char *key, int64_t value)
{
    append(j, ",\"%s\":%lld", key, (long long)value);
}

void bench_json_end(bench_json *j)
{
    append(j, "}");
    puts(j->buf);
    fflush(stdout);
}

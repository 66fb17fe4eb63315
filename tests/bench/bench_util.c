/*
 * bench_util.c — clocks, medians, JSON lines and child processes for
 * shmbus-bench.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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

void bench_sleep_s(double s)
{
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

void bench_bin_path(char *out, size_t len, const char *name)
{
    char self[PATH_MAX - 64];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    self[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(out, len, "%s/%s", n > 0 ? self : ".", name);
}

int bench_free_port_range(int count)
{
    for (int attempt = 0; attempt < 50; attempt++) {
        int base = 20000 + (int)((getpid() * 7919 + attempt * 1543) % 30000);
        int ok = 1;
        for (int i = 0; i < count && ok; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in a = {.sin_family = AF_INET,
                                    .sin_port = htons((uint16_t)(base + i)),
                                    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
            ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
            if (fd >= 0)
                close(fd);
        }
        if (ok)
            return base;
    }
    return -1;
}

pid_t bench_spawn(char *const argv[], const char *log)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid; /* the parent, or -1 */
    /* The child: stopped with the benchmark even when that one is killed. */
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
        _exit(127);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        _exit(127);
    execv(argv[0], argv);
    static const char msg[] = "bench_spawn: exec failed\n";
    ssize_t ignored = write(2, msg, sizeof msg - 1);
    (void)ignored;
    _exit(127);
}

void bench_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        bench_sleep_s(0.02);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

int bench_wait_port(int port, double seconds)
{
    int64_t end = bench_now_ns() + (int64_t)(seconds * 1e9);
    while (bench_now_ns() < end) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
        close(fd);
        if (ok)
            return 0;
        bench_sleep_s(0.02);
    }
    return -1;
}

void bench_proc_usage(pid_t pid, bench_usage *u)
{
    char path[64], line[512];
    memset(u, 0, sizeof *u);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "RssAnon:", 8) == 0)
            u->anon_mb = atof(line + 8) / 1024.0;
        else if (strncmp(line, "RssFile:", 8) == 0)
            u->file_mb = atof(line + 8) / 1024.0;
        else if (strncmp(line, "RssShmem:", 9) == 0)
            u->shmem_mb = atof(line + 9) / 1024.0;
        else if (strncmp(line, "VmHWM:", 6) == 0)
            u->hwm_mb = atof(line + 6) / 1024.0;
    }
    if (f)
        fclose(f);
    u->own_mb = u->anon_mb + u->file_mb;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (f && fgets(line, sizeof line, f)) {
        char *p = strrchr(line, ')');
        unsigned long ut = 0, st = 0;
        if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) == 2)
            u->cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    }
    if (f)
        fclose(f);
}

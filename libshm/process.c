/*
 * process.c — clocks, logging, and process liveness as the registry sees it.
 *
 * A member is identified by pid *and* start time (field 22 of
 * /proc/<pid>/stat, clock ticks since boot), so a pid reused by another
 * process is never mistaken for the member. A zombie (exited, not yet reaped
 * by its parent) still has a /proc entry: it counts as dead.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t shm__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t shm__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void default_log(void *ctx, int level, const char *message)
{
    (void)ctx;
    static const char *names[] = {"info", "warning", "error"};
    fprintf(stderr, "shmbus: %s: %s\n", names[level < 0 || level > 2 ? 2 : level], message);
}

void shm__log(const shm_segment *seg, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (seg && seg->log_fn)
        seg->log_fn(seg->log_ctx, level, msg);
    else
        default_log(NULL, level, msg);
}

void shm_segment_set_log(shm_segment *seg, shm_log_fn fn, void *ctx)
{
    if (!seg)
        return;
    seg->log_fn = fn;
    seg->log_ctx = ctx;
}

/* Reads state (field 3) and start time (field 22) of a process. The command
 * name (field 2) may contain spaces and parentheses: parse after the last ')'. */
static int read_stat(int32_t pid, char *state, uint64_t *start_time)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return -1;
    p += 2;
    *state = *p;
    /* p points at field 3; skip to field 22 (19 more spaces). */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -1;
        p++;
    }
    *start_time = strtoull(p, NULL, 10);
    return 0;
}

uint64_t shm_process_start_time(int32_t pid)
{
    char state;
    uint64_t st;
    if (pid <= 0 || read_stat(pid, &state, &st) != 0)
        return 0;
    return st;
}

bool shm__pid_running(int32_t pid)
{
    char state;
    uint64_t st;
    if (pid <= 0 || (kill(pid, 0) != 0 && errno == ESRCH))
        return false;
    if (read_stat(pid, &state, &st) != 0)
        return false;
    return state != 'Z' && state != 'X';
}

int shm_process_alive(int32_t pid, uint64_t start_time)
{
    if (pid <= 0)
        return 0;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return 0;
    char state;
    uint64_t st;
    if (read_stat(pid, &state, &st) != 0)
        return 0;
    if (state == 'Z' || state == 'X')
        return 0;
    return st == start_time;
}

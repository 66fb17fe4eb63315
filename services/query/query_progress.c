/*
 * query_progress.c — "scanning 120/340 chunk files" on stderr while a long
 * scan runs, only when stderr is a terminal (pipes and logs stay clean).
 */
#include "query.h"

#include <time.h>
#include <unistd.h>

static int shown;
static int64_t last_ns;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void query_progress(void *ctx, size_t done, size_t total)
{
    (void)ctx;
    static int tty = -1;
    if (tty < 0)
        tty = isatty(STDERR_FILENO);
    if (!tty)
        return;
    int64_t now = mono_ns();
    if (done < total && now - last_ns < 100000000)
        return;
    last_ns = now;
    fprintf(stderr, "\rscanning %zu/%zu chunk files", done, total);
    shown = 1;
}

void query_progress_end(void)
{
    if (shown)
        fprintf(stderr, "\r\033[K");
    shown = 0;
}

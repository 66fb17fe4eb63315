/*
 * log.c — timestamped one-line logging for services (see log.h).
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static char service_name[32] = "shmbus";
static int threshold = -1;

static int threshold_from_env(void)
{
    const char *v = getenv("SHMBUS_LOG_LEVEL");
    if (!v)
        return LOG_LVL_INFO;
    if (strcasecmp(v, "debug") == 0)
        return LOG_LVL_DEBUG;
    if (strcasecmp(v, "warning") == 0 || strcasecmp(v, "warn") == 0)
        return LOG_LVL_WARNING;
    if (strcasecmp(v, "error") == 0)
        return LOG_LVL_ERROR;
    return LOG_LVL_INFO;
}

void log_init(const char *service)
{
    snprintf(service_name, sizeof service_name, "%s", service);
    threshold = threshold_from_env();
}

void log_msg(int level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warning", "error"};
    if (threshold < 0)
        threshold = threshold_from_env();
    if (level < threshold)
        return;
    if (level < 0 || level > LOG_LVL_ERROR)
        level = LOG_LVL_ERROR;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[1024];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, service_name, (int)getpid(), names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        n += vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line - 1)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_shm_sink(void *ctx, int level, const char *message)
{
    (void)ctx;
    log_msg(level == 0 ? LOG_LVL_INFO : level == 1 ? LOG_LVL_WARNING : LOG_LVL_ERROR, "%s",
            message);
}

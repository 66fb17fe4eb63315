/*
 * log.h — one-line logs for shmbus services, on stderr (supervisord and
 * journald capture it): "2026-11-23T16:40:01.123Z writer[1234] warning: ...".
 * Thread-safe (one write(2) per line). The level threshold comes from
 * SHMBUS_LOG_LEVEL (debug, info, warning, error; default info).
 */
#ifndef SHMBUS_LOG_H
#define SHMBUS_LOG_H

enum shmbus_log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO = 1, LOG_LVL_WARNING = 2, LOG_LVL_ERROR = 3 };

/* Sets the service name printed on every line (e.g. "writer"). */
void log_init(const char *service);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARNING, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/* A libshm log sink (shm_segment_set_log) that forwards to log_msg. */
void log_shm_sink(void *ctx, int level, const char *message);

#endif

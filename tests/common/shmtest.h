/*
 * shmtest.h — helpers shared by shmbus tests.
 *
 * Every resource a test makes through these helpers is released at exit,
 * also when an assertion fails: child processes are killed (SIGKILL) and
 * reaped, segments unlinked, temporary directories removed. Tests never
 * sleep for correctness; shmtest_wait_until() polls a condition with a
 * deadline instead.
 */
#ifndef SHMTEST_H
#define SHMTEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Fills buf with a segment name unique to this process and call
 * ("t<pid>-<prefix>-<n>"), unlinks a stale segment of that name (left by a
 * dead process with the same pid) and registers it for unlinking at exit. */
const char *shmtest_segment_name(char *buf, size_t len, const char *prefix);

/* Creates a fresh directory under $TMPDIR (or /tmp), removed at exit. */
const char *shmtest_tmpdir(char *buf, size_t len);

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int shmtest_free_port(void);

/* Path of a built executable: $SHMBUS_BIN_DIR/<name> (or ./bin/<name>). */
const char *shmtest_bin(char *buf, size_t len, const char *name);

/* Path of a source file: $SHMBUS_SOURCE_DIR/<rel>. */
const char *shmtest_source(char *buf, size_t len, const char *rel);

/* The Python interpreter that has Debian's packages ($SHMBUS_PYTHON3 or
 * /usr/bin/python3). */
const char *shmtest_python(void);

/* Starts argv[0] (a path) with argv; stdout/stderr go to log_path when not
 * NULL. The child is killed and reaped at exit if still running. */
pid_t shmtest_spawn(char *const argv[], const char *log_path);

/* Forks; the child runs fn(arg) and exits with its return value. Tracked
 * like shmtest_spawn. */
pid_t shmtest_fork(int (*fn)(void *), void *arg);

/* Waits for pid to exit within timeout_ms; returns its wait status, or -1 on
 * timeout (the child keeps running). */
int shmtest_wait_pid(pid_t pid, int timeout_ms);

/* Sends SIGKILL and reaps. */
void shmtest_kill(pid_t pid);

/* Polls cond(arg) every few milliseconds until it returns non-zero or
 * timeout_ms passes; returns the last value of cond. */
int shmtest_wait_until(int (*cond)(void *), void *arg, int timeout_ms);

/* Monotonic milliseconds. */
int64_t shmtest_now_ms(void);

/* A process-shared barrier in anonymous shared memory, for fork tests. */
typedef struct shmtest_barrier shmtest_barrier;
shmtest_barrier *shmtest_barrier_new(unsigned count);
void shmtest_barrier_wait(shmtest_barrier *b);

/* Anonymous MAP_SHARED memory that survives fork, zeroed. */
void *shmtest_shared_alloc(size_t len);

#endif

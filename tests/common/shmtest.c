/*
 * shmtest.c — test helpers: unique names, cleanup at exit, child processes.
 * See shmtest.h for the contract. Cleanup runs from atexit in the process
 * that registered the resource (children forked by tests do not inherit the
 * duty: they exit through _exit).
 */
#include "shmtest.h"

#include <shmbus/shm.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED 256

static pid_t owner_pid;
static char *segments[MAX_TRACKED];
static int n_segments;
static char *dirs[MAX_TRACKED];
static int n_dirs;
static pid_t children[MAX_TRACKED];
static int n_children;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    if (getpid() != owner_pid)
        return;
    for (int i = 0; i < n_children; i++) {
        if (children[i] > 0) {
            kill(children[i], SIGKILL);
            waitpid(children[i], NULL, 0);
        }
    }
    for (int i = 0; i < n_segments; i++)
        shm_segment_unlink(segments[i]);
    if (!getenv("SHMTEST_KEEP")) {
        for (int i = 0; i < n_dirs; i++)
            nftw(dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

static void ensure_init(void)
{
    if (owner_pid == getpid())
        return;
    owner_pid = getpid();
    n_segments = n_dirs = n_children = 0;
    atexit(cleanup);
}

const char *shmtest_segment_name(char *buf, size_t len, const char *prefix)
{
    static int counter;
    ensure_init();
    snprintf(buf, len, "t%d-%s-%d", (int)getpid(), prefix, counter++);
    /* A segment of that name can only be left by a dead test process whose
     * pid this one reuses (killed, or aborted before its atexit cleanup):
     * it is stale, and a test must start from none. */
    shm_segment_unlink(buf);
    if (n_segments < MAX_TRACKED)
        segments[n_segments++] = strdup(buf);
    return buf;
}

const char *shmtest_tmpdir(char *buf, size_t len)
{
    ensure_init();
    const char *base = getenv("TMPDIR");
    snprintf(buf, len, "%s/shmbus-test-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(buf)) {
        perror("mkdtemp");
        abort();
    }
    if (n_dirs < MAX_TRACKED)
        dirs[n_dirs++] = strdup(buf);
    return buf;
}

int shmtest_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        perror("free port");
        abort();
    }
    close(fd);
    return ntohs(a.sin_port);
}

const char *shmtest_bin(char *buf, size_t len, const char *name)
{
    const char *dir = getenv("SHMBUS_BIN_DIR");
    snprintf(buf, len, "%s/%s", dir && *dir ? dir : "./bin", name);
    return buf;
}

const char *shmtest_source(char *buf, size_t len, const char *rel)
{
    const char *dir = getenv("SHMBUS_SOURCE_DIR");
    snprintf(buf, len, "%s/%s", dir && *dir ? dir : ".", rel);
    return buf;
}

const char *shmtest_python(void)
{
    const char *p = getenv("SHMBUS_PYTHON3");
    return p && *p ? p : "/usr/bin/python3";
}

static void track_child(pid_t pid)
{
    ensure_init();
    if (n_children < MAX_TRACKED)
        children[n_children++] = pid;
}

static void untrack_child(pid_t pid)
{
    for (int i = 0; i < n_children; i++)
        if (children[i] == pid)
            children[i] = 0;
}

/* In a child: SIGKILL when the test process dies, also when it is killed
 * (a ctest timeout) and its atexit cleanup never runs. */
static void die_with_parent(void)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != owner_pid)
        _exit(127); /* the test died before the prctl */
}

pid_t shmtest_spawn(char *const argv[], const char *log_path)
{
    ensure_init();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        die_with_parent();
        if (log_path) {
            int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
            if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
                close(fd);
            }
        }
        execv(argv[0], argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    track_child(pid);
    return pid;
}

pid_t shmtest_fork(int (*fn)(void *), void *arg)
{
    ensure_init();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        die_with_parent();
        _exit(fn(arg));
    }
    track_child(pid);
    return pid;
}

int64_t shmtest_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int shmtest_wait_pid(pid_t pid, int timeout_ms)
{
    int64_t deadline = shmtest_now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            untrack_child(pid);
            return status;
        }
        if (r < 0)
            return -1;
        if (shmtest_now_ms() >= deadline)
            return -1;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

void shmtest_kill(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    untrack_child(pid);
}

int shmtest_wait_until(int (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = shmtest_now_ms() + timeout_ms;
    int v;
    while (!(v = cond(arg)) && shmtest_now_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return v;
}

struct shmtest_barrier {
    pthread_barrier_t b;
};

void *shmtest_shared_alloc(size_t len)
{
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        abort();
    }
    return p;
}

shmtest_barrier *shmtest_barrier_new(unsigned count)
{
    shmtest_barrier *b = shmtest_shared_alloc(sizeof *b);
    pthread_barrierattr_t attr;
    pthread_barrierattr_init(&attr);
    pthread_barrierattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&b->b, &attr, count);
    pthread_barrierattr_destroy(&attr);
    return b;
}

void shmtest_barrier_wait(shmtest_barrier *b)
{
    pthread_barrier_wait(&b->b);
}

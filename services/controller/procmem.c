/*
 * procmem.c — /proc/<pid>/statm and /proc/pressure/memory (see procmem.h).
 */
#include "procmem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads a small /proc file into buf (NUL-terminated). Returns 0 or -errno. */
static int read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, buf + got, cap - 1 - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int e = -errno;
            close(fd);
            return e;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    return 0;
}

int procmem_parse_statm(const char *text, size_t page_size, procmem_rss *out)
{
    unsigned long long size, resident, shared;
    if (!text || !out || page_size == 0)
        return -EINVAL;
    if (sscanf(text, "%llu %llu %llu", &size, &resident, &shared) != 3 || shared > resident ||
        resident > size)
        return -EINVAL;
    out->resident_bytes = (uint64_t)resident * page_size;
    out->shared_bytes = (uint64_t)shared * page_size;
    out->private_bytes = out->resident_bytes - out->shared_bytes;
    return 0;
}

int procmem_read_rss(pid_t pid, procmem_rss *out)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/statm", (int)pid);
    int rc = read_small(path, buf, sizeof buf);
    if (rc < 0)
        return rc == -ENOENT || rc == -ESRCH ? -ENOENT : -EINVAL;
    long ps = sysconf(_SC_PAGESIZE);
    return procmem_parse_statm(buf, ps > 0 ? (size_t)ps : 4096, out);
}

int procmem_parse_psi(const char *text, double *some_avg10)
{
    if (!text || !some_avg10)
        return -EINVAL;
    const char *line = text;
    while (line && *line) {
        if (strncmp(line, "some ", 5) == 0) {
            const char *p = strstr(line, "avg10=");
            const char *eol = strchr(line, '\n');
            if (!p || (eol && p > eol))
                return -EINVAL;
            char *end;
            double v = strtod(p + 6, &end);
            if (end == p + 6 || v < 0 || v > 100)
                return -EINVAL;
            *some_avg10 = v / 100.0;
            return 0;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return -EINVAL;
}

int procmem_read_psi(const char *path, double *some_avg10)
{
    char buf[512];
    int rc = read_small(path, buf, sizeof buf);
    if (rc < 0)
        return rc == -ENOENT || rc == -EACCES ? rc : -EINVAL;
    return procmem_parse_psi(buf, some_avg10);
}

/*
 * secret.c — password files for the targets. The password is read once at
 * start, kept in memory only as long as the client library needs it, and
 * never written to a log: errors name the file, never its content.
 */
#include "export.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void export_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

int export_read_secret(const char *path, char *out, size_t cap, bool *insecure, char *reason,
                       size_t len)
{
    *insecure = false;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(reason, len, "password file %s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077))
        *insecure = true;
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t n = read(fd, out + got, cap - 1 - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            close(fd);
            snprintf(reason, len, "password file %s: %s", path, strerror(e));
            export_wipe(out, cap);
            return -e;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    out[got] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    if (!out[0]) {
        snprintf(reason, len, "password file %s: empty first line", path);
        return -EINVAL;
    }
    return 0;
}

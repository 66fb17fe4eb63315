/*
 * writer_pwrite.c — the appender's fallback back end: pwrite the whole
 * buffer, then fdatasync, synchronously. Used when io_uring cannot be set
 * up (ENOSYS on old kernels, EPERM under seccomp or
 * kernel.io_uring_disabled) or when writer.force_pwrite is set.
 */
#include "writer_appender.h"

#include <errno.h>
#include <unistd.h>

int pwrite_submit(appender *a, unsigned i)
{
    struct slot *s = &a->slots[i];
    while (s->done < s->len) {
        ssize_t w = pwrite(a->fd, s->buf + s->done, s->len - s->done, (off_t)(s->offset + s->done));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            s->err = e;
            s->state = (e == ENOSPC || e == EDQUOT) ? SLOT_FAILED : SLOT_FATAL;
            return 0;
        }
        s->done += (size_t)w;
    }
    s->write_ok = true;
    bool fault = appender_fault_now(a);
    if (fdatasync(a->fd) != 0 || fault) {
        /* Never retried: after a failed sync the kernel may have dropped the
         * dirty pages, and a second sync could succeed falsely. */
        s->err = fault ? EIO : errno;
        s->in_sync = 1;
        s->state = SLOT_FATAL;
        return 0;
    }
    s->sync_ok = true;
    s->state = SLOT_DONE;
    return 0;
}

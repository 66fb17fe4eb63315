/*
 * writer_uring.c — the appender's io_uring back end.
 *
 * Each slot's buffer is registered with the kernel once (no page pinning per
 * write) and the chunk file is registered in a one-entry file table, updated
 * when the writer moves to a new chunk. A submission is a write linked to an
 * fdatasync (IOSQE_IO_LINK): the kernel starts the sync only after the write
 * completed in full, so a sync's success covers its own block and every
 * block completed before it. Several pairs are in flight at once (the
 * measured gain on this machine is +50 % and more); the appender reports
 * them in submission order.
 *
 * A short write breaks the link (the sync completes with -ECANCELED): the
 * remainder is submitted again with a new sync. Completions of an older
 * submission of the same slot are recognised by a generation number in
 * user_data and ignored.
 */
#include "log.h"
#include "writer_appender.h"

#include <errno.h>
#include <string.h>
#include <sys/uio.h>

enum { OP_WRITE = 0, OP_SYNC = 1 };

static uint64_t pack(unsigned slot, uint32_t gen, unsigned op)
{
    return (uint64_t)gen << 32 | (uint64_t)slot << 1 | op;
}

int uring_setup(appender *a)
{
    int rc = io_uring_queue_init(a->depth * 4, &a->ring, 0);
    if (rc < 0)
        return rc;
    a->ring_ok = true;
    struct iovec iov[APPENDER_MAX_DEPTH];
    for (unsigned i = 0; i < a->depth; i++)
        iov[i] = (struct iovec){.iov_base = a->slots[i].buf, .iov_len = a->buf_size};
    rc = io_uring_register_buffers(&a->ring, iov, a->depth);
    if (rc == 0)
        a->fixed_buffers = true;
    else
        log_warn("io_uring: cannot register %u buffers of %zu bytes (%s); using plain writes",
                 a->depth, a->buf_size, strerror(-rc));
    rc = io_uring_register_files_sparse(&a->ring, 1);
    if (rc == 0)
        a->fixed_file = true;
    else
        log_warn("io_uring: cannot register a file table (%s); using plain descriptors",
                 strerror(-rc));
    return 0;
}

void uring_teardown(appender *a)
{
    if (a->ring_ok)
        io_uring_queue_exit(&a->ring);
    a->ring_ok = false;
}

int uring_set_fd(appender *a, int fd)
{
    if (!a->fixed_file)
        return 0;
    int rc = io_uring_register_files_update(&a->ring, 0, &fd, 1);
    if (rc < 0) {
        log_warn("io_uring: cannot register the chunk file (%s); using plain descriptors",
                 strerror(-rc));
        a->fixed_file = false;
    }
    return 0;
}

int uring_submit(appender *a, unsigned i)
{
    struct slot *s = &a->slots[i];
    struct io_uring_sqe *w = io_uring_get_sqe(&a->ring);
    struct io_uring_sqe *f = w ? io_uring_get_sqe(&a->ring) : NULL;
    if (!w || !f)
        return -EBUSY; /* cannot happen: the ring has room for every slot twice */
    int target = a->fixed_file ? 0 : a->fd;
    void *p = s->buf + s->done;
    unsigned n = (unsigned)(s->len - s->done);
    uint64_t off = s->offset + s->done;
    if (a->fixed_buffers)
        io_uring_prep_write_fixed(w, target, p, n, off, (int)i);
    else
        io_uring_prep_write(w, target, p, n, off);
    w->flags |= IOSQE_IO_LINK | (a->fixed_file ? IOSQE_FIXED_FILE : 0);
    w->user_data = pack(i, s->gen, OP_WRITE);
    io_uring_prep_fsync(f, target, IORING_FSYNC_DATASYNC);
    f->flags |= a->fixed_file ? IOSQE_FIXED_FILE : 0;
    f->user_data = pack(i, s->gen, OP_SYNC);
    s->fault = appender_fault_now(a);
    int rc = io_uring_submit(&a->ring);
    return rc < 0 ? rc : 0;
}

static void on_write(appender *a, struct slot *s, unsigned i, int res)
{
    if (res < 0) {
        s->err = -res;
        s->state = (-res == ENOSPC || -res == EDQUOT) ? SLOT_FAILED : SLOT_FATAL;
        return;
    }
    s->done += (size_t)res;
    if (s->done < s->len) {
        if (res == 0) { /* no progress: the file system is full */
            s->err = ENOSPC;
            s->state = SLOT_FAILED;
            return;
        }
        s->gen++; /* the canceled sync of this submission is now stale */
        if (uring_submit(a, i) < 0) {
            s->err = EIO;
            s->state = SLOT_FATAL;
        }
        return;
    }
    s->write_ok = true;
    if (s->sync_ok)
        s->state = SLOT_DONE;
}

static void on_sync(struct slot *s, int res)
{
    if (res == -ECANCELED)
        return; /* the linked write failed or was short: handled there */
    if (res < 0 || s->fault) {
        /* Never retried (see writer_pwrite.c): the loop exits. */
        s->err = res < 0 ? -res : EIO;
        s->in_sync = 1;
        s->state = SLOT_FATAL;
        return;
    }
    s->sync_ok = true;
    if (s->write_ok)
        s->state = SLOT_DONE;
}

static void handle(appender *a, const struct io_uring_cqe *cqe)
{
    unsigned i = (unsigned)(cqe->user_data & 0xffffffffu) >> 1;
    unsigned op = (unsigned)cqe->user_data & 1;
    uint32_t gen = (uint32_t)(cqe->user_data >> 32);
    if (i >= a->depth)
        return;
    struct slot *s = &a->slots[i];
    if (s->gen != gen || s->state != SLOT_INFLIGHT)
        return;
    if (op == OP_WRITE)
        on_write(a, s, i, cqe->res);
    else
        on_sync(s, cqe->res);
}

int uring_collect(appender *a, int timeout_ms)
{
    struct io_uring_cqe *cqe;
    int rc;
    if (timeout_ms > 0) {
        struct __kernel_timespec ts = {.tv_sec = timeout_ms / 1000,
                                       .tv_nsec = (long long)(timeout_ms % 1000) * 1000000};
        rc = io_uring_wait_cqe_timeout(&a->ring, &cqe, &ts);
    } else if (timeout_ms == 0) {
        rc = io_uring_peek_cqe(&a->ring, &cqe);
    } else {
        rc = io_uring_wait_cqe(&a->ring, &cqe);
    }
    if (rc == -ETIME || rc == -EAGAIN || rc == -EINTR)
        return 0;
    if (rc < 0)
        return rc;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(&a->ring, head, cqe)
    {
        handle(a, cqe);
        seen++;
    }
    io_uring_cq_advance(&a->ring, seen);
    return 0;
}

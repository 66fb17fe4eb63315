/*
 * writer_appender.c — durable appends: a FIFO of buffers, each written at
 * its offset and followed by fdatasync, reported in submission order. The
 * back end is io_uring (writer_uring.c) or, when io_uring cannot be set up
 * or is switched off, pwrite + fdatasync (writer_pwrite.c).
 */
#include "log.h"
#include "writer_appender.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t writer_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t writer_real_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int appender_open(appender **out, bool force_pwrite, unsigned depth, size_t buf_size)
{
    if (depth == 0 || depth > APPENDER_MAX_DEPTH)
        return -EINVAL;
    appender *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->depth = depth;
    a->buf_size = buf_size;
    a->fd = -1;
    for (unsigned i = 0; i < depth; i++) {
        /* page-aligned buffers: registered with the kernel when io_uring is used */
        if (posix_memalign((void **)&a->slots[i].buf, 4096, buf_size) != 0) {
            appender_close(&a);
            return -ENOMEM;
        }
    }
    if (!force_pwrite) {
        int rc = uring_setup(a);
        if (rc == 0) {
            a->uring = true;
        } else {
            log_warn("io_uring unavailable (%s): falling back to pwrite + fdatasync",
                     strerror(-rc));
        }
    }
    *out = a;
    return 0;
}

void appender_close(appender **ap)
{
    appender *a = *ap;
    if (!a)
        return;
    if (a->uring)
        uring_teardown(a);
    for (unsigned i = 0; i < a->depth; i++)
        free(a->slots[i].buf);
    free(a);
    *ap = NULL;
}

const char *appender_kind(const appender *a)
{
    return a->uring ? "io_uring" : "pwrite";
}

size_t appender_buffer_size(const appender *a)
{
    return a->buf_size;
}

unsigned appender_busy(const appender *a)
{
    return a->count;
}

void appender_fault_sync_after(appender *a, uint64_t n)
{
    a->fault_sync_after = n;
}

int appender_set_fd(appender *a, int fd)
{
    if (a->count)
        return -EBUSY;
    a->fd = fd;
    return a->uring ? uring_set_fd(a, fd) : 0;
}

uint8_t *appender_acquire(appender *a, unsigned *slot)
{
    if (a->count == a->depth)
        return NULL;
    unsigned i = (a->head + a->count) % a->depth;
    struct slot *s = &a->slots[i];
    s->state = SLOT_RESERVED;
    s->len = s->done = 0;
    s->err = s->in_sync = 0;
    s->reported = false;
    a->count++;
    *slot = i;
    return s->buf;
}

static int submit(appender *a, unsigned i)
{
    struct slot *s = &a->slots[i];
    s->state = SLOT_INFLIGHT;
    s->write_ok = s->sync_ok = false;
    s->reported = false;
    s->gen++;
    s->t_submit = writer_mono_ns();
    return a->uring ? uring_submit(a, i) : pwrite_submit(a, i);
}

int appender_submit(appender *a, unsigned i, size_t len, uint64_t offset)
{
    struct slot *s = &a->slots[i];
    if (i >= a->depth || s->state != SLOT_RESERVED || len == 0 || len > a->buf_size)
        return -EINVAL;
    s->len = len;
    s->done = 0;
    s->offset = offset;
    return submit(a, i);
}

int appender_resubmit(appender *a, unsigned i)
{
    if (i >= a->depth || a->slots[i].state != SLOT_FAILED)
        return -EINVAL;
    return submit(a, i);
}

/* The head slot's outcome, if it has one to report. */
static int report_head(appender *a, append_result *r)
{
    if (a->count == 0)
        return 0;
    unsigned i = a->head;
    struct slot *s = &a->slots[i];
    if (s->state == SLOT_INFLIGHT || s->state == SLOT_RESERVED)
        return 0;
    if (s->state == SLOT_FAILED && s->reported)
        return 0;
    memset(r, 0, sizeof *r);
    r->slot = i;
    r->len = s->len;
    r->err = s->err;
    r->in_sync = s->in_sync;
    r->latency_ns = writer_mono_ns() - s->t_submit;
    if (s->state == SLOT_FAILED) {
        r->status = APPEND_RETRY;
        s->reported = true;
        return 1;
    }
    r->status = s->state == SLOT_DONE ? APPEND_OK : APPEND_FATAL;
    s->state = SLOT_FREE;
    a->head = (a->head + 1) % a->depth;
    a->count--;
    return 1;
}

int appender_poll(appender *a, int timeout_ms, append_result *r)
{
    if (report_head(a, r))
        return 1;
    if (a->uring && a->count) {
        int rc = uring_collect(a, timeout_ms);
        if (rc < 0)
            return rc;
        return report_head(a, r);
    }
    if (timeout_ms > 0) {
        struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

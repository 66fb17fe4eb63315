/*
 * writer_appender.h — private to the appender (writer_appender.c and its two
 * back ends, writer_uring.c and writer_pwrite.c).
 *
 * Slots form a FIFO: acquired, submitted and reported in the same order, so
 * the loop acknowledges batches in the order it wrote them, and a block is
 * reported durable only when every earlier block is.
 */
#ifndef SHMBUS_WRITER_APPENDER_H
#define SHMBUS_WRITER_APPENDER_H

#include "writer.h"

#include <liburing.h>

#define APPENDER_MAX_DEPTH 16

enum slot_state {
    SLOT_FREE = 0,
    SLOT_RESERVED, /* acquired, being filled */
    SLOT_INFLIGHT, /* write (and sync) submitted */
    SLOT_DONE,     /* durable */
    SLOT_FAILED,   /* write failed for lack of space: kept for a resubmit */
    SLOT_FATAL,    /* write or sync failed otherwise */
};

struct slot {
    int state;
    uint8_t *buf;
    size_t len, done; /* bytes to write, bytes written */
    uint64_t offset;
    uint32_t gen;     /* submission generation: stale completions are ignored */
    bool write_ok, sync_ok;
    int err, in_sync;
    bool reported;    /* a FAILED outcome was handed out */
    bool fault;       /* test hook: report this slot's sync as failed */
    int64_t t_submit;
};

struct appender {
    bool uring;
    unsigned depth;
    size_t buf_size;
    struct slot slots[APPENDER_MAX_DEPTH];
    unsigned head, count; /* FIFO of slots not free */
    int fd;
    uint64_t syncs_started;
    uint64_t fault_sync_after;
    /* io_uring */
    struct io_uring ring;
    bool ring_ok, fixed_buffers, fixed_file;
};

/* Back ends: submit the slot's remaining bytes (offset + done) and a sync;
 * collect completions for up to timeout_ms. */
int uring_setup(appender *a);
void uring_teardown(appender *a);
int uring_set_fd(appender *a, int fd);
int uring_submit(appender *a, unsigned slot);
int uring_collect(appender *a, int timeout_ms);

int pwrite_submit(appender *a, unsigned slot);

/* Sync number n (from 1) fails with EIO when the test hook asks for it. */
static inline bool appender_fault_now(appender *a)
{
    a->syncs_started++;
    return a->fault_sync_after && a->syncs_started == a->fault_sync_after;
}

#endif

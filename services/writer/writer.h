/*
 * writer.h — what shmbus-writer's source files share: its options, the
 * appender (io_uring or pwrite: durable appends completed in submission
 * order), the data directory, the sealer thread, counters and the catalog.
 *
 * Threads: the main thread consumes, encodes, appends and acknowledges; the
 * sealer thread seals closed chunks and applies retention. They share only
 * the sealer's queue (mutex + condition variable) and the counters (atomic
 * in the segment).
 */
#ifndef SHMBUS_WRITER_H
#define SHMBUS_WRITER_H

#include "chunk.h"

#include <shmbus/shm.h>

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ options */

typedef struct writer_options {
    char config_path[PATH_MAX];
    char name[CHUNK_NAME_MAX + 1];
    char segment[SHM_NAME_MAX + 1];
    char data_dir[PATH_MAX];  /* paths.data_dir */
    char chunk_dir[PATH_MAX]; /* <data_dir>/chunks */
    uint32_t batch_records;
    uint32_t batch_age_ms;
    uint64_t chunk_bytes;
    uint32_t chunk_age_s;
    uint64_t retention_age_s;
    uint64_t retention_bytes;
    bool force_pwrite;
    unsigned depth;      /* write + fdatasync pairs in flight */
    size_t buffer_bytes; /* one in-flight write's buffer */
    uint32_t block_points; /* points the block builder holds before a block must go out */
    size_t seal_memory;  /* points a seal's rewrite holds at once, in bytes */
    shm_segment_options segment_options; /* used when the writer creates the segment */
    uint64_t fault_fsync_after; /* test hook: fail the n-th sync with EIO (0: off) */
} writer_options;

/* Parses the command line and the configuration file. Returns 0, 1 when
 * --help was printed, or -1 after printing the reason. */
int writer_options_parse(int argc, char **argv, writer_options *o);

/* ----------------------------------------------------------- appender */

enum append_status { APPEND_OK = 0, APPEND_RETRY = 1, APPEND_FATAL = 2 };

typedef struct append_result {
    unsigned slot;
    int status;      /* enum append_status */
    int err;         /* errno of the failure */
    int in_sync;     /* the failure came from fdatasync */
    int64_t latency_ns; /* submit to durable */
    size_t len;
} append_result;

typedef struct appender appender;

/* Opens an appender with `depth` buffers of buf_size bytes: io_uring with
 * registered buffers and a registered file, linked write + fdatasync pairs;
 * or pwrite + fdatasync when force_pwrite is set or io_uring cannot be set
 * up (one warning is logged). */
int appender_open(appender **out, bool force_pwrite, unsigned depth, size_t buf_size);
void appender_close(appender **a);
const char *appender_kind(const appender *a); /* "io_uring" or "pwrite" */
/* The file appends go to; only while nothing is in flight. */
int appender_set_fd(appender *a, int fd);
/* The next slot's buffer, in FIFO order; NULL when every slot is busy. */
uint8_t *appender_acquire(appender *a, unsigned *slot);
/* Writes buffer[0, len) of the acquired slot at offset, then fdatasync. */
int appender_submit(appender *a, unsigned slot, size_t len, uint64_t offset);
/* Submits a slot again after APPEND_RETRY (same data, same offset). */
int appender_resubmit(appender *a, unsigned slot);
/* Waits up to timeout_ms for the oldest slot's outcome. Returns 1 with *r
 * filled (APPEND_OK and APPEND_FATAL free the slot; APPEND_RETRY keeps it
 * until resubmitted, and is reported once), 0 when nothing is ready. */
int appender_poll(appender *a, int timeout_ms, append_result *r);
unsigned appender_busy(const appender *a); /* slots not free */
size_t appender_buffer_size(const appender *a);
/* Test hook: the n-th fdatasync (counting from 1) reports EIO. */
void appender_fault_sync_after(appender *a, uint64_t n);

/* ------------------------------------------------------ data directory */

typedef struct writer_dir {
    int dirfd;
    int lockfd;
    char path[PATH_MAX];
    uint32_t next_no; /* number of the next chunk this writer creates */
} writer_dir;

/* Creates the chunk directory if needed, takes the writer's lock, removes
 * its leftover .tmp files and superseded .open files, recovers its .open
 * files (each one queued with `on_recovered`), reports foreign files.
 * Returns 0 or a negative code after logging a message naming the path. */
int writer_dir_open(writer_dir *d, const writer_options *o,
                    void (*on_recovered)(void *ctx, const char *name), void *ctx);
void writer_dir_close(writer_dir *d);

/* -------------------------------------------------------------- sealer */

typedef struct sealer sealer;
typedef struct writer_counters writer_counters;

int sealer_start(sealer **out, const writer_options *o, int dirfd, writer_counters *ctr);
/* Queues an unsealed chunk (a name in the directory) for sealing. */
void sealer_enqueue(sealer *s, const char *name);
/* Seals everything queued, then stops the thread. */
void sealer_stop(sealer **s);

/* ------------------------------------------------------------ counters */

struct writer_counters {
    shm_counter *points, *bytes, *batches, *syncs, *sync_ns, *sync_ns_last, *sync_ns_max,
        *errors, *invalid, *disk_full, *sealed, *retention_deleted, *chunk_bytes;
};

void writer_counters_open(writer_counters *c, shm_segment *seg, const char *name);
void counter_add(shm_counter *c, uint64_t v);
void counter_set(shm_counter *c, uint64_t v);

/* ------------------------------------------------------------ catalog */

typedef struct writer_catalog writer_catalog;

int writer_catalog_open(writer_catalog **out, shm_segment *seg, int dirfd, const char *writer,
                        const char *segment);
/* Notes a tag id seen in a record; new ids make the next sync rewrite. */
void writer_catalog_seen(writer_catalog *c, uint32_t tag_id);
/* Rewrites the catalog file when new ids were seen (at most every 2 s). */
void writer_catalog_sync(writer_catalog *c, int64_t now_mono_ns, bool force);
void writer_catalog_close(writer_catalog **c);

/* ------------------------------------------------------------ the loop */

/* Runs until SIGTERM/SIGINT (returns 0 after a clean shutdown) or a fatal
 * error (returns non-zero; nothing unacknowledged was acknowledged). */
int writer_run(const writer_options *o);

int64_t writer_mono_ns(void);
int64_t writer_real_ns(void);

#endif

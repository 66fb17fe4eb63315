/*
 * snapshot.h — the stats service's state on disk, so a restart (or a
 * SIGKILL) resumes where the last snapshot left off.
 *
 * Format (little-endian; version 1):
 *   header, 112 bytes:
 *     0  "SHMBSTAT"            magic
 *     8  u32 version (1)       12  u32 header length (112)
 *    16  u64 body length       24  u32 CRC-32C of the body
 *    28  u32 tag count         32  i64 written at (ns, realtime)
 *    40  i64 segment created_ns  48  u64 segment initial_seq
 *    56  u64 next_seq: ring sequence after the last record applied
 *    64  u32 shard K           68  u32 shard N
 *    72  char[32] segment name (NUL-padded)
 *   104  u32 reserved (0)     108  u32 CRC-32C of bytes 0..107
 *   body: per tag
 *     u32 id, u16 name length, name bytes,
 *     u8 has_meta, u8 data_type, u8 mode, u8 reserved,
 *     u64 added, u64 excluded_nonfinite, u64 excluded_quality,
 *     u32 n, n x (i64 t_ns, f64 value)          rolling window, oldest first
 *     i64 compacted_until_ns, u64 x 7 history counters (appended, inserted,
 *     replaced, too_old, purged, compactions, downsampled_away),
 *     u32 m, m x (i64 t_ns, f64 value)          time-window buffer, in order
 *
 * Writing is atomic: a temporary file in the same directory, streamed
 * through a buffer, fsync, rename over the old snapshot, fsync of the
 * directory. Reading checks, in order: size, magic, version, header CRC,
 * identity (segment name and shard), body length, body CRC, then every
 * field against its bounds, into a fresh store, so a bad file changes
 * nothing. The caller moves a rejected file aside (snapshot_move_aside).
 */
#ifndef SHMBUS_STATS_SNAPSHOT_H
#define SHMBUS_STATS_SNAPSHOT_H

#include "tagstore.h"

#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_MAGIC "SHMBSTAT"
#define SNAPSHOT_VERSION 1
#define SNAPSHOT_HEADER_LEN 112

typedef struct snapshot_identity {
    char segment[32];
    uint32_t shard_k, shard_n;
    int64_t segment_created_ns; /* 0 when not attached */
    uint64_t segment_initial_seq;
    uint64_t next_seq;  /* ring sequence after the last record applied */
    int64_t written_ns; /* filled by snapshot_read */
    uint32_t tags;      /* filled by snapshot_read */
} snapshot_identity;

/* Writes the store atomically to path. Returns 0 (and *bytes) or -errno;
 * err receives a reason naming the step that failed. */
int snapshot_write(const char *path, const tagstore *s, const snapshot_identity *id,
                   uint64_t *bytes, char *err, size_t err_len);

/* Reads path into `into` (a freshly initialised, empty store). expect gives
 * the segment name and shard; *found receives the file's identity.
 * Returns 0, -ENOENT (no file), -EILSEQ (foreign: not a snapshot, another
 * version, segment or shard), -EBADMSG (corrupt or truncated), -ENOMEM, or
 * another -errno (I/O). err says why. */
int snapshot_read(const char *path, tagstore *into, const snapshot_identity *expect,
                  snapshot_identity *found, char *err, size_t err_len);

/* Renames path to "<path>.bad-<unix time in ns>"; the new name goes to
 * moved_to. Returns 0 or -errno. */
int snapshot_move_aside(const char *path, char *moved_to, size_t len);

#endif

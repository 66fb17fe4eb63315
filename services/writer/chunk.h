/*
 * chunk.h — shmbus_chunk, the library that writes and reads chunk files
 * (format: schemas/chunk-format.md). shmbus-writer builds blocks, appends
 * them, recovers and seals chunks with it; shmbus-query scans, verifies and
 * decodes them with it.
 *
 * A chunk file is a file header followed by append-only blocks, each with
 * its own header, length and CRC32C. Data blocks hold per-tag columns:
 * timestamps (delta-of-delta, shared by the tags polled together), values
 * (decimal-scaled integers or Gorilla XOR), sequence numbers, quality and
 * exception codes. A sealed chunk ends with an index block and a footer.
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * CHUNK_E* code on failure; chunk_last_error() then holds a sentence naming
 * the file and offset. Nothing here is shared between threads except
 * chunk_crc32c() and the error text, which is per thread.
 */
#ifndef SHMBUS_CHUNK_H
#define SHMBUS_CHUNK_H

#include <shmbus/shm.h>

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- errors */

#define CHUNK_ERRORS(X)                                                                    \
    X(CHUNK_EINVAL, -101, "invalid argument")                                              \
    X(CHUNK_ENOMEM, -102, "out of memory")                                                 \
    X(CHUNK_EIO, -103, "I/O error")                                                        \
    X(CHUNK_ENOSPC, -104, "no space left on device")                                       \
    X(CHUNK_EPERM, -105, "permission denied")                                              \
    X(CHUNK_ENOENT, -106, "no such file or directory")                                     \
    X(CHUNK_EFOREIGN, -107, "not a shmbus chunk file")                                     \
    X(CHUNK_EVERSION, -108, "chunk format version is newer than this build reads")         \
    X(CHUNK_ECORRUPT, -109, "chunk data is damaged")                                       \
    X(CHUNK_ETRUNCATED, -110, "chunk file is truncated")                                   \
    X(CHUNK_ETOOBIG, -111, "does not fit")                                                 \
    X(CHUNK_EEXIST, -112, "already exists")                                                \
    X(CHUNK_EBUSY, -113, "in use by another process")

enum chunk_error {
    CHUNK_OK = 0,
#define CHUNK__ERR_ENUM(name, value, text) name = value,
    CHUNK_ERRORS(CHUNK__ERR_ENUM)
#undef CHUNK__ERR_ENUM
};

/* A static text for a CHUNK_E* code. */
const char *chunk_strerror(int err);
/* The calling thread's last diagnostic, naming file and offset; never NULL. */
const char *chunk_last_error(void);
/* Maps an errno value to a CHUNK_E* code (ENOSPC, EACCES/EPERM, ENOENT...). */
int chunk_errno_code(int errnum);

/* ---------------------------------------------------------- constants */

#define CHUNK_FORMAT_VERSION 1u
#define CHUNK_FILE_MAGIC "SHMBCHNK"
#define CHUNK_FILE_HEADER_SIZE 128u
#define CHUNK_FILE_HEADER_MAX 4096u /* what any version's header may grow to */
#define CHUNK_BLOCK_MAGIC "SHBK"
#define CHUNK_BLOCK_HEADER_SIZE 64u
#define CHUNK_FOOTER_PAYLOAD 64u
#define CHUNK_FOOTER_SIZE (CHUNK_BLOCK_HEADER_SIZE + CHUNK_FOOTER_PAYLOAD)
#define CHUNK_BLOCK_MAX_PAYLOAD (64u << 20) /* readers refuse larger blocks */
#define CHUNK_MAX_COLUMN_POINTS (1u << 24)  /* points of one column in one block */
#define CHUNK_NAME_MAX 31                   /* writer names: [A-Za-z0-9_-], 1..31 */

enum chunk_block_kind { CHUNK_BLOCK_DATA = 1, CHUNK_BLOCK_INDEX = 2, CHUNK_BLOCK_FOOTER = 3 };

/* ------------------------------------------------------------- CRC32C */

/* CRC32C (Castagnoli, reflected, as iSCSI and ext4 use it): pass 0 to start,
 * the previous result to continue. Uses SSE4.2 when the CPU has it. */
uint32_t chunk_crc32c(uint32_t crc, const void *data, size_t len);
/* The portable table implementation, exported for tests. */
uint32_t chunk_crc32c_table(uint32_t crc, const void *data, size_t len);
/* 1 when chunk_crc32c uses the SSE4.2 instruction. */
int chunk_crc32c_hw(void);

/* ------------------------------------------------------------- series */

/* Points of one tag as parallel arrays (struct of arrays), growable. */
typedef struct chunk_series {
    size_t n, cap;
    int64_t *ts;
    uint64_t *seq;
    double *value;
    int64_t *raw;
    uint8_t *quality;
    uint8_t *exception;
    uint16_t *flags;
    uint64_t *tmp; /* decoder scratch */
    size_t tmp_cap;
    void *mem; /* the one allocation the arrays live in */
} chunk_series;

int chunk_series_reserve(chunk_series *s, size_t n); /* room for n more points */
/* Room for n more points, growing to exactly that (no spare capacity). */
int chunk_series_reserve_exact(chunk_series *s, size_t n);
/* Bytes the series has allocated (points and decoder scratch). */
size_t chunk_series_memory(const chunk_series *s);
void chunk_series_free(chunk_series *s);
void chunk_series_clear(chunk_series *s);
/* Sorts by (timestamp, sequence) unless already sorted and removes repeated
 * sequence numbers (a batch stored twice); *removed (may be NULL) gets how
 * many. Returns 0 or CHUNK_ENOMEM. */
int chunk_series_sort_dedupe(chunk_series *s, size_t *removed);

/* ------------------------------------------------------------- blocks */

/* The fixed header of every block. */
typedef struct chunk_block_info {
    uint32_t kind;        /* enum chunk_block_kind */
    uint32_t payload_len;
    uint32_t points;      /* data: points in the block */
    uint32_t columns;     /* data: columns in the block */
    uint32_t payload_crc;
    uint64_t seq_min, seq_max;
    int64_t ts_min, ts_max;
} chunk_block_info;

/* Parses and checks a block header (magic, header CRC, kind, length) at buf
 * (avail bytes there). Does not read the payload. Returns 0, CHUNK_ETRUNCATED
 * when avail is short, CHUNK_ECORRUPT. */
int chunk_block_header_parse(const uint8_t *buf, size_t avail, chunk_block_info *out);
/* Parses the header and checks the payload CRC and, for data blocks, the
 * directory. Returns 0, CHUNK_ETRUNCATED, CHUNK_ECORRUPT. */
int chunk_block_check(const uint8_t *buf, size_t avail, chunk_block_info *out);
/* Writes a block header for payload (already in place after it). */
void chunk_block_header_write(uint8_t *hdr, const chunk_block_info *info, const uint8_t *payload);

/* A data block, checked, opened for reading columns. */
typedef struct chunk_data_view {
    const uint8_t *payload;
    uint32_t payload_len;
    uint32_t nstreams, ncols;
    chunk_block_info info;
} chunk_data_view;

typedef struct chunk_column_ref {
    uint32_t tag_id, device_id;
    uint32_t stream;  /* which timestamp stream it shares */
    uint32_t count;   /* points */
    int64_t ts_min, ts_max;
} chunk_column_ref;

/* Opens a data block (chunk_block_check is called). */
int chunk_data_view_open(const uint8_t *block, size_t len, chunk_data_view *v);
int chunk_data_view_column(const chunk_data_view *v, uint32_t col, chunk_column_ref *out);

enum chunk_fields {
    CHUNK_F_TS = 1 << 0,
    CHUNK_F_SEQ = 1 << 1,
    CHUNK_F_VALUE = 1 << 2,
    CHUNK_F_RAW = 1 << 3,
    CHUNK_F_QUALITY = 1 << 4,
    CHUNK_F_EXCEPTION = 1 << 5,
    CHUNK_F_FLAGS = 1 << 6,
    CHUNK_F_ALL = 0x7f,
};

/* Appends column col's points to out; fields not asked for are zero.
 * Returns the number of points appended or CHUNK_ECORRUPT. */
int chunk_data_decode_column(const chunk_data_view *v, uint32_t col, unsigned fields,
                             chunk_series *out);

/* The last timestamp stream decoded, so that decoding every column of a
 * block decodes each shared stream once (chunk_data_decode_column_cached). */
typedef struct chunk_stream_cache {
    const uint8_t *payload; /* block it belongs to */
    uint32_t stream;
    size_t n, cap;
    int64_t *ts;
    uint64_t *seq;
} chunk_stream_cache;
int chunk_data_decode_column_cached(const chunk_data_view *v, uint32_t col, unsigned fields,
                                    chunk_series *out, chunk_stream_cache *cache);
void chunk_stream_cache_free(chunk_stream_cache *c);

/* ------------------------------------------------------------ builder */

/* Collects points per (tag, device) and encodes them as data blocks.
 * Memory: what each column once held stays allocated for the next block
 * (a page fault on fresh memory costs more than encoding the page's points)
 * until chunk_builder_trim() gives it back. */
typedef struct chunk_builder chunk_builder;

/* The largest block chunk_builder_encode_groups() makes for a group of
 * columns: a larger group is cut into several blocks (a single column that
 * does not fit still gets its own). */
#define CHUNK_GROUP_BLOCK_MAX (512u << 10)

int chunk_builder_new(chunk_builder **out);
void chunk_builder_free(chunk_builder **b);
void chunk_builder_reset(chunk_builder *b);
int chunk_builder_add(chunk_builder *b, const shm_tag_value *v);
/* Adds points [from, from+n) of series s (all fields) to column (tag, dev). */
int chunk_builder_add_series(chunk_builder *b, uint32_t tag_id, uint32_t device_id,
                             const chunk_series *s, size_t from, size_t n);
/* Decodes column col of a data block straight into the builder (no copy).
 * Returns the points added or a negative code. */
int chunk_builder_add_column(chunk_builder *b, const chunk_data_view *v, uint32_t col,
                             chunk_stream_cache *cache);
/* Makes column (tag, dev) able to take n more points without growing,
 * allocating exactly that much when it must grow. Points must be added to
 * the column before the next encode (an empty column cannot be encoded). */
int chunk_builder_reserve(chunk_builder *b, uint32_t tag_id, uint32_t device_id, size_t n);
size_t chunk_builder_points(const chunk_builder *b); /* not yet encoded */
size_t chunk_builder_column_points(chunk_builder *b, uint32_t tag_id, uint32_t device_id);
size_t chunk_builder_columns(const chunk_builder *b);
size_t chunk_builder_max_column(const chunk_builder *b);
/* An upper bound on the bytes chunk_builder_encode() will write. */
size_t chunk_builder_bound(const chunk_builder *b);
/* The most points one column may hold and surely fit, alone, a block of cap
 * bytes (what chunk_builder_encode_next() needs to make progress). */
size_t chunk_builder_column_fit(size_t cap);
/* Bytes the builder has allocated for points, blocks and scratch. */
size_t chunk_builder_memory(const chunk_builder *b);
/* When the builder is empty and holds more than limit bytes, frees every
 * column's points (allocated again as needed) and an oversized block
 * buffer. */
void chunk_builder_trim(chunk_builder *b, size_t limit);
/* Encodes every column as one data block into out; on success resets the
 * builder. Returns 0, CHUNK_ETOOBIG (cap too small), CHUNK_EINVAL (empty). */
int chunk_builder_encode(chunk_builder *b, uint8_t *out, size_t cap, size_t *len,
                         chunk_block_info *info);
/* Encodes as many columns as fit cap bytes as one data block (all of them
 * when they fit; otherwise whole columns, in timestamp-group order). Returns
 * 0 when nothing is left (the builder is reset), 1 when columns remain for
 * the next call (until then nothing may be added), CHUNK_ETOOBIG when not
 * even one column fits, CHUNK_EINVAL when empty. */
int chunk_builder_encode_next(chunk_builder *b, uint8_t *out, size_t cap, size_t *len,
                              chunk_block_info *info);
/* True between a chunk_builder_encode_next() that returned 1 and the one
 * that returns 0. */
bool chunk_builder_encoding(const chunk_builder *b);
/* Encodes one data block per group of columns that share their timestamps
 * (cut at CHUNK_GROUP_BLOCK_MAX) and hands each to emit (the block is valid
 * during the call); resets the builder. Returns 0 or the first error
 * (emit's own negative codes pass). */
typedef int (*chunk_emit_fn)(void *ctx, const uint8_t *block, size_t len,
                             const chunk_block_info *info);
int chunk_builder_encode_groups(chunk_builder *b, chunk_emit_fn emit, void *ctx);

/* -------------------------------------------------------- file header */

typedef struct chunk_file_header {
    uint32_t version;
    uint32_t chunk_no;
    int64_t created_ns;         /* CLOCK_REALTIME when the chunk was created */
    int64_t segment_created_ns; /* identifies the segment instance the data came from */
    char writer[CHUNK_NAME_MAX + 1];
    char segment[SHM_NAME_MAX + 1];
} chunk_file_header;

void chunk_file_header_write(const chunk_file_header *h, uint8_t out[CHUNK_FILE_HEADER_SIZE]);
/* Parses the header at the start of a file (len bytes read, up to
 * CHUNK_FILE_HEADER_MAX). Returns 0, CHUNK_ETRUNCATED (shorter than its
 * header), CHUNK_EFOREIGN (bad magic), CHUNK_EVERSION (newer format, header
 * CRC valid), CHUNK_ECORRUPT (header CRC or fields). */
int chunk_file_header_parse(const uint8_t *buf, size_t len, chunk_file_header *out);

/* -------------------------------------------------------------- index */

typedef struct chunk_index_entry {
    uint32_t tag_id, device_id;
    uint64_t block_offset;
    uint32_t block_len; /* header + payload */
    uint32_t points;
    int64_t ts_min, ts_max;
} chunk_index_entry;

typedef struct chunk_index {
    chunk_index_entry *e;
    size_t n, cap;
} chunk_index;

/* Adds one entry per column of the data block at `offset`. */
int chunk_index_add_block(chunk_index *ix, const uint8_t *block, size_t len, uint64_t offset);
void chunk_index_sort(chunk_index *ix); /* by (tag, device, ts_min) */
void chunk_index_free(chunk_index *ix);
/* Bytes of the encoded index block. */
size_t chunk_index_block_size(const chunk_index *ix);
/* Encodes the index block into out (chunk_index_block_size bytes). */
void chunk_index_encode(const chunk_index *ix, uint8_t *out);
/* Decodes a checked index block, validating entries against file_size. */
int chunk_index_decode(const uint8_t *block, size_t len, uint64_t file_size, chunk_index *ix);

typedef struct chunk_footer {
    uint64_t index_offset;
    uint32_t index_len;
    uint32_t data_blocks;
    uint64_t points;
    int64_t ts_min, ts_max;
    uint64_t seq_min, seq_max;
    uint64_t data_bytes; /* bytes of data blocks */
} chunk_footer;

void chunk_footer_write(const chunk_footer *f, uint8_t out[CHUNK_FOOTER_SIZE]);
int chunk_footer_parse(const uint8_t *buf, size_t len, chunk_footer *out);

/* ------------------------------------------------------------- names */

enum chunk_name_kind {
    CHUNK_NAME_FOREIGN = 0,
    CHUNK_NAME_SEALED,  /* <writer>.<no>.chunk */
    CHUNK_NAME_OPEN,    /* <writer>.<no>.open */
    CHUNK_NAME_TMP,     /* <writer>.<no>.tmp: a seal in progress */
    CHUNK_NAME_DAMAGED, /* <writer>.<no>.damaged: copy kept before a truncation */
    CHUNK_NAME_CATALOG, /* <writer>.catalog.json */
    CHUNK_NAME_LOCK,    /* <writer>.lock */
};

int chunk_writer_name_valid(const char *name);
/* Classifies a file name of a data directory; fills writer and no. */
int chunk_name_parse(const char *fname, char writer[CHUNK_NAME_MAX + 1], uint32_t *no);
void chunk_name_format(char *buf, size_t len, const char *writer, uint32_t no, int kind);

/* --------------------------------------------------------------- scan */

typedef struct chunk_damage {
    uint64_t offset, length; /* the bytes dropped */
    char what[120];
} chunk_damage;

typedef struct chunk_block_ref {
    uint64_t offset;
    uint32_t len;
    uint32_t points;
} chunk_block_ref;

enum chunk_scan_flags {
    CHUNK_SCAN_RESYNC = 1 << 0, /* past damage, look for the next intact block (readers) */
    CHUNK_SCAN_FULL = 1 << 1,   /* check every block even when the index is valid */
    CHUNK_SCAN_BLOCKS = 1 << 2, /* list blocks only: no per-column index (sealing) */
};

/* What a scan of one chunk file found. */
typedef struct chunk_scan {
    chunk_file_header header;
    uint64_t file_size;
    uint64_t good_end; /* end of the intact prefix: recovery truncates here */
    int sealed;        /* a valid index and footer end the file */
    chunk_footer footer;
    chunk_index index;     /* every intact data block's columns */
    chunk_block_ref *blocks; /* intact data blocks in file order */
    size_t n_blocks, cap_blocks;
    uint64_t points;
    uint64_t data_bytes;
    chunk_damage *damage;
    size_t n_damage, cap_damage;
    uint64_t bytes_dropped;
    uint32_t blocks_dropped_after; /* intact blocks found after the first damage */
    uint64_t columns;              /* column entries of the intact data blocks */
} chunk_scan;

/* Scans an open file. Without CHUNK_SCAN_FULL a sealed chunk is taken from
 * its footer and index (blocks are checked when read). Returns 0 (damage is
 * reported in out, not as an error) or CHUNK_EFOREIGN, CHUNK_EVERSION,
 * CHUNK_ECORRUPT (file header), CHUNK_ETRUNCATED (no complete file header),
 * CHUNK_EIO, CHUNK_ENOMEM. */
int chunk_scan_fd(int fd, const char *path, unsigned flags, chunk_scan *out);
void chunk_scan_free(chunk_scan *s);

/* ----------------------------------------------------- recover & seal */

typedef struct chunk_recover_report {
    uint64_t truncated_at;     /* UINT64_MAX when nothing was cut */
    uint64_t bytes_dropped;
    uint32_t blocks_kept;
    uint32_t blocks_dropped;   /* intact blocks after the damage, dropped with it */
    uint64_t points_kept;
    int was_sealed;            /* the file already ended in index + footer */
    int removed_empty;         /* the file held no complete header: removed */
    int moved_aside;           /* its header was damaged: renamed to damaged_copy */
    char damaged_copy[64];     /* name of the copy kept, "" when none */
} chunk_recover_report;

/* Recovers unsealed chunk `name` in directory dirfd: truncates it at the end
 * of the last block whose CRC holds (never past a bad block), fsyncs it; a
 * copy is kept as <writer>.<no>.damaged when intact blocks follow the damage.
 * A file without a complete header is removed; one with a damaged header is
 * renamed to .damaged (chunk_last_error() says why). Returns 0, or
 * CHUNK_EVERSION (a newer writer's file: left alone), CHUNK_EIO, ... */
int chunk_recover(int dirfd, const char *name, chunk_recover_report *rep);

typedef struct chunk_seal_report {
    int compacted;
    int merged; /* the rewrite went through an intermediate file (more points than the
                   seal's memory holds at once) */
    uint64_t bytes_before, bytes_after;
    uint64_t points;
    uint32_t blocks_before, blocks_after;
    char sealed_name[64];
} chunk_seal_report;

enum chunk_seal_flags {
    CHUNK_SEAL_COMPACT = 1 << 0,    /* always rewrite into per-group blocks */
    CHUNK_SEAL_NO_COMPACT = 1 << 1, /* never rewrite; append index + footer */
};

/* Seals unsealed chunk `name` (<writer>.<no>.open, already recovered or
 * closed by its writer): either appends index and footer (large blocks) or
 * rewrites its data into per-timestamp-group blocks in <writer>.<no>.tmp;
 * then fsync, atomic rename to <writer>.<no>.chunk, directory fsync, and the
 * .open file removed. Crash-safe at every step. */
int chunk_seal(int dirfd, const char *name, unsigned flags, chunk_seal_report *rep);
/* The same, keeping its memory in ctx for the next seal (one per thread).
 * memory bounds the points a rewrite holds at once (0: the default); the
 * context needs about that plus 2.5 MiB of buffers. */
#define CHUNK_SEAL_MEMORY_DEFAULT (4u << 20)
/* The context's buffers besides that: a read window that grows to the
 * largest block read (a writer's write buffer: 1 MiB by default), two
 * output buffers, a group block. */
#define CHUNK_SEAL_BUFFERS ((1u << 20) + 2 * (256u << 10) + CHUNK_GROUP_BLOCK_MAX)
typedef struct chunk_seal_ctx chunk_seal_ctx;
int chunk_seal_ctx_new(chunk_seal_ctx **out, size_t memory);
void chunk_seal_ctx_free(chunk_seal_ctx **ctx);
int chunk_seal_with(chunk_seal_ctx *ctx, int dirfd, const char *name, unsigned flags,
                    chunk_seal_report *rep);

/* Creates <writer>.<no>.open in dirfd (name written to `name`) holding the
 * header h, with file and directory fsynced. Returns the open fd
 * (read-write) or a negative code: CHUNK_EEXIST, CHUNK_ENOSPC, CHUNK_EPERM. */
int chunk_create(int dirfd, const chunk_file_header *h, char *name, size_t name_len);

/* Deletes sealed chunks in dirfd, oldest (by newest point) first, while
 * their newest point is older than max_age_s before now_ns or while all
 * chunk files exceed max_bytes (0: no limit). on_delete (may be NULL) hears
 * of each: why 1 age, 2 bytes, negative errno when removal failed. Returns
 * the number deleted. */
typedef void (*chunk_retention_fn)(void *ctx, const char *name, uint64_t bytes, int why);
int chunk_retention(int dirfd, uint64_t max_age_s, uint64_t max_bytes, int64_t now_ns,
                    chunk_retention_fn on_delete, void *ctx);

/* fsync(dirfd) with the errno mapped. */
int chunk_fsync_dir(int dirfd, const char *what);

/* -------------------------------------------------- reading a directory */

typedef struct chunk_store_file {
    char name[64];
    char writer[CHUNK_NAME_MAX + 1];
    uint32_t no;
    int kind;       /* CHUNK_NAME_SEALED, _OPEN or _DAMAGED */
    int err;        /* why it cannot be read (reported in problems), or 0 */
    int superseded; /* an .open whose .chunk exists: not read */
    int gone;       /* removed between listing and opening */
    int fd;
    chunk_scan scan;
} chunk_store_file;

/* Every chunk of a data directory, opened for reading. */
typedef struct chunk_store {
    char dir[PATH_MAX];
    int dirfd;
    chunk_store_file *files; /* sorted by (writer, number) */
    size_t nfiles, cap_files;
    char **problems; /* "path: offset N: what", one per problem found */
    size_t nproblems, cap_problems;
    uint8_t *block;
    size_t block_cap;
} chunk_store;

typedef struct chunk_read_stats {
    uint64_t blocks_read, blocks_bad, bytes_read;
    uint64_t points_decoded, points_dropped, duplicates_removed;
} chunk_read_stats;

/* Lists and scans every chunk in dir (flags: CHUNK_SCAN_FULL to check every
 * block and the indexes). Problems with single files are recorded, not
 * returned. Returns 0, or CHUNK_ENOENT / CHUNK_EPERM / CHUNK_EIO for the
 * directory itself. */
typedef void (*chunk_progress_fn)(void *ctx, size_t done, size_t total);
int chunk_store_open(const char *dir, unsigned flags, chunk_progress_fn progress, void *ctx,
                     chunk_store **out);
void chunk_store_close(chunk_store **s);
int chunk_store_file_usable(const chunk_store_file *f);
/* Bytes of an unsealed chunk's incomplete tail (its only damage, at the end:
 * a write in progress or a writer that died), else 0. Not damage to data
 * anyone acknowledged. */
uint64_t chunk_store_torn_tail(const chunk_store_file *f);
/* Appends a problem line. */
int chunk_store_problem(chunk_store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reads tag over [from, to] (ns, inclusive) from every chunk into out,
 * sorted by time with repeated sequence numbers removed. Damaged blocks are
 * skipped and reported in problems and st. */
int chunk_store_read(chunk_store *s, uint32_t tag, int64_t from, int64_t to, unsigned fields,
                     chunk_series *out, chunk_read_stats *st);

/* ------------------------------------------------------------ catalog */

typedef struct chunk_catalog_entry {
    uint32_t id, device_id;
    char *name, *device, *unit;
    uint8_t data_type; /* enum shm_data_type */
    int64_t updated_ns; /* of the file it came from (readers) */
} chunk_catalog_entry;

typedef struct chunk_catalog {
    chunk_catalog_entry *e;
    size_t n, cap;
} chunk_catalog;

/* Writes <writer>.catalog.json atomically (temp, fsync, rename, dir fsync). */
int chunk_catalog_write(int dirfd, const char *writer, const char *segment,
                        const chunk_catalog_entry *e, size_t n);
/* Merges every catalog file of dir into c; unreadable files are reported to
 * problems (when not NULL). */
int chunk_catalog_load(const char *dir, chunk_catalog *c, chunk_store *problems);
int chunk_catalog_lookup(const chunk_catalog *c, const char *name, uint32_t *id);
const chunk_catalog_entry *chunk_catalog_get(const chunk_catalog *c, uint32_t id);
void chunk_catalog_free(chunk_catalog *c);

#endif

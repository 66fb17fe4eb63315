/*
 * wtest.h — helpers for the writer's tests: plant-like points, chunk files
 * written through the library, the map from each block of a file to the
 * sequence numbers it holds, and reading a whole data directory back.
 */
#ifndef SHMBUS_WTEST_H
#define SHMBUS_WTEST_H

#include "chunk.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

uint64_t wtest_rand(void);
void wtest_seed(uint64_t s);

/* Points of `polls` polls of `tags` tags in groups of 4 sharing a
 * timestamp; sequence numbers from *seq on, times from *t on (both advance). */
shm_tag_value *wtest_points(size_t polls, uint32_t tags, uint64_t *seq, int64_t *t, size_t *n);

/* Writes <writer>.<no>.open in dirfd with `blocks` blocks of `polls` polls
 * each; appends the points to *all (grown with realloc, *nall updated).
 * Returns 0. */
int wtest_write_open_chunk(int dirfd, const char *writer, uint32_t no, size_t blocks, size_t polls,
                           uint32_t tags, uint64_t *seq, int64_t *t, shm_tag_value **all,
                           size_t *nall);

/* One block of a file: where it is and which sequence numbers it holds. */
typedef struct wtest_block {
    uint64_t offset, len;
    uint64_t *seqs;
    size_t nseqs;
} wtest_block;

/* Maps every intact block of the file at path. Returns the count. */
size_t wtest_block_map(const char *path, wtest_block **out);
void wtest_block_map_free(wtest_block *b, size_t n);

/* Reads every tag in [0, tags) from dir through chunk_store; returns the
 * store (caller closes) and the points, concatenated. */
chunk_store *wtest_read_all(const char *dir, uint32_t tags, chunk_series *out, uint64_t *dropped);

/* Copies a file. */
void wtest_copy(const char *src, const char *dst);

/* The index of the point with sequence seq in pts (sorted by seq), or -1. */
long wtest_find_seq(const shm_tag_value *pts, size_t n, uint64_t seq);

#endif

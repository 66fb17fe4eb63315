/*
 * wtest_e2e.h — helpers for tests that run the real shmbus-writer against
 * a segment: a producer child putting plant-like TagValue records (with a
 * catalog) at a steady rate, writers spawned and stopped, waits on the
 * group's acknowledged tail.
 */
#ifndef SHMBUS_WTEST_E2E_H
#define SHMBUS_WTEST_E2E_H

#include "wtest.h"

#include <stdbool.h>
#include <sys/types.h>

/* Creates a fresh segment (backpressure, slot_count slots), puts catalog
 * entries for tags 0..tags-1 ("tag.<id>") and creates group `writer` so that
 * it sees every record. */
shm_segment *wtest_segment(char *name, size_t len, uint32_t slot_count, uint32_t tags);

/* A producer child: `rate` records a second (0: as fast as it can) in polls
 * of 4 tags sharing a timestamp, until `total` are put or wtest_producer_stop. */
typedef struct wtest_producer {
    pid_t pid;
    struct wtest_shared *sh;
} wtest_producer;
void wtest_producer_start(wtest_producer *p, const char *segment, uint32_t tags, uint64_t rate,
                          uint64_t total);
/* Stops it; returns the records put and their first and last sequence. */
uint64_t wtest_producer_stop(wtest_producer *p, uint64_t *first_seq, uint64_t *last_seq);
uint64_t wtest_producer_count(const wtest_producer *p);
uint64_t wtest_producer_first(const wtest_producer *p); /* first sequence put */
uint64_t wtest_producer_last(const wtest_producer *p);  /* last sequence put so far */

/* Spawns shmbus-writer with the given extra arguments (NULL-terminated). */
pid_t wtest_writer_spawn(const char *segment, const char *data, const char *name, const char *log,
                         const char *const *extra);
/* Waits until member `name` is active in group writer. */
bool wtest_writer_joined(shm_segment *seg, const char *name, int timeout_ms);
/* SIGTERM and wait; returns the exit status (or -1). */
int wtest_writer_stop(pid_t pid, int timeout_ms);

/* The group's acknowledged tail and the ring's head. */
uint64_t wtest_tail(shm_segment *seg);
uint64_t wtest_head(shm_segment *seg);
/* Waits until every record put is acknowledged. */
bool wtest_wait_drained(shm_segment *seg, int timeout_ms);

int64_t wtest_e2e_now_ns(void); /* CLOCK_REALTIME */

/* True when every record in [first, last] is stored exactly once in
 * <data>/chunks across tags 0..tags-1 (read tag by tag); otherwise prints
 * what is wrong. */
bool wtest_stored_once(const char *data, uint32_t tags, uint64_t first, uint64_t last);

/* Counts occurrences of `needle` in the file at path. */
int wtest_count_in_file(const char *path, const char *needle);

#endif

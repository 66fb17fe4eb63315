/*
 * snapshot.h — what shmstat reads from a segment at one instant, and the
 * rates derived from two such readings.
 *
 * A snapshot is taken through libshm's observation API only (read-only
 * mapping, single atomic loads, no locks): figures from different cache
 * lines are not mutually consistent to the record, each one on its own is.
 * Rates come either from the previous snapshot of the same segment (watch
 * mode: "interval") or, for a first reading, from lifetime totals
 * ("lifetime": records since the member joined, puts since the segment was
 * created); group and counter rates exist only per interval.
 */
#ifndef SHMSTAT_SNAPSHOT_H
#define SHMSTAT_SNAPSHOT_H

#include <shmbus/shm.h>

#include <stdint.h>

struct stat_counter {
    char name[SHM_COUNTER_NAME_MAX + 1];
    int kind; /* SHM_COUNTER or SHM_GAUGE */
    uint64_t value;
};

struct snapshot {
    shm_segment_info info;
    shm_ring_stats ring;
    shm_group_stats groups[SHM_MAX_GROUPS];
    int ngroups;
    shm_member_stats *members;
    int nmembers;
    struct stat_counter *counters;
    int ncounters;
    int64_t real_ns; /* CLOCK_REALTIME when taken (heartbeat ages) */
    int64_t mono_ns; /* CLOCK_MONOTONIC when taken (intervals) */
};

enum rate_basis { RATES_LIFETIME = 0, RATES_INTERVAL = 1 };

/* Per-second rates; NAN where a figure has no rate on this basis. Arrays are
 * parallel to the snapshot's groups, members and counters. */
struct rates {
    int basis;
    double interval_s; /* RATES_INTERVAL only */
    double put_per_s;
    double group_consumed_per_s[SHM_MAX_GROUPS];
    double group_lost_per_s[SHM_MAX_GROUPS];
    double *member_records_per_s;
    double *counter_per_s;
};

/* Reads everything from seg into s. Returns 0 or a negative SHM_E* code. */
int snapshot_take(const shm_segment *seg, struct snapshot *s);
void snapshot_free(struct snapshot *s);

/* 1 when a and b were read from the same segment (not a re-created one). */
int snapshot_same_segment(const struct snapshot *a, const struct snapshot *b);

/* Fills r for cur; prev is the previous snapshot of the same segment, or
 * NULL for lifetime rates. Returns 0 or SHM_ENOMEM. */
int rates_compute(const struct snapshot *cur, const struct snapshot *prev, struct rates *r);
void rates_free(struct rates *r);

/* Names for enum values, as shmstat prints them. */
const char *policy_name(uint32_t policy);
const char *role_name(uint32_t role);
const char *member_state_name(uint32_t state);
const char *counter_kind_name(int kind);

#endif

/*
 * budget.h — how much per-tag state fits a memory limit.
 *
 * Each tag of the stats service costs a fixed part (its struct, its name)
 * plus a rolling window of W values and a history of H points, allocated
 * whole when the tag first appears (rolling_state_bytes, timebuf_state_bytes),
 * so the state of T tags is at most fixed + T x tag_bytes(W, H) whatever the
 * data does. Given a limit, the tags to plan for and the W and H asked for,
 * budget_derive() grants the largest W' <= W and H' <= H that fit:
 *   - everything asked when it fits;
 *   - otherwise the room of one tag is split evenly between window and
 *     history; a part that needs less than its half keeps what it asked and
 *     leaves the rest to the other;
 *   - never below the minimal window (BUDGET_MIN_WINDOW, or W when smaller)
 *     and history (TIMEBUF_MIN_CAPACITY): when even those do not fit, the
 *     answer is -ENOSPC with the minimal sizes filled in.
 * Sizes are counted as glibc's malloc rounds them on x86-64 (a chunk is the
 * request plus 8 bytes, rounded up to 16, at least 32), so the figures are
 * what the heap holds, not just what the structs declare. Pure arithmetic.
 */
#ifndef SHMBUS_STATS_BUDGET_H
#define SHMBUS_STATS_BUDGET_H

#include <stddef.h>
#include <stdint.h>

#define BUDGET_MIN_WINDOW 16 /* values; a smaller asked window is kept as asked */

typedef struct budget_request {
    uint64_t limit_bytes;     /* for everything below; 0 = no limit */
    uint64_t fixed_bytes;     /* the store's own tables, whatever the tags */
    uint64_t tag_fixed_bytes; /* per tag besides window and history (struct, name) */
    uint32_t tags;            /* tags to plan for (0 counts as 1) */
    uint32_t window;          /* asked: values per tag, >= 1 */
    uint32_t history;         /* asked: points per tag, >= TIMEBUF_MIN_CAPACITY */
} budget_request;

typedef struct budget_grant {
    uint32_t window, history; /* granted */
    uint64_t tag_bytes;       /* one tag at the granted sizes */
    uint64_t asked_tag_bytes; /* one tag at the asked sizes */
    uint64_t total_bytes;     /* fixed + tags x tag_bytes */
    uint64_t min_tag_bytes;   /* one tag at the minimal sizes */
    uint32_t tags;            /* tags planned for */
    uint32_t tags_at_minimum; /* tags the limit holds at the minimal sizes (UINT32_MAX: no limit) */
    int reduced;              /* less than asked was granted */
    int over;                 /* even the minimal sizes do not fit (-ENOSPC) */
} budget_grant;

/* What malloc takes for a request of n bytes (0 for 0). */
uint64_t budget_chunk(uint64_t n);

/* One tag: tag_fixed + the chunks of its window and its history. */
uint64_t budget_tag_bytes(uint64_t tag_fixed, uint32_t window, uint32_t history);

/* Fills *g. Returns 0, -ENOSPC (g->over set, minimal sizes granted) or
 * -EINVAL (window 0 or history below TIMEBUF_MIN_CAPACITY). */
int budget_derive(const budget_request *r, budget_grant *g);

/* One line for the log and the status reply: what was asked, what was
 * granted and why. limit_name names the setting (e.g.
 * "stats.memory_limit_mb"). Returns buf. */
const char *budget_describe(const budget_request *r, const budget_grant *g, const char *limit_name,
                            char *buf, size_t len);

#endif

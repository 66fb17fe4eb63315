/*
 * budget.c — per-tag sizes from a memory limit (see budget.h).
 */
#include "budget.h"

#include "rolling.h"
#include "timebuf.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

uint64_t budget_chunk(uint64_t n)
{
    if (n == 0)
        return 0;
    uint64_t c = (n + 8 + 15) & ~(uint64_t)15;
    return c < 32 ? 32 : c;
}

static uint64_t window_bytes(uint32_t window)
{
    return budget_chunk(rolling_state_bytes(window));
}

static uint64_t history_bytes(uint32_t history)
{
    return budget_chunk(timebuf_state_bytes(history));
}

uint64_t budget_tag_bytes(uint64_t tag_fixed, uint32_t window, uint32_t history)
{
    return tag_fixed + window_bytes(window) + history_bytes(history);
}

/* Largest n in [lo, hi] with size(n) <= room (sizes grow with n); lo when
 * none fits. */
static uint32_t largest_fitting(uint64_t (*size)(uint32_t), uint32_t lo, uint32_t hi, uint64_t room)
{
    if (size(hi) <= room)
        return hi;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo + 1) / 2;
        if (size(mid) <= room)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* Splits `room` (bytes for window and history of one tag) evenly; a part
 * that needs less than its half leaves the rest to the other. The minimal
 * sizes may overshoot the room: the history yields first, then the window
 * (the caller made sure both minimal sizes fit). */
static void split(const budget_request *r, uint32_t min_w, uint32_t min_h, uint64_t room,
                  uint32_t *w, uint32_t *h)
{
    uint64_t half = room / 2;
    if (window_bytes(r->window) <= half) {
        *w = r->window;
        *h = largest_fitting(history_bytes, min_h, r->history, room - window_bytes(*w));
    } else if (history_bytes(r->history) <= half) {
        *h = r->history;
        *w = largest_fitting(window_bytes, min_w, r->window, room - history_bytes(*h));
    } else {
        *w = largest_fitting(window_bytes, min_w, r->window, half);
        *h = largest_fitting(history_bytes, min_h, r->history, room - window_bytes(*w));
    }
    uint64_t wb = window_bytes(*w);
    if (wb + history_bytes(*h) > room)
        *h = largest_fitting(history_bytes, min_h, r->history, room > wb ? room - wb : 0);
    if (wb + history_bytes(*h) > room)
        *w = largest_fitting(window_bytes, min_w, r->window, room - history_bytes(*h));
}

int budget_derive(const budget_request *r, budget_grant *g)
{
    memset(g, 0, sizeof *g);
    if (r->window == 0 || r->history < TIMEBUF_MIN_CAPACITY)
        return -EINVAL;
    uint32_t tags = r->tags ? r->tags : 1;
    uint32_t min_w = r->window < BUDGET_MIN_WINDOW ? r->window : BUDGET_MIN_WINDOW;
    uint32_t min_h = TIMEBUF_MIN_CAPACITY;
    g->tags = tags;
    g->asked_tag_bytes = budget_tag_bytes(r->tag_fixed_bytes, r->window, r->history);
    g->min_tag_bytes = budget_tag_bytes(r->tag_fixed_bytes, min_w, min_h);
    g->window = r->window;
    g->history = r->history;
    g->tags_at_minimum = UINT32_MAX;
    int rc = 0;
    if (r->limit_bytes) {
        uint64_t room_all = r->limit_bytes > r->fixed_bytes ? r->limit_bytes - r->fixed_bytes : 0;
        uint64_t at_min = room_all / g->min_tag_bytes;
        g->tags_at_minimum = at_min > UINT32_MAX ? UINT32_MAX : (uint32_t)at_min;
        uint64_t per_tag = room_all / tags;
        if (g->asked_tag_bytes > per_tag) {
            g->reduced = 1;
            if (g->min_tag_bytes > per_tag) {
                g->window = min_w;
                g->history = min_h;
                g->over = 1;
                rc = -ENOSPC;
            } else {
                split(r, min_w, min_h, per_tag - r->tag_fixed_bytes, &g->window, &g->history);
            }
        }
    }
    g->tag_bytes = budget_tag_bytes(r->tag_fixed_bytes, g->window, g->history);
    g->total_bytes = r->fixed_bytes + (uint64_t)tags * g->tag_bytes;
    return rc;
}

static const char *human(uint64_t bytes, char *buf, size_t len)
{
    if (bytes >= 10u << 20)
        snprintf(buf, len, "%.0f MiB", (double)bytes / (1 << 20));
    else if (bytes >= 1u << 20)
        snprintf(buf, len, "%.1f MiB", (double)bytes / (1 << 20));
    else if (bytes >= 1u << 10)
        snprintf(buf, len, "%.1f KiB", (double)bytes / (1 << 10));
    else
        snprintf(buf, len, "%llu bytes", (unsigned long long)bytes);
    return buf;
}

const char *budget_describe(const budget_request *r, const budget_grant *g, const char *limit_name,
                            char *buf, size_t len)
{
    char a[32], b[32], c[32], d[32];
    int n = snprintf(buf, len, "asked window %u values and history %u points per tag (%s a tag); ",
                     r->window, r->history, human(g->asked_tag_bytes, a, sizeof a));
    if (n < 0 || (size_t)n >= len)
        return buf;
    char *p = buf + n;
    size_t left = len - (size_t)n;
    if (!r->limit_bytes)
        snprintf(p, left, "%s is 0 (no limit): granted as asked for %u tag%s (%s)", limit_name,
                 g->tags, g->tags == 1 ? "" : "s", human(g->total_bytes, b, sizeof b));
    else if (!g->reduced)
        snprintf(p, left, "%u tag%s need%s %s of the %s of %s: granted as asked", g->tags,
                 g->tags == 1 ? "" : "s", g->tags == 1 ? "s" : "",
                 human(g->total_bytes, b, sizeof b), human(r->limit_bytes, c, sizeof c),
                 limit_name);
    else if (!g->over)
        snprintf(
            p, left,
            "%s %s leaves %s a tag for %u tags: granted window %u values and history %u "
            "points (%s a tag, %s in all; the room split evenly between window and "
            "history)",
            limit_name, human(r->limit_bytes, b, sizeof b),
            human(r->limit_bytes > r->fixed_bytes ? (r->limit_bytes - r->fixed_bytes) / g->tags : 0,
                  c, sizeof c),
            g->tags, g->window, g->history, human(g->tag_bytes, d, sizeof d),
            human(g->total_bytes, a, sizeof a));
    else
        snprintf(p, left,
                 "%s %s is too small: %u tags need %s even at the minimal window %u and "
                 "history %u (%s a tag); it holds %u such tags",
                 limit_name, human(r->limit_bytes, b, sizeof b), g->tags,
                 human(g->total_bytes, c, sizeof c), g->window, g->history,
                 human(g->min_tag_bytes, d, sizeof d), g->tags_at_minimum);
    return buf;
}

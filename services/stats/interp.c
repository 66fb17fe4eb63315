/*
 * interp.c — value at a time (see interp.h).
 */
#include "interp.h"

#include <math.h>
#include <string.h>

double interp_between(stat_point a, stat_point b, int64_t t_ns, int mode)
{
    if (mode == INTERP_STEP)
        return a.v;
    /* Differences as unsigned then double: exact below 2^53 ns (104 days). */
    double span = (double)((uint64_t)b.t_ns - (uint64_t)a.t_ns);
    double part = (double)((uint64_t)t_ns - (uint64_t)a.t_ns);
    double frac = part / span;
    return a.v + (b.v - a.v) * frac;
}

int interp_at(const timebuf *tb, int64_t t_ns, int mode, interp_result *out)
{
    memset(out, 0, sizeof *out);
    out->value = NAN;
    if (tb->count == 0)
        return out->position = INTERP_EMPTY;
    uint32_t at = timebuf_lower_bound(tb, t_ns);
    if (at == tb->count) {
        out->has_prev = 1;
        out->prev = timebuf_at(tb, tb->count - 1);
        return out->position = INTERP_AFTER;
    }
    stat_point next = timebuf_at(tb, at);
    if (next.t_ns == t_ns) {
        out->has_prev = out->has_next = 1;
        out->prev = out->next = next;
        out->value = next.v;
        return out->position = INTERP_EXACT;
    }
    if (at == 0) {
        out->has_next = 1;
        out->next = next;
        return out->position = INTERP_BEFORE;
    }
    out->has_prev = out->has_next = 1;
    out->prev = timebuf_at(tb, at - 1);
    out->next = next;
    out->value = interp_between(out->prev, next, t_ns, mode);
    return out->position = INTERP_BETWEEN;
}

const char *interp_position_name(int position)
{
    switch (position) {
    case INTERP_EXACT:
        return "exact";
    case INTERP_BETWEEN:
        return "between";
    case INTERP_BEFORE:
        return "before";
    case INTERP_AFTER:
        return "after";
    default:
        return "empty";
    }
}

/*
 * protocol.c — JSON requests to the stats service (see protocol.h and the
 * README for the requests and their answers).
 *
 * Each handler validates its fields first and answers with fail(), which
 * names the field and what was wrong; only then does it read the store.
 */
#include "protocol.h"

#include "correlate.h"
#include "downsample.h"
#include "interp.h"
#include "trend.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct request {
    protocol *p;
    json_t *in;      /* the request object */
    json_t *out;     /* the response under construction */
    char error[256]; /* set by fail() */
} request;

static int fail(request *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(request *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    return -1;
}

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *jpoint(stat_point pt)
{
    return json_pack("[Io]", (json_int_t)pt.t_ns, jnum(pt.v));
}

static int64_t now_ns(request *r)
{
    if (r->p->hooks.now_ns)
        return r->p->hooks.now_ns(r->p->hooks.ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------ fields */

/* Reads time field `name`: "<name>_ns" (integer ns since the epoch) or
 * "<name>" (seconds since the epoch; 0 or negative: relative to now).
 * Returns 1 when present, 0 when absent, -1 on a bad value. */
static int get_time(request *r, const char *name, int64_t *out)
{
    char key[32];
    snprintf(key, sizeof key, "%s_ns", name);
    json_t *ns = json_object_get(r->in, key);
    json_t *s = json_object_get(r->in, name);
    if (ns && s)
        return fail(r, "fields '%s' and '%s' both given; use one", key, name);
    if (ns) {
        if (!json_is_integer(ns))
            return fail(r, "field '%s': expected an integer (ns since the epoch)", key);
        *out = (int64_t)json_integer_value(ns);
        return 1;
    }
    if (!s)
        return 0;
    if (!json_is_number(s))
        return fail(r,
                    "field '%s': expected a number (seconds since the epoch, or <= 0 "
                    "for seconds before now)",
                    name);
    double sec = json_number_value(s);
    if (!isfinite(sec) || fabs(sec) > 9.2e9)
        return fail(r, "field '%s': %g seconds is out of range", name, sec);
    int64_t v = (int64_t)llround(sec * 1e9);
    *out = sec <= 0 ? now_ns(r) + v : v;
    return 1;
}

/* Reads an optional unsigned integer field within [lo, hi]. */
static int get_uint(request *r, const char *name, uint32_t lo, uint32_t hi, uint32_t dflt,
                    uint32_t *out)
{
    json_t *v = json_object_get(r->in, name);
    *out = dflt;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return fail(r, "field '%s': expected an integer from %u to %u", name, lo, hi);
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

/* Resolves a tag given by name (string) or id (integer). */
static tag_state *resolve_tag(request *r, json_t *ref, const char *field)
{
    tagstore *s = r->p->store;
    if (json_is_string(ref)) {
        tag_state *t = tagstore_find_name(s, json_string_value(ref));
        if (!t)
            fail(r, "unknown tag '%s'", json_string_value(ref));
        return t;
    }
    if (json_is_integer(ref)) {
        json_int_t id = json_integer_value(ref);
        tag_state *t = id >= 0 && id <= UINT32_MAX ? tagstore_get(s, (uint32_t)id) : NULL;
        if (!t)
            fail(r, "unknown tag id %lld%s", (long long)id,
                 id >= 0 && id <= UINT32_MAX && !tagstore_owns(s, (uint32_t)id)
                     ? " (another shard's tag)"
                     : "");
        return t;
    }
    fail(r, "field '%s': a tag is a name (string) or an id (integer)", field);
    return NULL;
}

static tag_state *required_tag(request *r)
{
    json_t *ref = json_object_get(r->in, "tag");
    if (!ref) {
        fail(r, "field 'tag' is required (a tag name or id)");
        return NULL;
    }
    return resolve_tag(r, ref, "tag");
}

static const char *tag_label(const tag_state *t, char *buf, size_t len)
{
    if (t->name[0])
        return t->name;
    snprintf(buf, len, "#%u", t->id);
    return buf;
}

/* ------------------------------------------------------------ per tag */

json_t *protocol_tag_stats(tag_state *t, const store_params *params)
{
    rolling_stats st;
    rolling_get_stats(&t->roll, &st);
    double slope = NAN;
    if (st.count >= 2) {
        stat_point *pts = malloc((size_t)st.count * sizeof *pts);
        if (pts) {
            rolling_copy(&t->roll, pts);
            trend_least_squares(pts, st.count, &slope);
            free(pts);
        }
    }
    int64_t span = st.count >= 2 ? st.last_t_ns - st.first_t_ns : 0;
    double sample_ms = span > 0 ? (double)span * 1e-6 / (st.count - 1) : NAN;
    const timebuf *h = &t->hist;
    json_t *hist =
        json_pack("{sI sI sI sI sI sI sI sI sI}", "points", (json_int_t)h->count, "capacity",
                  (json_int_t)h->capacity, "horizon_s", (json_int_t)(h->horizon_ns / 1000000000),
                  "out_of_order", (json_int_t)h->inserted, "replaced", (json_int_t)h->replaced,
                  "too_old", (json_int_t)h->too_old, "purged", (json_int_t)h->purged, "compactions",
                  (json_int_t)h->compactions, "downsampled_away", (json_int_t)h->downsampled_away);
    if (hist && h->count) {
        json_object_set_new(hist, "oldest_t_ns", json_integer(timebuf_at(h, 0).t_ns));
        json_object_set_new(hist, "newest_t_ns", json_integer(timebuf_at(h, h->count - 1).t_ns));
    }
    if (hist && h->compacted_until_ns != INT64_MIN)
        json_object_set_new(hist, "compacted_until_ns", json_integer(h->compacted_until_ns));
    json_t *o = json_pack(
        "{sI ss sI sI so so so so so so so so so sI so so so sI sI sI so}", "id", (json_int_t)t->id,
        "name", t->name, "window", (json_int_t)t->roll.window, "count", (json_int_t)st.count, "min",
        jnum(st.min), "max", jnum(st.max), "mean", jnum(st.mean), "stddev", jnum(st.stddev),
        "variance", jnum(st.variance), "first", jnum(st.first), "last", jnum(st.last),
        "trend_per_s", jnum(slope), "change_rate_per_s", jnum(trend_change_rate(st.changes, span)),
        "changes", (json_int_t)st.changes, "suggested_interval_ms",
        jnum(trend_suggest_interval_ms(&params->limits, st.count, st.changes, span)),
        "sample_interval_ms", jnum(sample_ms), "mode",
        json_string(t->mode == INTERP_STEP ? "step" : "linear"), "added", (json_int_t)st.added,
        "excluded_nonfinite", (json_int_t)st.excluded_nonfinite, "excluded_quality",
        (json_int_t)st.excluded_quality, "history", hist ? hist : json_null());
    if (o && st.count) {
        json_object_set_new(o, "first_t_ns", json_integer(st.first_t_ns));
        json_object_set_new(o, "last_t_ns", json_integer(st.last_t_ns));
    }
    return o;
}

json_t *protocol_tag_interval(tag_state *t, const store_params *params)
{
    rolling_stats st;
    rolling_get_stats(&t->roll, &st);
    int64_t span = st.count >= 2 ? st.last_t_ns - st.first_t_ns : 0;
    return json_pack(
        "{sI ss so so so sI sI}", "id", (json_int_t)t->id, "name", t->name, "suggested_interval_ms",
        jnum(trend_suggest_interval_ms(&params->limits, st.count, st.changes, span)),
        "change_rate_per_s", jnum(trend_change_rate(st.changes, span)), "sample_interval_ms",
        jnum(span > 0 ? (double)span * 1e-6 / (st.count - 1) : NAN), "changes",
        (json_int_t)st.changes, "count", (json_int_t)st.count);
}

/* ------------------------------------------------------------ handlers */

typedef json_t *(*tag_render_fn)(tag_state *t, const store_params *params);

/* Renders the tags a request selects: "tag", "tags" (list), or all tags of
 * this shard with "offset"/"limit" paging. */
static int render_tags(request *r, const char *key, tag_render_fn render)
{
    tagstore *s = r->p->store;
    json_t *one = json_object_get(r->in, "tag"), *many = json_object_get(r->in, "tags");
    json_t *list = json_array();
    json_object_set_new(r->out, key, list);
    if (one && many)
        return fail(r, "fields 'tag' and 'tags' both given; use one");
    if (one) {
        tag_state *t = resolve_tag(r, one, "tag");
        if (!t)
            return -1;
        json_array_append_new(list, render(t, &s->p));
        return 0;
    }
    if (many && !(json_is_string(many) && strcmp(json_string_value(many), "*") == 0)) {
        if (!json_is_array(many))
            return fail(r, "field 'tags': expected a list of tag names or ids, or \"*\"");
        if (json_array_size(many) > PROTOCOL_PAGE_MAX)
            return fail(r, "field 'tags': at most %d tags per request", PROTOCOL_PAGE_MAX);
        size_t i;
        json_t *ref;
        json_array_foreach(many, i, ref)
        {
            tag_state *t = resolve_tag(r, ref, "tags");
            if (!t)
                return -1;
            json_array_append_new(list, render(t, &s->p));
        }
        return 0;
    }
    uint32_t offset, limit;
    if (get_uint(r, "offset", 0, UINT32_MAX, 0, &offset) ||
        get_uint(r, "limit", 1, PROTOCOL_PAGE_MAX, PROTOCOL_PAGE_DEFAULT, &limit))
        return -1;
    uint64_t end = (uint64_t)offset + limit;
    if (end > s->n_tags)
        end = s->n_tags;
    for (uint64_t i = offset; i < end; i++)
        json_array_append_new(list, render(tagstore_at(s, (uint32_t)i), &s->p));
    json_object_set_new(r->out, "total", json_integer(s->n_tags));
    json_object_set_new(r->out, "offset", json_integer(offset));
    if (end < s->n_tags)
        json_object_set_new(r->out, "next_offset", json_integer((json_int_t)end));
    return 0;
}

static int op_stats(request *r)
{
    return render_tags(r, "tags", protocol_tag_stats);
}

static int op_intervals(request *r)
{
    return render_tags(r, "intervals", protocol_tag_interval);
}

static json_t *render_name(tag_state *t, const store_params *params)
{
    (void)params;
    return json_pack("{sI ss ss sI sI}", "id", (json_int_t)t->id, "name", t->name, "mode",
                     t->mode == INTERP_STEP ? "step" : "linear", "count", (json_int_t)t->roll.count,
                     "history_points", (json_int_t)t->hist.count);
}

static int op_tags(request *r)
{
    return render_tags(r, "tags", render_name);
}

static int op_range(request *r)
{
    tag_state *t = required_tag(r);
    if (!t)
        return -1;
    const timebuf *h = &t->hist;
    int64_t from = INT64_MIN, to = INT64_MAX;
    uint32_t max_points;
    if (get_time(r, "from", &from) < 0 || get_time(r, "to", &to) < 0 ||
        get_uint(r, "max_points", 8, PROTOCOL_RANGE_POINTS_MAX, PROTOCOL_RANGE_POINTS_DEFAULT,
                 &max_points))
        return -1;
    if (from > to)
        return fail(r, "inverted range: from (%lld ns) is after to (%lld ns)", (long long)from,
                    (long long)to);
    uint32_t lo = timebuf_lower_bound(h, from), hi = timebuf_upper_bound(h, to);
    uint32_t n = hi > lo ? hi - lo : 0;
    char label[16];
    json_object_set_new(r->out, "tag", json_string(tag_label(t, label, sizeof label)));
    json_object_set_new(r->out, "total", json_integer(n));
    stat_point *pts = n ? malloc((size_t)n * sizeof *pts) : NULL;
    if (n && !pts)
        return fail(r, "out of memory for %u points", n);
    for (uint32_t i = 0; i < n; i++)
        pts[i] = timebuf_at(h, lo + i);
    size_t kept = n;
    if (n > max_points) {
        size_t bucket = downsample_bucket_for(n, max_points);
        kept = downsample_minmax(pts, n, bucket);
        json_object_set_new(r->out, "bucket", json_integer((json_int_t)bucket));
    }
    json_object_set_new(r->out, "downsampled", json_boolean(kept < n));
    /* Points stored before compacted_until may already be bucket survivors. */
    json_object_set_new(r->out, "stored_downsampled",
                        json_boolean(n && h->compacted_until_ns != INT64_MIN &&
                                     pts[0].t_ns <= h->compacted_until_ns));
    json_t *arr = json_array();
    for (size_t i = 0; i < kept; i++)
        json_array_append_new(arr, jpoint(pts[i]));
    json_object_set_new(r->out, "points", arr);
    free(pts);
    return 0;
}

static int get_mode(request *r, int dflt, int *mode)
{
    json_t *m = json_object_get(r->in, "mode");
    *mode = dflt;
    if (!m)
        return 0;
    const char *s = json_string_value(m);
    if (s && strcmp(s, "linear") == 0)
        *mode = INTERP_LINEAR;
    else if (s && strcmp(s, "step") == 0)
        *mode = INTERP_STEP;
    else
        return fail(r, "field 'mode': expected \"linear\" or \"step\"");
    return 0;
}

static int op_value_at(request *r)
{
    tag_state *t = required_tag(r);
    if (!t)
        return -1;
    int64_t at;
    int mode;
    int has = get_time(r, "t", &at);
    if (has < 0 || get_mode(r, t->mode, &mode))
        return -1;
    if (has == 0)
        return fail(r, "field 't' (seconds) or 't_ns' is required");
    interp_result res;
    int pos = interp_at(&t->hist, at, mode, &res);
    char label[16];
    json_object_set_new(r->out, "tag", json_string(tag_label(t, label, sizeof label)));
    json_object_set_new(r->out, "t_ns", json_integer(at));
    json_object_set_new(r->out, "position", json_string(interp_position_name(pos)));
    json_object_set_new(r->out, "value", jnum(res.value));
    json_object_set_new(r->out, "mode", json_string(mode == INTERP_STEP ? "step" : "linear"));
    json_object_set_new(r->out, "prev", res.has_prev ? jpoint(res.prev) : json_null());
    json_object_set_new(r->out, "next", res.has_next ? jpoint(res.next) : json_null());
    return 0;
}

static int op_correlate(request *r)
{
    json_t *many = json_object_get(r->in, "tags");
    if (!json_is_array(many) || json_array_size(many) < 2 ||
        json_array_size(many) > CORRELATE_MAX_TAGS)
        return fail(r, "field 'tags': expected a list of 2 to %d tag names or ids",
                    CORRELATE_MAX_TAGS);
    size_t k = json_array_size(many);
    const timebuf *bufs[CORRELATE_MAX_TAGS];
    int modes[CORRELATE_MAX_TAGS];
    json_t *names = json_array();
    json_object_set_new(r->out, "tags", names);
    for (size_t i = 0; i < k; i++) {
        tag_state *t = resolve_tag(r, json_array_get(many, i), "tags");
        if (!t)
            return -1;
        bufs[i] = &t->hist;
        modes[i] = t->mode;
        char label[16];
        json_array_append_new(names, json_string(tag_label(t, label, sizeof label)));
    }
    int64_t from = 0, to = 0;
    uint32_t points;
    int has_from = get_time(r, "from", &from), has_to = get_time(r, "to", &to);
    if (has_from < 0 || has_to < 0 || get_uint(r, "points", 2, 100000, 200, &points))
        return -1;
    if (has_from && has_to && from > to)
        return fail(r, "inverted range: from (%lld ns) is after to (%lld ns)", (long long)from,
                    (long long)to);
    if (!has_from || !has_to) {
        int64_t of, ot;
        if (correlate_overlap(bufs, k, &of, &ot) != 0)
            return fail(r, "the tags' stored time ranges do not overlap; give 'from' and 'to'");
        from = has_from ? from : of;
        to = has_to ? to : ot;
        if (from >= to)
            return fail(r, "empty range after defaulting to the tags' overlap");
    }
    if (from == to)
        return fail(r, "empty range: from equals to");
    double *matrix = malloc(k * k * sizeof *matrix);
    if (!matrix)
        return fail(r, "out of memory");
    correlate_request req = {
        .bufs = bufs, .modes = modes, .k = k, .from_ns = from, .to_ns = to, .points = points};
    uint32_t aligned;
    int rc = correlate_aligned(&req, matrix, &aligned);
    if (rc) {
        free(matrix);
        return fail(r, "correlation failed: %s", strerror(-rc));
    }
    json_t *rows = json_array();
    for (size_t a = 0; a < k; a++) {
        json_t *row = json_array();
        for (size_t b = 0; b < k; b++)
            json_array_append_new(row, jnum(matrix[a * k + b]));
        json_array_append_new(rows, row);
    }
    free(matrix);
    json_object_set_new(r->out, "from_ns", json_integer(from));
    json_object_set_new(r->out, "to_ns", json_integer(to));
    json_object_set_new(r->out, "points", json_integer(points));
    json_object_set_new(r->out, "aligned", json_integer(aligned));
    json_object_set_new(r->out, "matrix", rows);
    return 0;
}

static int op_snapshot(request *r)
{
    if (!r->p->hooks.snapshot)
        return fail(r, "snapshots are not configured");
    char err[200] = "";
    int rc = r->p->hooks.snapshot(r->p->hooks.ctx, r->out, err, sizeof err);
    if (rc)
        return fail(r, "snapshot failed: %s", err[0] ? err : strerror(-rc));
    return 0;
}

static int op_status(request *r)
{
    json_object_set_new(r->out, "service", json_string("shmbus-stats"));
    json_object_set_new(r->out, "tags", json_integer(r->p->store->n_tags));
    json_object_set_new(r->out, "requests", json_integer((json_int_t)r->p->requests));
    json_object_set_new(r->out, "request_errors", json_integer((json_int_t)r->p->errors));
    if (r->p->hooks.status)
        r->p->hooks.status(r->p->hooks.ctx, r->out);
    return 0;
}

static const struct {
    const char *name;
    int (*run)(request *r);
} ops[] = {
    {"stats", op_stats},         {"range", op_range},         {"value_at", op_value_at},
    {"correlate", op_correlate}, {"intervals", op_intervals}, {"snapshot", op_snapshot},
    {"status", op_status},       {"tags", op_tags},
};

/* ------------------------------------------------------------ entry */

static char *error_text(request *r, json_t *op)
{
    json_t *e = json_object();
    json_object_set_new(e, "error", json_string(r->error));
    if (op && json_is_string(op))
        json_object_set(e, "op", op);
    json_t *id = r->in ? json_object_get(r->in, "id") : NULL;
    if (id)
        json_object_set(e, "id", id);
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    return text;
}

char *protocol_handle(protocol *p, const void *request_bytes, size_t len, int *is_error)
{
    request r = {.p = p};
    size_t cap = p->max_request ? p->max_request : PROTOCOL_MAX_REQUEST_DEFAULT;
    char *text = NULL;
    json_t *op = NULL;
    int failed = 1;
    p->requests++;
    if (p->phase == PROTOCOL_STOPPING) {
        fail(&r, "service is shutting down (restart in progress); retry shortly");
        goto out;
    }
    if (len > cap) {
        fail(&r, "request too large: %zu bytes (limit %zu)", len, cap);
        goto out;
    }
    json_error_t jerr;
    r.in = json_loadb(request_bytes, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!r.in) {
        fail(&r, "malformed JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column);
        goto out;
    }
    if (!json_is_object(r.in)) {
        fail(&r, "a request is a JSON object, e.g. {\"op\":\"status\"}");
        goto out;
    }
    op = json_object_get(r.in, "op");
    if (!json_is_string(op)) {
        fail(&r, "field 'op' is required: one of stats, range, value_at, correlate, intervals, "
                 "snapshot, status, tags");
        goto out;
    }
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].name, json_string_value(op)) != 0)
            continue;
        r.out = json_object();
        if (!r.out) {
            fail(&r, "out of memory");
            goto out;
        }
        json_object_set_new(r.out, "ok", json_true());
        json_object_set(r.out, "op", op);
        json_t *id = json_object_get(r.in, "id");
        if (id)
            json_object_set(r.out, "id", id);
        if (ops[i].run(&r) == 0) {
            text = json_dumps(r.out, JSON_COMPACT);
            failed = text == NULL;
            if (failed)
                fail(&r, "out of memory writing the response");
        }
        goto out;
    }
    fail(&r,
         "unknown op '%.64s' (expected stats, range, value_at, correlate, intervals, "
         "snapshot, status, tags)",
         json_string_value(op));
out:
    if (failed) {
        p->errors++;
        text = error_text(&r, op);
    }
    if (is_error)
        *is_error = failed;
    json_decref(r.out);
    json_decref(r.in);
    return text;
}

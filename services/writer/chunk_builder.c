/*
 * chunk_builder.c — turns points into data blocks.
 *
 * Points are collected per column, a column being one (tag, device). At
 * encode time columns whose timestamp arrays are identical — the tags one
 * poller request read together, which share one timestamp per poll — are
 * grouped into one timestamp stream, stored once with the sequence numbers
 * of its first column; every column then stores its sequence numbers as
 * run-length residuals against that base (zero bytes per point when the
 * poller publishes a request's tags in a fixed order). This is what makes
 * jittery poll timestamps cheap: the jitter is paid once per poll, not once
 * per tag.
 *
 * Block payload: u32 nstreams, u32 ncols, stream directory (32 bytes each:
 * count, offset, length, reserved, ts_min, ts_max), column directory (24
 * bytes each: tag, device, stream, offset, length, reserved), then the
 * sections. A stream is [varint len][timestamps][varint len][sequences]; a
 * column is [varint len] before each of: values, raw, sequence residuals,
 * quality, exception code, flags.
 *
 * Not thread-safe: one builder per thread.
 */
#include "chunk_internal.h"

#include <stdlib.h>

#define DIRECT_TAGS 65536u /* tag ids looked up without hashing */

/* Encoded-size bounds (bytes), generous: see chunk_builder_bound(). */
#define BOUND_PER_POINT 80u
#define BOUND_PER_COLUMN (256u + CHUNK_COLUMN_DIR)
#define BOUND_PER_STREAM (128u + CHUNK_STREAM_DIR)
#define BOUND_FIXED (CHUNK_BLOCK_HEADER_SIZE + CHUNK_PAYLOAD_HEADER + 64u)

struct column {
    uint32_t tag_id, device_id;
    chunk_series s;
    uint64_t ts_hash;
    uint32_t stream; /* assigned at encode time */
};

struct stream {
    uint32_t leader; /* column whose timestamps and sequences it stores */
    uint32_t first_member, members; /* into member_cols */
};

struct chunk_builder {
    struct column *cols;
    size_t ncols, cols_alloc; /* columns in use, columns with allocations */
    chunk_map map;            /* (device << 32 | tag) -> column index + 1 */
    size_t points, max_col;
    uint64_t *scratch, *scratch2;
    size_t scratch_cap;
    struct stream *streams;
    size_t nstreams, streams_cap;
    uint32_t *order;       /* column indices sorted for grouping */
    uint32_t *member_cols; /* columns of each stream, stream by stream */
    size_t order_cap;
    uint8_t *tmp; /* one group's block for encode_groups */
    size_t tmp_cap;
    uint32_t *direct; /* tag id -> column index + 1, for ids below DIRECT_TAGS; checked on use */
    /* chunk_builder_encode_next: the columns are grouped and blocks are being
     * cut from member_cols[next..ncols); nothing may be added meanwhile */
    bool encoding;
    size_t next;
};

int chunk_builder_new(chunk_builder **out)
{
    chunk_builder *b = calloc(1, sizeof *b);
    if (!b)
        return chunk__fail(CHUNK_ENOMEM, "out of memory for a block builder");
    b->direct = calloc(DIRECT_TAGS, sizeof *b->direct);
    if (!b->direct) {
        chunk_builder_free(&b);
        return chunk__fail(CHUNK_ENOMEM, "out of memory for a block builder");
    }
    *out = b;
    return 0;
}

void chunk_builder_free(chunk_builder **bp)
{
    chunk_builder *b = *bp;
    if (!b)
        return;
    for (size_t i = 0; i < b->cols_alloc; i++)
        chunk_series_free(&b->cols[i].s);
    free(b->cols);
    chunk_map_free(&b->map);
    free(b->scratch);
    free(b->scratch2);
    free(b->streams);
    free(b->order);
    free(b->member_cols);
    free(b->tmp);
    free(b->direct);
    free(b);
    *bp = NULL;
}

void chunk_builder_reset(chunk_builder *b)
{
    for (size_t i = 0; i < b->ncols; i++)
        chunk_series_clear(&b->cols[i].s);
    b->ncols = 0;
    b->points = 0;
    b->max_col = 0;
    b->encoding = false;
    b->next = 0;
    chunk_map_clear(&b->map);
}

size_t chunk_builder_memory(const chunk_builder *b)
{
    size_t bytes = b->cols_alloc * sizeof *b->cols + b->tmp_cap +
                   b->scratch_cap * 2 * sizeof *b->scratch;
    for (size_t i = 0; i < b->cols_alloc; i++)
        bytes += chunk_series_memory(&b->cols[i].s);
    return bytes;
}

void chunk_builder_trim(chunk_builder *b, size_t limit)
{
    if (b->ncols || chunk_builder_memory(b) <= limit)
        return;
    for (size_t i = 0; i < b->cols_alloc; i++)
        chunk_series_free(&b->cols[i].s);
    if (b->tmp_cap > CHUNK_GROUP_BLOCK_MAX) { /* one column's oversized block */
        free(b->tmp);
        b->tmp = NULL;
        b->tmp_cap = 0;
    }
}

/* The column for (tag, device) if there is one. */
static struct column *column_find(chunk_builder *b, uint32_t tag, uint32_t dev)
{
    uint32_t v = chunk_map_get(&b->map, (uint64_t)dev << 32 | tag);
    return v ? &b->cols[v - 1] : NULL;
}

size_t chunk_builder_column_points(chunk_builder *b, uint32_t tag_id, uint32_t device_id)
{
    const struct column *c = column_find(b, tag_id, device_id);
    return c ? c->s.n : 0;
}

/* The column for (tag, device), created when new. */
static struct column *column_for(chunk_builder *b, uint32_t tag, uint32_t dev)
{
    if (tag < DIRECT_TAGS) {
        /* a hint, valid only while it still names this column */
        uint32_t d = b->direct[tag];
        if (d && d <= b->ncols && b->cols[d - 1].tag_id == tag && b->cols[d - 1].device_id == dev)
            return &b->cols[d - 1];
    }
    uint64_t key = (uint64_t)dev << 32 | tag;
    uint32_t v = chunk_map_get(&b->map, key);
    if (v) {
        if (tag < DIRECT_TAGS)
            b->direct[tag] = v;
        return &b->cols[v - 1];
    }
    if (b->ncols == b->cols_alloc) {
        size_t n = b->cols_alloc ? b->cols_alloc * 2 : 64;
        struct column *c = realloc(b->cols, n * sizeof *c);
        if (!c) {
            chunk__fail(CHUNK_ENOMEM, "out of memory for %zu columns", n);
            return NULL;
        }
        memset(c + b->cols_alloc, 0, (n - b->cols_alloc) * sizeof *c);
        b->cols = c;
        b->cols_alloc = n;
    }
    struct column *c = &b->cols[b->ncols];
    c->tag_id = tag;
    c->device_id = dev;
    c->s.n = 0;
    if (chunk_map_put(&b->map, key, (uint32_t)b->ncols + 1) < 0)
        return NULL;
    b->ncols++;
    if (tag < DIRECT_TAGS)
        b->direct[tag] = (uint32_t)b->ncols;
    return c;
}

int chunk_builder_add(chunk_builder *b, const shm_tag_value *v)
{
    if (b->encoding)
        return chunk__fail(CHUNK_EINVAL, "a block is being encoded");
    struct column *c = column_for(b, v->tag_id, v->device_id);
    if (!c)
        return CHUNK_ENOMEM;
    chunk_series *s = &c->s;
    if (s->n == s->cap && chunk_series_reserve(s, 1) < 0)
        return CHUNK_ENOMEM;
    size_t i = s->n++;
    s->ts[i] = v->timestamp_ns;
    s->seq[i] = v->sequence;
    s->value[i] = v->value;
    s->raw[i] = v->raw;
    s->quality[i] = v->quality;
    s->exception[i] = v->exception_code;
    s->flags[i] = v->flags;
    b->points++;
    if (s->n > b->max_col)
        b->max_col = s->n;
    return 0;
}

int chunk_builder_add_series(chunk_builder *b, uint32_t tag_id, uint32_t device_id,
                             const chunk_series *src, size_t from, size_t n)
{
    if (from > src->n || n > src->n - from || b->encoding)
        return CHUNK_EINVAL;
    if (n == 0)
        return 0;
    struct column *c = column_for(b, tag_id, device_id);
    if (!c)
        return CHUNK_ENOMEM;
    chunk_series *s = &c->s;
    if (chunk_series_reserve(s, n) < 0)
        return CHUNK_ENOMEM;
    memcpy(s->ts + s->n, src->ts + from, n * sizeof *s->ts);
    memcpy(s->seq + s->n, src->seq + from, n * sizeof *s->seq);
    memcpy(s->value + s->n, src->value + from, n * sizeof *s->value);
    memcpy(s->raw + s->n, src->raw + from, n * sizeof *s->raw);
    memcpy(s->quality + s->n, src->quality + from, n * sizeof *s->quality);
    memcpy(s->exception + s->n, src->exception + from, n * sizeof *s->exception);
    memcpy(s->flags + s->n, src->flags + from, n * sizeof *s->flags);
    s->n += n;
    b->points += n;
    if (s->n > b->max_col)
        b->max_col = s->n;
    return 0;
}

int chunk_builder_add_column(chunk_builder *b, const chunk_data_view *v, uint32_t col,
                             chunk_stream_cache *cache)
{
    chunk_column_ref ref;
    if (b->encoding || chunk_data_view_column(v, col, &ref) < 0)
        return CHUNK_EINVAL;
    struct column *c = column_for(b, ref.tag_id, ref.device_id);
    if (!c)
        return CHUNK_ENOMEM;
    int n = chunk_data_decode_column_cached(v, col, CHUNK_F_ALL, &c->s, cache);
    if (n < 0)
        return n;
    b->points += (size_t)n;
    if (c->s.n > b->max_col)
        b->max_col = c->s.n;
    return n;
}

int chunk_builder_reserve(chunk_builder *b, uint32_t tag_id, uint32_t device_id, size_t n)
{
    if (b->encoding)
        return CHUNK_EINVAL;
    struct column *c = column_for(b, tag_id, device_id);
    if (!c)
        return CHUNK_ENOMEM;
    return chunk_series_reserve_exact(&c->s, n);
}

size_t chunk_builder_points(const chunk_builder *b)
{
    return b->points;
}

size_t chunk_builder_columns(const chunk_builder *b)
{
    return b->ncols;
}

size_t chunk_builder_max_column(const chunk_builder *b)
{
    return b->max_col;
}

size_t chunk_builder_column_fit(size_t cap)
{
    size_t fixed = BOUND_FIXED + BOUND_PER_STREAM + BOUND_PER_COLUMN;
    return cap > fixed ? (cap - fixed) / BOUND_PER_POINT : 0;
}

size_t chunk_builder_bound(const chunk_builder *b)
{
    return BOUND_FIXED + b->points * BOUND_PER_POINT + b->ncols * (BOUND_PER_COLUMN + BOUND_PER_STREAM);
}

/* ------------------------------------------------------------ grouping */

static uint64_t hash_ts(const int64_t *ts, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint64_t)ts[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static int cmp_for_grouping(const void *pa, const void *pb, void *ctx)
{
    const chunk_builder *bld = ctx;
    const struct column *a = &bld->cols[*(const uint32_t *)pa];
    const struct column *b = &bld->cols[*(const uint32_t *)pb];
    if (a->ts_hash != b->ts_hash)
        return a->ts_hash < b->ts_hash ? -1 : 1;
    if (a->s.n != b->s.n)
        return a->s.n < b->s.n ? -1 : 1;
    if (a->tag_id != b->tag_id)
        return a->tag_id < b->tag_id ? -1 : 1;
    return a->device_id < b->device_id ? -1 : a->device_id > b->device_id;
}

static int cmp_for_output(const void *pa, const void *pb, void *ctx)
{
    const chunk_builder *bld = ctx;
    const struct column *a = &bld->cols[*(const uint32_t *)pa];
    const struct column *b = &bld->cols[*(const uint32_t *)pb];
    if (a->stream != b->stream)
        return a->stream < b->stream ? -1 : 1;
    if (a->tag_id != b->tag_id)
        return a->tag_id < b->tag_id ? -1 : 1;
    return a->device_id < b->device_id ? -1 : a->device_id > b->device_id;
}

static int ensure_work_space(chunk_builder *b)
{
    if (b->order_cap < b->ncols) {
        uint32_t *o = realloc(b->order, b->ncols * sizeof *o);
        if (!o)
            return chunk__fail(CHUNK_ENOMEM, "out of memory grouping %zu columns", b->ncols);
        b->order = o;
        uint32_t *m = realloc(b->member_cols, b->ncols * sizeof *m);
        if (!m)
            return chunk__fail(CHUNK_ENOMEM, "out of memory grouping %zu columns", b->ncols);
        b->member_cols = m;
        b->order_cap = b->ncols;
    }
    if (b->streams_cap < b->ncols) {
        struct stream *s = realloc(b->streams, b->ncols * sizeof *s);
        if (!s)
            return chunk__fail(CHUNK_ENOMEM, "out of memory grouping %zu columns", b->ncols);
        b->streams = s;
        b->streams_cap = b->ncols;
    }
    if (b->scratch_cap < b->max_col) {
        uint64_t *s1 = realloc(b->scratch, b->max_col * sizeof *s1);
        if (!s1)
            return chunk__fail(CHUNK_ENOMEM, "out of memory encoding %zu points", b->max_col);
        b->scratch = s1;
        uint64_t *s2 = realloc(b->scratch2, b->max_col * sizeof *s2);
        if (!s2)
            return chunk__fail(CHUNK_ENOMEM, "out of memory encoding %zu points", b->max_col);
        b->scratch2 = s2;
        b->scratch_cap = b->max_col;
    }
    return 0;
}

/* Groups columns with identical timestamp arrays into streams. */
static int group_columns(chunk_builder *b)
{
    int rc = ensure_work_space(b);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < b->ncols; i++) {
        b->cols[i].ts_hash = hash_ts(b->cols[i].s.ts, b->cols[i].s.n);
        b->order[i] = (uint32_t)i;
    }
    qsort_r(b->order, b->ncols, sizeof *b->order, cmp_for_grouping, b);
    b->nstreams = 0;
    size_t run_start_stream = 0; /* first stream of the current equal-hash run */
    for (size_t k = 0; k < b->ncols; k++) {
        struct column *c = &b->cols[b->order[k]];
        if (k > 0) {
            const struct column *p = &b->cols[b->order[k - 1]];
            if (p->ts_hash != c->ts_hash || p->s.n != c->s.n)
                run_start_stream = b->nstreams;
        }
        size_t found = SIZE_MAX;
        for (size_t s = run_start_stream; s < b->nstreams && found == SIZE_MAX; s++) {
            const struct column *l = &b->cols[b->streams[s].leader];
            if (memcmp(l->s.ts, c->s.ts, c->s.n * sizeof *c->s.ts) == 0)
                found = s;
        }
        if (found == SIZE_MAX) {
            found = b->nstreams++;
            b->streams[found].leader = b->order[k];
            b->streams[found].members = 0;
        }
        c->stream = (uint32_t)found;
        b->streams[found].members++;
    }
    /* Members stream by stream, each in (tag, device) order. */
    memcpy(b->member_cols, b->order, b->ncols * sizeof *b->order);
    qsort_r(b->member_cols, b->ncols, sizeof *b->member_cols, cmp_for_output, b);
    size_t pos = 0;
    for (size_t s = 0; s < b->nstreams; s++) {
        b->streams[s].first_member = (uint32_t)pos;
        pos += b->streams[s].members;
    }
    return 0;
}

/* ------------------------------------------------------------ encoding */

/* Starts a section: reserves one byte for its varint length (most WAL
 * sections are shorter than 128 bytes). */
static size_t section_begin(wbuf *w)
{
    size_t at = w->len;
    wb_u8(w, 0);
    return at;
}

/* Ends a section: writes its length as a varint at `at`, moving the body
 * up when the varint needs more than one byte. */
static void section_end(wbuf *w, size_t at)
{
    if (w->overflow)
        return;
    size_t body = w->len - at - 1;
    uint8_t v[10];
    size_t vn = 0;
    uint64_t x = body;
    while (x >= 0x80) {
        v[vn++] = (uint8_t)(x | 0x80);
        x >>= 7;
    }
    v[vn++] = (uint8_t)x;
    if (vn > 1) {
        if (w->cap - w->len < vn - 1) {
            w->overflow = true;
            return;
        }
        memmove(w->p + at + vn, w->p + at + 1, body);
        w->len = at + vn + body;
    }
    memcpy(w->p + at, v, vn);
}

static void minmax_ts(const int64_t *ts, size_t n, int64_t *lo, int64_t *hi)
{
    int64_t a = ts[0], z = ts[0];
    for (size_t i = 1; i < n; i++) {
        a = ts[i] < a ? ts[i] : a;
        z = ts[i] > z ? ts[i] : z;
    }
    *lo = a;
    *hi = z;
}

static inline uint32_t stream_at(const chunk_builder *b, size_t pos)
{
    return b->cols[b->member_cols[pos]].stream;
}

/* An upper bound on the block of the columns at member_cols[from, to). */
static size_t range_bound(const chunk_builder *b, size_t from, size_t to)
{
    size_t bound = BOUND_FIXED;
    for (size_t p = from; p < to; p++) {
        if (p == from || stream_at(b, p) != stream_at(b, p - 1))
            bound += BOUND_PER_STREAM;
        bound += BOUND_PER_COLUMN + b->cols[b->member_cols[p]].s.n * BOUND_PER_POINT;
    }
    return bound;
}

/* Encodes the columns at member_cols[from, to) — whole streams or parts of
 * them, in stream order — as one block. Each stream in the block stores the
 * timestamps and sequences of its leader, whether or not the leader is in
 * the range. When the block does not fit cap: CHUNK_ETOOBIG, and *fit says
 * how many columns from `from` were written completely before the space ran
 * out (a block of just those fits, its directory being smaller). */
static int encode_range(chunk_builder *b, size_t from, size_t to, uint8_t *out, size_t cap,
                        size_t *len_out, chunk_block_info *info_out, size_t *fit)
{
    if (cap > CHUNK_BLOCK_HEADER_SIZE + (size_t)CHUNK_BLOCK_MAX_PAYLOAD)
        cap = CHUNK_BLOCK_HEADER_SIZE + (size_t)CHUNK_BLOCK_MAX_PAYLOAD;
    size_t count = 0, ncols = to - from;
    for (size_t p = from; p < to; p++)
        if (p == from || stream_at(b, p) != stream_at(b, p - 1))
            count++;
    size_t dirs = CHUNK_PAYLOAD_HEADER + count * CHUNK_STREAM_DIR + ncols * CHUNK_COLUMN_DIR;
    *fit = 0;
    if (cap < CHUNK_BLOCK_HEADER_SIZE + dirs)
        return chunk__fail(CHUNK_ETOOBIG, "block of %zu columns does not fit %zu bytes", ncols, cap);
    uint8_t *payload = out + CHUNK_BLOCK_HEADER_SIZE;
    wbuf w = {.p = payload, .len = dirs, .cap = cap - CHUNK_BLOCK_HEADER_SIZE, .overflow = false};
    le32_put(payload, (uint32_t)count);
    le32_put(payload + 4, (uint32_t)ncols);
    chunk_block_info info = {.kind = CHUNK_BLOCK_DATA, .columns = (uint32_t)ncols,
                             .seq_min = UINT64_MAX, .ts_min = INT64_MAX, .ts_max = INT64_MIN};
    uint8_t *sdir = payload + CHUNK_PAYLOAD_HEADER;
    uint8_t *cdir = sdir + count * CHUNK_STREAM_DIR;
    size_t col_no = 0, p = from;
    for (size_t si = 0; si < count && !w.overflow; si++) {
        const uint32_t stream = stream_at(b, p);
        const chunk_series *lead = &b->cols[b->streams[stream].leader].s;
        size_t n = lead->n;
        int64_t lo, hi;
        minmax_ts(lead->ts, n, &lo, &hi);
        size_t start = w.len;
        size_t at = section_begin(&w);
        chunk_int_encode(&w, (const uint64_t *)lead->ts, n, b->scratch);
        section_end(&w, at);
        at = section_begin(&w);
        chunk_int_encode(&w, lead->seq, n, b->scratch);
        section_end(&w, at);
        uint8_t *e = sdir + si * CHUNK_STREAM_DIR;
        le32_put(e, (uint32_t)n);
        le32_put(e + 4, (uint32_t)start);
        le32_put(e + 8, (uint32_t)(w.len - start));
        le32_put(e + 12, 0);
        le64_put(e + 16, (uint64_t)lo);
        le64_put(e + 24, (uint64_t)hi);
        info.ts_min = lo < info.ts_min ? lo : info.ts_min;
        info.ts_max = hi > info.ts_max ? hi : info.ts_max;

        for (; p < to && stream_at(b, p) == stream; p++, col_no++) {
            const struct column *c = &b->cols[b->member_cols[p]];
            const chunk_series *s = &c->s;
            size_t cstart = w.len;
            at = section_begin(&w);
            int scale = chunk_values_encode(&w, s->value, n, b->scratch, b->scratch2);
            section_end(&w, at);
            at = section_begin(&w);
            chunk_raw_encode(&w, s->raw, s->value, n, scale, b->scratch);
            section_end(&w, at);
            at = section_begin(&w);
            chunk_rle_encode_diff(&w, s->seq, lead->seq, n);
            section_end(&w, at);
            at = section_begin(&w);
            chunk_rle_encode_u8(&w, s->quality, n);
            section_end(&w, at);
            at = section_begin(&w);
            chunk_rle_encode_u8(&w, s->exception, n);
            section_end(&w, at);
            at = section_begin(&w);
            chunk_rle_encode_u16(&w, s->flags, n);
            section_end(&w, at);
            if (w.overflow)
                break;
            *fit = col_no + 1;
            uint8_t *ce = cdir + col_no * CHUNK_COLUMN_DIR;
            le32_put(ce, c->tag_id);
            le32_put(ce + 4, c->device_id);
            le32_put(ce + 8, (uint32_t)si);
            le32_put(ce + 12, (uint32_t)cstart);
            le32_put(ce + 16, (uint32_t)(w.len - cstart));
            le32_put(ce + 20, 0);
            info.points += (uint32_t)n;
            for (size_t i = 0; i < n; i++) {
                info.seq_min = s->seq[i] < info.seq_min ? s->seq[i] : info.seq_min;
                info.seq_max = s->seq[i] > info.seq_max ? s->seq[i] : info.seq_max;
            }
        }
    }
    if (w.overflow)
        return chunk__fail(CHUNK_ETOOBIG, "encoded block does not fit %zu bytes", cap);
    info.payload_len = (uint32_t)w.len;
    chunk_block_header_write(out, &info, payload);
    info.payload_crc = le32_get(out + 20);
    *len_out = CHUNK_BLOCK_HEADER_SIZE + w.len;
    if (info_out)
        *info_out = info;
    return 0;
}

int chunk_builder_encode(chunk_builder *b, uint8_t *out, size_t cap, size_t *len,
                         chunk_block_info *info)
{
    if (b->ncols == 0 || b->encoding)
        return chunk__fail(CHUNK_EINVAL, "no points to encode");
    int rc = group_columns(b);
    size_t fit;
    if (rc == 0)
        rc = encode_range(b, 0, b->ncols, out, cap, len, info, &fit);
    if (rc == 0)
        chunk_builder_reset(b);
    return rc;
}

/* The columns from member_cols[from] on that make one block in cap bytes:
 * all of them, or as many as fit (encoded twice: once to find out). */
static int encode_prefix(chunk_builder *b, size_t from, uint8_t *out, size_t cap, size_t *len,
                         chunk_block_info *info, size_t *used)
{
    size_t fit;
    int rc = encode_range(b, from, b->ncols, out, cap, len, info, &fit);
    if (rc == 0) {
        *used = b->ncols - from;
        return 0;
    }
    if (rc != CHUNK_ETOOBIG || fit == 0)
        return rc;
    *used = fit;
    return encode_range(b, from, from + fit, out, cap, len, info, &fit);
}

int chunk_builder_encode_next(chunk_builder *b, uint8_t *out, size_t cap, size_t *len,
                              chunk_block_info *info)
{
    if (!b->encoding) {
        if (b->ncols == 0)
            return chunk__fail(CHUNK_EINVAL, "no points to encode");
        int rc = group_columns(b);
        if (rc < 0)
            return rc;
        b->encoding = true;
        b->next = 0;
    }
    chunk_block_info i;
    size_t used = 0;
    int rc = encode_prefix(b, b->next, out, cap, len, &i, &used);
    if (rc < 0)
        return rc == CHUNK_ETOOBIG ? chunk__fail(rc, "a column of %zu points does not fit a "
                                                     "%zu-byte block",
                                                 b->cols[b->member_cols[b->next]].s.n, cap)
                                   : rc;
    if (info)
        *info = i;
    b->next += used;
    b->points -= i.points;
    if (b->next < b->ncols)
        return 1;
    chunk_builder_reset(b);
    return 0;
}

bool chunk_builder_encoding(const chunk_builder *b)
{
    return b->encoding;
}

static int tmp_reserve(chunk_builder *b, size_t bytes)
{
    if (b->tmp_cap >= bytes)
        return 0;
    uint8_t *t = realloc(b->tmp, bytes);
    if (!t)
        return chunk__fail(CHUNK_ENOMEM, "out of memory for a %zu-byte block", bytes);
    b->tmp = t;
    b->tmp_cap = bytes;
    return 0;
}

int chunk_builder_encode_groups(chunk_builder *b, chunk_emit_fn emit, void *ctx)
{
    if (b->ncols == 0)
        return 0;
    if (b->encoding)
        return chunk__fail(CHUNK_EINVAL, "a block is being encoded");
    int rc = group_columns(b);
    if (rc < 0)
        return rc;
    for (size_t s = 0; s < b->nstreams; s++) {
        size_t p = b->streams[s].first_member, end = p + b->streams[s].members;
        while (p < end) {
            /* The group's block, or as many of its columns as fit
             * CHUNK_GROUP_BLOCK_MAX; a single column that does not fit
             * gets a buffer of its own bound. */
            size_t want = range_bound(b, p, end);
            if (want > CHUNK_GROUP_BLOCK_MAX)
                want = CHUNK_GROUP_BLOCK_MAX;
            if ((rc = tmp_reserve(b, want)) < 0)
                return rc;
            size_t len, fit, used = end - p;
            chunk_block_info info;
            rc = encode_range(b, p, end, b->tmp, b->tmp_cap, &len, &info, &fit);
            if (rc == CHUNK_ETOOBIG) {
                used = fit ? fit : 1;
                if (!fit && (rc = tmp_reserve(b, range_bound(b, p, p + 1))) < 0)
                    return rc;
                rc = encode_range(b, p, p + used, b->tmp, b->tmp_cap, &len, &info, &fit);
            }
            if (rc < 0)
                return rc;
            if ((rc = emit(ctx, b->tmp, len, &info)) < 0)
                return rc;
            p += used;
        }
    }
    chunk_builder_reset(b);
    return 0;
}

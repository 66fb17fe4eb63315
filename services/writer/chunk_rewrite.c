/*
 * chunk_rewrite.c — rewriting a chunk of small blocks into blocks of up to
 * 8192 points per tag, one per group of tags sharing timestamps, within a
 * memory budget (chunk_seal_ctx.memory).
 *
 * A tag's points are spread over every block of the chunk, so regrouping
 * them in one go needs the whole chunk decoded in memory (about 40 bytes a
 * point: 50 MB for a 64 MiB chunk of 1.2 M points), and regrouping in
 * windows of what fits makes blocks of a few points per tag, where the
 * per-column overhead costs more than the points (2–4 bytes a point more).
 * So, like an external sort:
 *
 *   - When the chunk's points fit the budget: one pass. Its blocks are
 *     decoded in file order into the builder and the groups written out.
 *   - Otherwise, phase 1: the same pass in windows of what fits, each
 *     window's group blocks appended to an intermediate file (chunk_seal.c
 *     creates it as <writer>.<no>.tmp and unlinks it at once: nothing is
 *     left after a crash). Phase 2: the tags are split into sets whose points fit the
 *     budget, tags that shared an intermediate block kept together (they
 *     share timestamps); for each set the intermediate blocks holding its
 *     tags are read back, their columns decoded into the builder (reserved
 *     exactly: a tag's points, at most 8192) and the set's groups written
 *     to the final file. Every intermediate block is read about once.
 *
 * Every block is read through a bounded window and its CRC checked when it
 * is read, in either phase.
 */
#include "chunk_internal.h"

#include <stdlib.h>

#define WINDOW_POINTS 8192u /* per tag per output block */
/* What a point costs in the builder: 36 bytes of fields and 8 of decoder
 * scratch; a growing column may hold twice its points. */
#define POINT_MEMORY 44u

/* A column (tag, device) of the intermediate file. */
struct col {
    uint32_t tag, dev;
    uint64_t total;   /* its points in the chunk */
    uint64_t added;   /* added to the builder in phase 2 so far */
    uint64_t pending; /* in the builder now */
    uint32_t parent;  /* union-find over columns that shared a block */
    uint32_t set;     /* phase 2 set */
};

/* A block of the intermediate file and where its columns' numbers are in
 * refs (in the order of its column directory). */
struct mid_block {
    uint64_t offset;
    uint32_t len;
    uint32_t first, ncols;
};

struct merge {
    chunk_seal_ctx *ctx;
    chunk_out mid; /* the intermediate file */
    struct col *cols;
    size_t ncols, cap_cols;
    chunk_map map; /* (dev << 32 | tag) -> column + 1 */
    uint32_t *refs;
    size_t nrefs, cap_refs;
    struct mid_block *blocks;
    size_t nblocks, cap_blocks;
};

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap + *cap / 2 : 256;
    while (n < need)
        n += n / 2;
    void *q = realloc(p, n * elem);
    if (q)
        *cap = n;
    return q;
}

/* ------------------------------------------------------------ reading */

/* Reads the block at [off, off + len) of r, checks it and opens it. */
static int read_view(chunk_seal_ctx *ctx, chunk_reader *r, uint64_t off, uint32_t len,
                     chunk_data_view *v)
{
    const uint8_t *blk;
    chunk_block_info info;
    bool damaged;
    int rc = chunk__read_block(r, off, off + len, &blk, &info, &damaged);
    if (rc < 0)
        return damaged ? chunk__fail(rc, "%s: block at offset %llu changed since it was checked: "
                                         "%s",
                                     r->path, (unsigned long long)off, chunk_last_error())
                       : rc;
    ctx->cache.payload = NULL; /* the window may hold another block at the same address */
    rc = chunk_data_view_open(blk, len, v);
    return rc < 0 ? chunk__fail(rc, "%s: block at offset %llu: %s", r->path,
                                (unsigned long long)off, chunk_last_error())
                  : 0;
}

static int add_column(chunk_seal_ctx *ctx, const chunk_data_view *v, uint32_t c,
                      const char *path, uint64_t off)
{
    int n = chunk_builder_add_column(ctx->b, v, c, &ctx->cache);
    return n < 0 ? chunk__fail(n, "%s: block at offset %llu: %s", path, (unsigned long long)off,
                               chunk_last_error())
                 : n;
}

/* Writes the builder's groups out. Between windows the columns' memory is
 * given back: the next window may hold other tags, and what both hold
 * together could pass the budget. */
static int flush_groups(chunk_seal_ctx *ctx, chunk_emit_fn emit, void *sink)
{
    int rc = chunk_builder_encode_groups(ctx->b, emit, sink);
    chunk_builder_trim(ctx->b, 0);
    return rc;
}

/* One pass over the chunk's blocks in file order: groups go to emit
 * whenever the builder would pass `window` points or a column
 * WINDOW_POINTS. */
static int regroup(chunk_seal_ctx *ctx, const chunk_scan *s, size_t window, chunk_emit_fn emit,
                   void *sink)
{
    chunk_builder *b = ctx->b;
    int rc = 0;
    for (size_t i = 0; i < s->n_blocks && rc == 0; i++) {
        const chunk_block_ref *ref = &s->blocks[i];
        chunk_data_view v;
        rc = read_view(ctx, &ctx->in, ref->offset, ref->len, &v);
        if (rc == 0 && chunk_builder_points(b) &&
            chunk_builder_points(b) + v.info.points > window)
            rc = flush_groups(ctx, emit, sink);
        for (uint32_t c = 0; rc == 0 && c < v.ncols; c++) {
            chunk_column_ref cr;
            chunk_data_view_column(&v, c, &cr);
            if (chunk_builder_column_points(b, cr.tag_id, cr.device_id) + cr.count >
                WINDOW_POINTS)
                rc = flush_groups(ctx, emit, sink);
            if (rc == 0) {
                int n = add_column(ctx, &v, c, ctx->in.path, ref->offset);
                rc = n < 0 ? n : 0;
            }
        }
    }
    if (rc == 0)
        rc = flush_groups(ctx, emit, sink);
    return rc;
}

/* ------------------------------------------------------------ phase 1 */

static uint32_t find_root(struct merge *m, uint32_t c)
{
    while (m->cols[c].parent != c) {
        m->cols[c].parent = m->cols[m->cols[c].parent].parent;
        c = m->cols[c].parent;
    }
    return c;
}

static void unite(struct merge *m, uint32_t a, uint32_t b)
{
    a = find_root(m, a);
    b = find_root(m, b);
    if (a != b)
        m->cols[a > b ? a : b].parent = a < b ? a : b; /* the first seen stays the root */
}

/* The column number of (tag, dev), a new one when first seen. */
static int col_id(struct merge *m, uint32_t tag, uint32_t dev, uint32_t *id)
{
    uint64_t key = (uint64_t)dev << 32 | tag;
    uint32_t v = chunk_map_get(&m->map, key);
    if (v) {
        *id = v - 1;
        return 0;
    }
    struct col *cols = grow(m->cols, &m->cap_cols, m->ncols + 1, sizeof *cols);
    if (!cols)
        return chunk__fail(CHUNK_ENOMEM, "out of memory for %zu columns", m->ncols + 1);
    m->cols = cols;
    *id = (uint32_t)m->ncols;
    int rc = chunk_map_put(&m->map, key, *id + 1);
    if (rc < 0)
        return rc;
    cols[m->ncols++] = (struct col){.tag = tag, .dev = dev, .parent = *id};
    return 0;
}

/* Phase 1's sink: appends a group block to the intermediate file and notes
 * where it is and which columns it holds. */
static int mid_emit(void *p, const uint8_t *block, size_t len, const chunk_block_info *info)
{
    struct merge *m = p;
    (void)info;
    chunk_data_view v;
    int rc = chunk_data_view_open(block, len, &v);
    if (rc < 0)
        return rc;
    struct mid_block *blocks = grow(m->blocks, &m->cap_blocks, m->nblocks + 1, sizeof *blocks);
    uint32_t *refs = blocks ? grow(m->refs, &m->cap_refs, m->nrefs + v.ncols, sizeof *refs) : NULL;
    if (blocks)
        m->blocks = blocks;
    if (!refs)
        return chunk__fail(CHUNK_ENOMEM, "out of memory regrouping %s", m->ctx->in.path);
    m->refs = refs;
    m->blocks[m->nblocks++] = (struct mid_block){.offset = m->mid.off + m->mid.len,
                                                 .len = (uint32_t)len,
                                                 .first = (uint32_t)m->nrefs,
                                                 .ncols = v.ncols};
    for (uint32_t c = 0; c < v.ncols; c++) {
        chunk_column_ref cr;
        chunk_data_view_column(&v, c, &cr);
        uint32_t id = 0;
        if ((rc = col_id(m, cr.tag_id, cr.device_id, &id)) < 0)
            return rc;
        m->cols[id].total += cr.count;
        m->refs[m->nrefs++] = id;
        unite(m, m->refs[m->blocks[m->nblocks - 1].first], id);
    }
    return chunk__out_append(&m->mid, block, len);
}

/* ------------------------------------------------------------ phase 2 */

static int cmp_by_root(const void *pa, const void *pb, void *ctx)
{
    const struct merge *m = ctx;
    const struct col *a = &m->cols[*(const uint32_t *)pa];
    const struct col *b = &m->cols[*(const uint32_t *)pb];
    if (a->parent != b->parent)
        return a->parent < b->parent ? -1 : 1;
    return *(const uint32_t *)pa < *(const uint32_t *)pb ? -1 : 1;
}

/* Splits the columns into sets of at most `budget` reserved points, each
 * group of columns that shared blocks in one set unless it alone is larger.
 * Returns the number of sets. */
static size_t reserved(const struct col *c)
{
    return c->total < WINDOW_POINTS ? (size_t)c->total : WINDOW_POINTS;
}

static int assign_sets(struct merge *m, size_t budget, uint32_t *nsets)
{
    uint32_t *order = malloc((m->ncols ? m->ncols : 1) * sizeof *order);
    if (!order)
        return chunk__fail(CHUNK_ENOMEM, "out of memory regrouping %s", m->ctx->in.path);
    for (size_t i = 0; i < m->ncols; i++) {
        m->cols[i].parent = find_root(m, (uint32_t)i);
        order[i] = (uint32_t)i;
    }
    qsort_r(order, m->ncols, sizeof *order, cmp_by_root, m);
    uint32_t set = 0;
    size_t sum = 0;
    for (size_t k = 0; k < m->ncols;) {
        /* a group of columns that shared blocks: into the current set if
         * it fits, else into a new one; cut only when larger than a set */
        size_t end = k, group = 0;
        for (; end < m->ncols && m->cols[order[end]].parent == m->cols[order[k]].parent; end++)
            group += reserved(&m->cols[order[end]]);
        if (sum && sum + group > budget) {
            set++;
            sum = 0;
        }
        for (; k < end; k++) {
            struct col *c = &m->cols[order[k]];
            if (sum && sum + reserved(c) > budget) {
                set++;
                sum = 0;
            }
            c->set = set;
            sum += reserved(c);
        }
    }
    free(order);
    *nsets = set + 1;
    return 0;
}

static int flush_set(struct merge *m, uint32_t set, chunk_out *final)
{
    int rc = chunk_builder_encode_groups(m->ctx->b, chunk__out_block, final);
    for (size_t i = 0; i < m->ncols; i++)
        if (m->cols[i].set == set)
            m->cols[i].pending = 0;
    chunk_builder_trim(m->ctx->b, 0); /* the next window reserves exactly again */
    return rc;
}

static bool holds_set(const struct merge *m, const struct mid_block *blk, uint32_t set)
{
    for (uint32_t c = 0; c < blk->ncols; c++)
        if (m->cols[m->refs[blk->first + c]].set == set)
            return true;
    return false;
}

/* Reads the intermediate blocks holding the columns of `set` and writes
 * their groups to final. */
static int merge_set(struct merge *m, uint32_t set, chunk_out *final)
{
    chunk_seal_ctx *ctx = m->ctx;
    chunk_builder_trim(ctx->b, 0);
    int rc = 0;
    for (size_t k = 0; k < m->nblocks && rc == 0; k++) {
        const struct mid_block *blk = &m->blocks[k];
        if (!holds_set(m, blk, set))
            continue;
        chunk_data_view v;
        rc = read_view(ctx, &ctx->mid, blk->offset, blk->len, &v);
        if (rc == 0 && v.ncols != blk->ncols)
            rc = chunk__fail(CHUNK_ECORRUPT, "%s: intermediate block at offset %llu changed",
                             ctx->mid.path, (unsigned long long)blk->offset);
        for (uint32_t c = 0; rc == 0 && c < v.ncols; c++) {
            struct col *col = &m->cols[m->refs[blk->first + c]];
            chunk_column_ref cr;
            chunk_data_view_column(&v, c, &cr);
            if (col->set != set)
                continue;
            if (cr.tag_id != col->tag || cr.device_id != col->dev) {
                rc = chunk__fail(CHUNK_ECORRUPT, "%s: intermediate block at offset %llu changed",
                                 ctx->mid.path, (unsigned long long)blk->offset);
                break;
            }
            if (col->pending + cr.count > WINDOW_POINTS)
                rc = flush_set(m, set, final);
            if (rc == 0 && col->pending == 0) {
                uint64_t left = col->total > col->added ? col->total - col->added : 0;
                rc = chunk_builder_reserve(ctx->b, col->tag, col->dev,
                                           left < WINDOW_POINTS ? (size_t)left : WINDOW_POINTS);
            }
            if (rc == 0 && (rc = add_column(ctx, &v, c, ctx->mid.path, blk->offset)) > 0)
                rc = 0;
            col->pending += cr.count;
            col->added += cr.count;
        }
    }
    if (rc == 0)
        rc = flush_set(m, set, final);
    return rc;
}

/* ------------------------------------------------------------ the rewrite */

/* Points per window of a pass: half the budget (a growing column may hold
 * twice its points), never less than one output block's worth. */
static size_t pass_window(const chunk_seal_ctx *ctx)
{
    size_t window = ctx->memory / (2 * POINT_MEMORY);
    return window < WINDOW_POINTS ? WINDOW_POINTS : window;
}

bool chunk__rewrite_merges(const chunk_seal_ctx *ctx, const chunk_scan *s)
{
    return s->points > pass_window(ctx);
}

static void merge_free(struct merge *m)
{
    free(m->cols);
    chunk_map_free(&m->map);
    free(m->refs);
    free(m->blocks);
}

int chunk__rewrite_blocks(chunk_seal_ctx *ctx, const chunk_scan *s, int mid_fd,
                          const char *mid_name, chunk_out *final)
{
    if (!chunk__rewrite_merges(ctx, s))
        return regroup(ctx, s, pass_window(ctx), chunk__out_block, final);
    struct merge m = {.ctx = ctx, .mid = {.fd = mid_fd, .name = mid_name, .buf = ctx->out[1]}};
    int rc = regroup(ctx, s, pass_window(ctx), mid_emit, &m);
    if (rc == 0)
        rc = chunk__out_flush(&m.mid);
    uint32_t nsets = 0;
    if (rc == 0)
        rc = assign_sets(&m, ctx->memory / POINT_MEMORY, &nsets);
    if (rc == 0)
        chunk_reader_attach(&ctx->mid, mid_fd, mid_name, m.mid.off);
    for (uint32_t set = 0; rc == 0 && set < nsets; set++)
        rc = merge_set(&m, set, final);
    chunk_reader_attach(&ctx->mid, -1, NULL, 0);
    merge_free(&m);
    return rc;
}

/*
 * chunk_index.c — the index and footer that seal a chunk.
 *
 * Index block (kind 2): u32 entries, u32 reserved, then per entry (48
 * bytes): u32 tag, u32 device, u64 block offset, u32 block length, u32
 * points, i64 ts_min, i64 ts_max — sorted by (tag, device, ts_min), so a
 * reader finds a tag's blocks over a time range with a binary search.
 * Footer block (kind 3, always the last 128 bytes of a sealed file): u64
 * index offset, u32 index length, u32 data blocks, u64 points, i64 ts_min,
 * i64 ts_max, u64 seq_min, u64 seq_max, u64 data bytes.
 */
#include "chunk_internal.h"

#include <stdlib.h>

static int index_push(chunk_index *ix, const chunk_index_entry *e)
{
    if (ix->n == ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 256;
        chunk_index_entry *p = realloc(ix->e, cap * sizeof *p);
        if (!p)
            return chunk__fail(CHUNK_ENOMEM, "out of memory for %zu index entries", cap);
        ix->e = p;
        ix->cap = cap;
    }
    ix->e[ix->n++] = *e;
    return 0;
}

int chunk_index_add_block(chunk_index *ix, const uint8_t *block, size_t len, uint64_t offset)
{
    chunk_data_view v;
    int rc = chunk_data_view_open(block, len, &v);
    if (rc < 0)
        return rc;
    for (uint32_t c = 0; c < v.ncols; c++) {
        chunk_column_ref ref;
        chunk_data_view_column(&v, c, &ref);
        chunk_index_entry e = {
            .tag_id = ref.tag_id,
            .device_id = ref.device_id,
            .block_offset = offset,
            .block_len = CHUNK_BLOCK_HEADER_SIZE + v.payload_len,
            .points = ref.count,
            .ts_min = ref.ts_min,
            .ts_max = ref.ts_max,
        };
        rc = index_push(ix, &e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cmp_entry(const void *pa, const void *pb)
{
    const chunk_index_entry *a = pa, *b = pb;
    if (a->tag_id != b->tag_id)
        return a->tag_id < b->tag_id ? -1 : 1;
    if (a->device_id != b->device_id)
        return a->device_id < b->device_id ? -1 : 1;
    if (a->ts_min != b->ts_min)
        return a->ts_min < b->ts_min ? -1 : 1;
    return a->block_offset < b->block_offset ? -1 : a->block_offset > b->block_offset;
}

void chunk_index_sort(chunk_index *ix)
{
    if (ix->n > 1)
        qsort(ix->e, ix->n, sizeof *ix->e, cmp_entry);
}

void chunk_index_free(chunk_index *ix)
{
    free(ix->e);
    memset(ix, 0, sizeof *ix);
}

size_t chunk_index_block_size(const chunk_index *ix)
{
    return CHUNK_BLOCK_HEADER_SIZE + 8 + ix->n * CHUNK_INDEX_ENTRY;
}

void chunk_index_encode(const chunk_index *ix, uint8_t *out)
{
    uint8_t *p = out + CHUNK_BLOCK_HEADER_SIZE;
    le32_put(p, (uint32_t)ix->n);
    le32_put(p + 4, 0);
    chunk_block_info info = {.kind = CHUNK_BLOCK_INDEX,
                             .payload_len = (uint32_t)(8 + ix->n * CHUNK_INDEX_ENTRY),
                             .ts_min = INT64_MAX,
                             .ts_max = INT64_MIN};
    for (size_t i = 0; i < ix->n; i++) {
        const chunk_index_entry *e = &ix->e[i];
        uint8_t *q = p + 8 + i * CHUNK_INDEX_ENTRY;
        le32_put(q, e->tag_id);
        le32_put(q + 4, e->device_id);
        le64_put(q + 8, e->block_offset);
        le32_put(q + 16, e->block_len);
        le32_put(q + 20, e->points);
        le64_put(q + 24, (uint64_t)e->ts_min);
        le64_put(q + 32, (uint64_t)e->ts_max);
        le64_put(q + 40, 0);
        info.points += e->points;
        info.ts_min = e->ts_min < info.ts_min ? e->ts_min : info.ts_min;
        info.ts_max = e->ts_max > info.ts_max ? e->ts_max : info.ts_max;
    }
    info.columns = (uint32_t)ix->n;
    chunk_block_header_write(out, &info, p);
}

int chunk_index_decode(const uint8_t *block, size_t len, uint64_t file_size, chunk_index *ix)
{
    chunk_block_info info;
    int rc = chunk_block_check(block, len, &info);
    if (rc < 0)
        return rc;
    if (info.kind != CHUNK_BLOCK_INDEX || info.payload_len < 8)
        return chunk__fail(CHUNK_ECORRUPT, "not an index block");
    const uint8_t *p = block + CHUNK_BLOCK_HEADER_SIZE;
    uint32_t n = le32_get(p);
    if ((uint64_t)n * CHUNK_INDEX_ENTRY + 8 != info.payload_len)
        return chunk__fail(CHUNK_ECORRUPT, "index of %u entries in %u bytes", n, info.payload_len);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *q = p + 8 + (size_t)i * CHUNK_INDEX_ENTRY;
        chunk_index_entry e = {
            .tag_id = le32_get(q),
            .device_id = le32_get(q + 4),
            .block_offset = le64_get(q + 8),
            .block_len = le32_get(q + 16),
            .points = le32_get(q + 20),
            .ts_min = (int64_t)le64_get(q + 24),
            .ts_max = (int64_t)le64_get(q + 32),
        };
        if (e.block_offset < CHUNK_FILE_HEADER_SIZE || e.block_len < CHUNK_BLOCK_HEADER_SIZE ||
            e.block_offset + e.block_len > file_size || e.ts_min > e.ts_max || e.points == 0)
            return chunk__fail(CHUNK_ECORRUPT, "index entry %u is out of bounds", i);
        rc = index_push(ix, &e);
        if (rc < 0)
            return rc;
    }
    return 0;
}

void chunk_footer_write(const chunk_footer *f, uint8_t out[CHUNK_FOOTER_SIZE])
{
    uint8_t *p = out + CHUNK_BLOCK_HEADER_SIZE;
    le64_put(p, f->index_offset);
    le32_put(p + 8, f->index_len);
    le32_put(p + 12, f->data_blocks);
    le64_put(p + 16, f->points);
    le64_put(p + 24, (uint64_t)f->ts_min);
    le64_put(p + 32, (uint64_t)f->ts_max);
    le64_put(p + 40, f->seq_min);
    le64_put(p + 48, f->seq_max);
    le64_put(p + 56, f->data_bytes);
    chunk_block_info info = {.kind = CHUNK_BLOCK_FOOTER,
                             .payload_len = CHUNK_FOOTER_PAYLOAD,
                             .points = (uint32_t)(f->points > UINT32_MAX ? UINT32_MAX : f->points),
                             .seq_min = f->seq_min,
                             .seq_max = f->seq_max,
                             .ts_min = f->ts_min,
                             .ts_max = f->ts_max};
    chunk_block_header_write(out, &info, p);
}

int chunk_footer_parse(const uint8_t *buf, size_t len, chunk_footer *f)
{
    chunk_block_info info;
    int rc = chunk_block_check(buf, len, &info);
    if (rc < 0)
        return rc;
    if (info.kind != CHUNK_BLOCK_FOOTER)
        return chunk__fail(CHUNK_ECORRUPT, "not a footer block");
    const uint8_t *p = buf + CHUNK_BLOCK_HEADER_SIZE;
    f->index_offset = le64_get(p);
    f->index_len = le32_get(p + 8);
    f->data_blocks = le32_get(p + 12);
    f->points = le64_get(p + 16);
    f->ts_min = (int64_t)le64_get(p + 24);
    f->ts_max = (int64_t)le64_get(p + 32);
    f->seq_min = le64_get(p + 40);
    f->seq_max = le64_get(p + 48);
    f->data_bytes = le64_get(p + 56);
    return 0;
}

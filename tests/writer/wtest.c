/*
 * wtest.c — helpers for the writer's tests (see wtest.h).
 */
#include "wtest.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint64_t state = 0x9E3779B97F4A7C15ull;

void wtest_seed(uint64_t s)
{
    state = s ? s : 1;
}

uint64_t wtest_rand(void)
{
    uint64_t x = state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return state = x;
}

shm_tag_value *wtest_points(size_t polls, uint32_t tags, uint64_t *seq, int64_t *t, size_t *n)
{
    shm_tag_value *p = calloc(polls * tags, sizeof *p);
    size_t k = 0;
    for (size_t i = 0; i < polls; i++) {
        for (uint32_t g = 0; g < tags; g += 4) {
            int64_t ts = *t + (int64_t)(wtest_rand() % 3000000);
            for (uint32_t tag = g; tag < g + 4 && tag < tags; tag++) {
                shm_tag_value *v = &p[k++];
                v->sequence = (*seq)++;
                v->timestamp_ns = ts;
                v->tag_id = tag;
                v->device_id = tag / 4;
                v->value = round((20.0 + tag + (double)(wtest_rand() % 200) / 100.0) * 100) / 100;
                v->raw = (int64_t)llround(v->value * 100);
                v->quality = wtest_rand() % 50 == 0 ? SHM_Q_COMM_FAIL : SHM_Q_GOOD;
                v->exception_code = v->quality ? 4 : 0;
            }
        }
        *t += 1000000000;
    }
    *n = k;
    return p;
}

int wtest_write_open_chunk(int dirfd, const char *writer, uint32_t no, size_t blocks, size_t polls,
                           uint32_t tags, uint64_t *seq, int64_t *t, shm_tag_value **all,
                           size_t *nall)
{
    chunk_file_header h = {.version = CHUNK_FORMAT_VERSION, .chunk_no = no, .created_ns = *t,
                           .segment_created_ns = 1};
    snprintf(h.writer, sizeof h.writer, "%s", writer);
    snprintf(h.segment, sizeof h.segment, "test");
    char name[64];
    int fd = chunk_create(dirfd, &h, name, sizeof name);
    if (fd < 0)
        return fd;
    chunk_builder *b;
    chunk_builder_new(&b);
    uint64_t off = CHUNK_FILE_HEADER_SIZE;
    for (size_t k = 0; k < blocks; k++) {
        size_t n;
        shm_tag_value *p = wtest_points(polls, tags, seq, t, &n);
        for (size_t i = 0; i < n; i++)
            chunk_builder_add(b, &p[i]);
        size_t cap = chunk_builder_bound(b), len;
        uint8_t *buf = malloc(cap);
        if (chunk_builder_encode(b, buf, cap, &len, NULL) != 0 ||
            pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
            abort();
        off += len;
        free(buf);
        *all = realloc(*all, (*nall + n) * sizeof **all);
        memcpy(*all + *nall, p, n * sizeof *p);
        *nall += n;
        free(p);
    }
    fdatasync(fd);
    close(fd);
    chunk_builder_free(&b);
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

size_t wtest_block_map(const char *path, wtest_block **out)
{
    int fd = open(path, O_RDONLY);
    chunk_scan s;
    if (fd < 0 || chunk_scan_fd(fd, path, CHUNK_SCAN_FULL, &s) != 0)
        abort();
    wtest_block *bl = calloc(s.n_blocks + 1, sizeof *bl);
    chunk_series col = {0};
    for (size_t i = 0; i < s.n_blocks; i++) {
        uint8_t *buf = malloc(s.blocks[i].len);
        if (pread(fd, buf, s.blocks[i].len, (off_t)s.blocks[i].offset) != (ssize_t)s.blocks[i].len)
            abort();
        chunk_data_view v;
        if (chunk_data_view_open(buf, s.blocks[i].len, &v) != 0)
            abort();
        bl[i].offset = s.blocks[i].offset;
        bl[i].len = s.blocks[i].len;
        for (uint32_t c = 0; c < v.ncols; c++) {
            chunk_series_clear(&col);
            if (chunk_data_decode_column(&v, c, CHUNK_F_ALL, &col) < 0)
                abort();
            bl[i].seqs = realloc(bl[i].seqs, (bl[i].nseqs + col.n) * sizeof *bl[i].seqs);
            memcpy(bl[i].seqs + bl[i].nseqs, col.seq, col.n * sizeof *col.seq);
            bl[i].nseqs += col.n;
        }
        qsort(bl[i].seqs, bl[i].nseqs, sizeof *bl[i].seqs, cmp_u64);
        free(buf);
    }
    size_t n = s.n_blocks;
    chunk_series_free(&col);
    chunk_scan_free(&s);
    close(fd);
    *out = bl;
    return n;
}

void wtest_block_map_free(wtest_block *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(b[i].seqs);
    free(b);
}

chunk_store *wtest_read_all(const char *dir, uint32_t tags, chunk_series *out, uint64_t *dropped)
{
    chunk_store *s = NULL;
    if (chunk_store_open(dir, 0, NULL, NULL, &s) != 0)
        return NULL;
    *dropped = 0;
    for (uint32_t tag = 0; tag < tags; tag++) {
        chunk_read_stats st = {0};
        if (chunk_store_read(s, tag, INT64_MIN, INT64_MAX, CHUNK_F_ALL, out, &st) != 0)
            abort();
        *dropped += st.points_dropped;
    }
    return s;
}

void wtest_copy(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    if (!in || !out)
        abort();
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            abort();
    fclose(in);
    fclose(out);
}

long wtest_find_seq(const shm_tag_value *pts, size_t n, uint64_t seq)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (pts[mid].sequence < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && pts[lo].sequence == seq ? (long)lo : -1;
}

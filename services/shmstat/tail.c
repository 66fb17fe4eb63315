/*
 * tail.c — shmstat --tail N: the newest N committed records of the ring,
 * copied with shm_ring_peek() (no group is joined, nothing is written).
 *
 * Each record is verified and decoded as a TagValue; the tag is named from
 * the segment's catalog when its entry decodes as a TagMeta. A record that
 * is not a valid TagValue is shown as hex with the verifier's reason. --raw
 * writes every record as a size-prefixed FlatBuffer (4-byte little-endian
 * length, then the bytes), the framing `flatc --size-prefixed` reads.
 */
#include "jsonw.h"
#include "shmstat.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

struct tag_names {
    char name[256], device[256], unit[256];
    int found;
};

static void lookup_tag(const shm_segment *seg, uint32_t tag_id, struct tag_names *t)
{
    static uint8_t entry[SHM_CATALOG_ENTRY_MAX];
    shm_tag_meta meta;
    memset(t, 0, sizeof *t);
    int len = shm_catalog_get(seg, tag_id, entry, sizeof entry);
    if (len <= 0 || shm_tag_meta_decode(entry, (size_t)len, &meta) != 0)
        return;
    snprintf(t->name, sizeof t->name, "%s", meta.name);
    snprintf(t->device, sizeof t->device, "%s", meta.device);
    snprintf(t->unit, sizeof t->unit, "%s", meta.unit);
    t->found = 1;
}

/* Catalog strings and verifier messages may hold any bytes: show only
 * printable ASCII and UTF-8 lead/continuation bytes. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

static void hex_line(FILE *out, const uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        if (i && i % 32 == 0)
            fprintf(out, "\n%30s", "");
        fprintf(out, "%s%02x", i % 32 ? " " : "", p[i]);
    }
}

static void text_record(FILE *out, const shm_segment *seg, const shm_record *r)
{
    shm_tag_value v;
    fprintf(out, "  %20" PRIu64 " %5u  ", r->seq, r->len);
    if (shm_tag_value_decode(r->data, r->len, &v) != 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", shm_last_error());
        sanitize(why);
        fprintf(out, "not a TagValue (%s)\n%30s", why, "");
        hex_line(out, r->data, r->len);
        fputc('\n', out);
        return;
    }
    struct tag_names t;
    char when[48];
    lookup_tag(seg, v.tag_id, &t);
    sanitize(t.name);
    sanitize(t.unit);
    fprintf(out, "tag %s (%u) device %u  value %.15g%s%s  raw %" PRId64 "  quality %s",
            t.found ? t.name : "?", v.tag_id, v.device_id, v.value, *t.unit ? " " : "", t.unit,
            v.raw, shm_quality_name(v.quality));
    if (v.exception_code)
        fprintf(out, " (exception %u)", v.exception_code);
    fprintf(out, "  at %s", format_time(when, sizeof when, v.timestamp_ns));
    if (v.sequence != r->seq)
        fprintf(out, "  record sequence %" PRIu64, v.sequence);
    if (v.flags)
        fprintf(out, "  flags 0x%04x", v.flags);
    fputc('\n', out);
}

static void json_record(struct jsonw *w, const shm_segment *seg, const shm_record *r)
{
    shm_tag_value v;
    jw_object_begin(w, NULL);
    jw_u64(w, "seq", r->seq);
    jw_u64(w, "len", r->len);
    if (shm_tag_value_decode(r->data, r->len, &v) != 0) {
        jw_str(w, "error", shm_last_error());
        char *hex = malloc((size_t)r->len * 2 + 1);
        if (hex) {
            for (uint32_t i = 0; i < r->len; i++)
                snprintf(hex + 2 * i, 3, "%02x", ((const uint8_t *)r->data)[i]);
            hex[2 * (size_t)r->len] = '\0';
            jw_str(w, "hex", hex);
            free(hex);
        }
        jw_object_end(w);
        return;
    }
    struct tag_names t;
    char when[48];
    lookup_tag(seg, v.tag_id, &t);
    jw_object_begin(w, "tag_value");
    jw_u64(w, "sequence", v.sequence);
    jw_i64(w, "timestamp_ns", v.timestamp_ns);
    jw_str(w, "time", format_time(when, sizeof when, v.timestamp_ns));
    jw_u64(w, "device_id", v.device_id);
    jw_u64(w, "tag_id", v.tag_id);
    if (t.found) {
        jw_str(w, "tag", t.name);
        jw_str(w, "device", t.device);
        jw_str(w, "unit", t.unit);
    }
    jw_double(w, "value", v.value);
    jw_i64(w, "raw", v.raw);
    jw_str(w, "quality", shm_quality_name(v.quality));
    jw_u64(w, "quality_code", v.quality);
    jw_u64(w, "exception_code", v.exception_code);
    jw_u64(w, "flags", v.flags);
    jw_object_end(w);
    jw_object_end(w);
}

static void raw_record(FILE *out, const shm_record *r)
{
    uint8_t prefix[4] = {(uint8_t)r->len, (uint8_t)(r->len >> 8), (uint8_t)(r->len >> 16),
                         (uint8_t)(r->len >> 24)};
    fwrite(prefix, 1, sizeof prefix, out);
    fwrite(r->data, 1, r->len, out);
}

int tail_render(FILE *out, const shm_segment *seg, uint32_t n, int json, int raw)
{
    shm_segment_info info;
    int rc = shm_segment_info_get(seg, &info);
    if (rc)
        return rc;
    shm_record *recs = calloc(n, sizeof *recs);
    size_t buf_len = (size_t)n * info.slot_payload;
    void *buf = malloc(buf_len);
    if (!recs || !buf) {
        rc = SHM_ENOMEM;
        goto out;
    }
    rc = shm_ring_peek(seg, n, recs, buf, buf_len);
    if (rc < 0)
        goto out;
    int got = rc;
    rc = 0;
    if (raw) {
        for (int i = 0; i < got; i++)
            raw_record(out, &recs[i]);
    } else if (json) {
        struct jsonw w;
        jw_init(&w, out, 1);
        jw_object_begin(&w, NULL);
        jw_str(&w, "segment", info.name);
        jw_u64(&w, "requested", n);
        jw_array_begin(&w, "records");
        for (int i = 0; i < got; i++)
            json_record(&w, seg, &recs[i]);
        jw_array_end(&w);
        jw_object_end(&w);
        jw_finish(&w);
    } else {
        fprintf(out, "newest %d of %u requested records of /shmbus.%s, oldest first\n", got, n,
                info.name);
        if (got)
            fprintf(out, "  %20s %5s  %s\n", "SEQ", "LEN", "RECORD");
        for (int i = 0; i < got; i++)
            text_record(out, seg, &recs[i]);
    }
out:
    free(recs);
    free(buf);
    return rc;
}

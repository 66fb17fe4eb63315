/*
 * record_verify.c — the FlatBuffers verifier behind every record decoder.
 *
 * Records come from shared memory that any member (or a bug, or a dying
 * process) may have scribbled on, so nothing in a buffer is trusted: every
 * offset, vtable and length is checked against the buffer's bounds before
 * anything it points to is read, and each failure names what was wrong
 * through shm__fail(SHM_EBADRECORD, ...). The rules follow the official C++
 * verifier (flatbuffers/verifier.h), a little stricter where our schemas
 * allow it: fields must lie inside their table's inline bytes, the root
 * table may not overlap the header, strings are bounded, NUL-free UTF-8.
 *
 * Our schemas have no nested tables or vectors, so verification is a fixed
 * amount of work: one table, at most three strings; nothing recurses, and a
 * buffer cannot make the verifier nest or loop. Fields a reader does not know
 * (appended by a newer schema) are not followed, as FlatBuffers prescribes.
 */
#include "internal.h"
#include "record_internal.h"

#include <inttypes.h>
#include <stdio.h>

/* The identifier as text for a diagnostic: printable ASCII kept, the rest
 * as '?', followed by its hex bytes. */
static void ident_text(const uint8_t *p, char *out, size_t cap)
{
    char shown[5];
    for (int i = 0; i < 4; i++)
        shown[i] = (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"') ? (char)p[i] : '?';
    shown[4] = '\0';
    snprintf(out, cap, "\"%s\" (%02x %02x %02x %02x)", shown, p[0], p[1], p[2], p[3]);
}

int shm__fb_root(const void *buf, size_t len, const char *ident, size_t len_max, const char *kind,
                 struct shm__fb_table *t)
{
    const uint8_t *b = buf;
    if (b == NULL)
        return shm__fail(SHM_EBADRECORD, "%s: no buffer", kind);
    if (len < 8)
        return shm__fail(SHM_EBADRECORD,
                         "%s: %zu-byte buffer is shorter than the 8-byte header "
                         "(root offset, file identifier)",
                         kind, len);
    if (len > len_max)
        return shm__fail(SHM_EBADRECORD, "%s: %zu-byte buffer exceeds the %zu-byte limit", kind,
                         len, len_max);
    if (memcmp(b + 4, ident, 4) != 0) {
        char got[40];
        ident_text(b + 4, got, sizeof got);
        return shm__fail(SHM_EBADRECORD, "%s: file identifier %s, expected \"%s\"", kind, got,
                         ident);
    }

    uint32_t root = shm__ld32(b);
    if (root < 8)
        return shm__fail(SHM_EBADRECORD,
                         "%s: root offset %" PRIu32 " points into the 8-byte header", kind, root);
    if ((uint64_t)root + 4 > len)
        return shm__fail(SHM_EBADRECORD,
                         "%s: root offset %" PRIu32 " is outside the %zu-byte buffer", kind, root,
                         len);
    if (root % 4 != 0)
        return shm__fail(SHM_EBADRECORD, "%s: root table at %" PRIu32 " is not 4-byte aligned",
                         kind, root);

    int32_t soffset = (int32_t)shm__ld32(b + root);
    int64_t vt = (int64_t)root - soffset;
    if (vt < 0 || vt + 4 > (int64_t)len)
        return shm__fail(SHM_EBADRECORD,
                         "%s: vtable at %" PRId64 " (table at %" PRIu32 ", soffset %" PRId32
                         ") is outside the %zu-byte buffer",
                         kind, vt, root, soffset, len);
    if (vt % 2 != 0)
        return shm__fail(SHM_EBADRECORD, "%s: vtable at %" PRId64 " is not 2-byte aligned", kind,
                         vt);

    uint32_t vt_len = shm__ld16(b + vt);
    uint32_t size = shm__ld16(b + vt + 2);
    if (vt_len < 4)
        return shm__fail(SHM_EBADRECORD,
                         "%s: vtable length %" PRIu32 " is too short (at least 4: its own header)",
                         kind, vt_len);
    if (vt_len % 2 != 0)
        return shm__fail(SHM_EBADRECORD, "%s: vtable length %" PRIu32 " is odd", kind, vt_len);
    if (vt_len > SHM__VTABLE_LEN_MAX)
        return shm__fail(SHM_EBADRECORD,
                         "%s: vtable length %" PRIu32 " is too big (at most %d: %d fields)", kind,
                         vt_len, SHM__VTABLE_LEN_MAX, SHM__VTABLE_FIELDS_MAX);
    if (vt + vt_len > (int64_t)len)
        return shm__fail(SHM_EBADRECORD,
                         "%s: vtable at %" PRId64 " of %" PRIu32
                         " bytes runs past the end of the %zu-byte buffer",
                         kind, vt, vt_len, len);
    if (size < 4)
        return shm__fail(SHM_EBADRECORD,
                         "%s: table size %" PRIu32 " is smaller than its 4-byte soffset", kind,
                         size);
    if ((uint64_t)root + size > len)
        return shm__fail(SHM_EBADRECORD,
                         "%s: table at %" PRIu32 " of %" PRIu32
                         " bytes runs past the end of the %zu-byte buffer",
                         kind, root, size, len);

    t->buf = b;
    t->len = len;
    t->kind = kind;
    t->pos = root;
    t->size = size;
    t->vt = (uint32_t)vt;
    t->vt_len = vt_len;
    return 0;
}

int shm__fb_field_fail(const struct shm__fb_table *t, unsigned size, const char *name, uint32_t fo)
{
    if (fo < 4)
        return shm__fail(SHM_EBADRECORD,
                         "%s.%s: field offset %" PRIu32 " overlaps the table's soffset", t->kind,
                         name, fo);
    if (fo + size > t->size)
        return shm__fail(SHM_EBADRECORD,
                         "%s.%s: field at table offset %" PRIu32 " (%u bytes) lies outside the "
                         "%" PRIu32 "-byte table",
                         t->kind, name, fo, size, t->size);
    return shm__fail(SHM_EBADRECORD, "%s.%s: field at %" PRIu32 " is not %u-byte aligned", t->kind,
                     name, t->pos + fo, size);
}

int shm__fb_string(const struct shm__fb_table *t, unsigned id, const char *name, uint32_t max_len,
                   const char **out, uint32_t *len_out)
{
    uint32_t at;
    int rc = shm__fb_field(t, id, 4, name, &at);
    if (rc < 0)
        return rc;
    *out = "";
    *len_out = 0;
    if (at == 0)
        return 0;

    uint32_t uoffset = shm__ld32(t->buf + at);
    uint64_t s = (uint64_t)at + uoffset;
    if (uoffset == 0)
        return shm__fail(SHM_EBADRECORD, "%s.%s: string offset is 0", t->kind, name);
    if (s + 4 > t->len)
        return shm__fail(SHM_EBADRECORD,
                         "%s.%s: string at %" PRIu64 " (offset %" PRIu32 " from %" PRIu32
                         ") is outside the %zu-byte buffer",
                         t->kind, name, s, uoffset, at, t->len);
    if (s % 4 != 0)
        return shm__fail(SHM_EBADRECORD, "%s.%s: string at %" PRIu64 " is not 4-byte aligned",
                         t->kind, name, s);
    uint32_t n = shm__ld32(t->buf + s);
    if (n > max_len)
        return shm__fail(SHM_EBADRECORD,
                         "%s.%s: string of %" PRIu32 " bytes is longer than %" PRIu32, t->kind,
                         name, n, max_len);
    if (s + 4 + n + 1 > t->len)
        return shm__fail(SHM_EBADRECORD,
                         "%s.%s: string of %" PRIu32 " bytes at %" PRIu64
                         " runs past the end of the %zu-byte buffer",
                         t->kind, name, n, s, t->len);
    const uint8_t *bytes = t->buf + s + 4;
    if (bytes[n] != 0)
        return shm__fail(SHM_EBADRECORD, "%s.%s: string at %" PRIu64 " is not NUL-terminated",
                         t->kind, name, s);
    const uint8_t *nul = memchr(bytes, 0, n);
    if (nul != NULL)
        return shm__fail(SHM_EBADRECORD, "%s.%s: string contains a NUL byte at index %td", t->kind,
                         name, nul - bytes);
    if (!shm__utf8_valid(bytes, n))
        return shm__fail(SHM_EBADRECORD, "%s.%s: string is not valid UTF-8", t->kind, name);
    *out = (const char *)bytes;
    *len_out = n;
    return 0;
}

int shm__utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0; /* continuation byte, overlong lead 0xc0/0xc1, or > 0xf4 */
        }
        if (n - i - 1 < need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            uint8_t cc = s[i + k];
            if ((cc & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (cc & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

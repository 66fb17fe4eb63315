/*
 * record_internal.h — the FlatBuffers binary format, as far as shmbus's
 * schemas (schemas/shmbus.fbs, schemas/catalog.fbs) need it. Not installed.
 *
 * A FlatBuffers buffer starts with a uoffset (u32) to the root table and,
 * for our schemas, a 4-byte file identifier. A table starts with an soffset
 * (i32): its vtable lives at table - soffset. A vtable is a run of u16:
 * [vtable bytes][table inline bytes][offset of field 0][offset of field 1]...;
 * an offset of 0, or a field past the end of the vtable, means "absent, use
 * the default". A string is a uoffset (relative to where it is stored) to a
 * u32 length, the bytes, and a NUL. Everything is little-endian; a scalar is
 * aligned to its size relative to the start of the buffer.
 *
 * record_verify.c checks all of that against the buffer's bounds (see
 * shm__fb_root, shm__fb_field, shm__fb_string); record_value.c and
 * record_meta.c build and read the two record kinds on top of it. None of
 * this touches the ring or the segment.
 */
#ifndef SHMBUS_RECORD_INTERNAL_H
#define SHMBUS_RECORD_INTERNAL_H

#include <shmbus/shm.h>

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ------------------------------------------------------------ limits */

/* File identifiers (bytes 4..7 of every buffer). */
#define SHM__TAG_VALUE_IDENT "SHMV"
#define SHM__TAG_META_IDENT "SHMC"

/* Largest buffer each decoder accepts: a TagValue must fit the largest ring
 * slot payload, a TagMeta a catalog entry. */
#define SHM__TAG_VALUE_LEN_MAX (SHM_SLOT_MAX - SHM_SLOT_HEADER)
#define SHM__TAG_META_LEN_MAX SHM_CATALOG_ENTRY_MAX

/* A vtable may describe at most this many fields: room for the schemas to
 * grow to 64 fields per table, while a corrupt vtable size is refused. */
#define SHM__VTABLE_FIELDS_MAX 64
#define SHM__VTABLE_LEN_MAX (4 + 2 * SHM__VTABLE_FIELDS_MAX)

/* TagMeta strings: bytes, without the NUL. */
#define SHM__META_STRING_MAX 255

/* Size in bytes of the TagValue buffer libshm builds (fixed layout). */
#define SHM__TAG_VALUE_LEN 84
_Static_assert(SHM__TAG_VALUE_LEN <= SHM_TAG_VALUE_MAX, "TagValue must fit SHM_TAG_VALUE_MAX");
_Static_assert(SHM__TAG_VALUE_LEN + SHM_SLOT_HEADER <= 128, "TagValue must fit a 128-byte slot");

/* -------------------------------------------- little-endian access */

#if !defined(__BYTE_ORDER__) || !defined(__ORDER_LITTLE_ENDIAN__)
#error "record_internal.h needs __BYTE_ORDER__ (GCC or Clang)"
#endif
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SHM__LE16(x) (x)
#define SHM__LE32(x) (x)
#define SHM__LE64(x) (x)
#else
#define SHM__LE16(x) __builtin_bswap16(x)
#define SHM__LE32(x) __builtin_bswap32(x)
#define SHM__LE64(x) __builtin_bswap64(x)
#endif

/* Loads and stores through memcpy: no alignment is assumed of the memory
 * itself (a record may sit at any address); compilers emit plain moves. */
static inline uint16_t shm__ld16(const uint8_t *p)
{
    uint16_t v;
    memcpy(&v, p, sizeof v);
    return SHM__LE16(v);
}
static inline uint32_t shm__ld32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return SHM__LE32(v);
}
static inline uint64_t shm__ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return SHM__LE64(v);
}
static inline double shm__ldf64(const uint8_t *p)
{
    uint64_t bits = shm__ld64(p);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}
static inline void shm__st16(uint8_t *p, uint16_t v)
{
    v = SHM__LE16(v);
    memcpy(p, &v, sizeof v);
}
static inline void shm__st32(uint8_t *p, uint32_t v)
{
    v = SHM__LE32(v);
    memcpy(p, &v, sizeof v);
}
static inline void shm__st64(uint8_t *p, uint64_t v)
{
    v = SHM__LE64(v);
    memcpy(p, &v, sizeof v);
}
static inline void shm__stf64(uint8_t *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    shm__st64(p, bits);
}

/* ------------------------------------------------------- verifier */

/* A root table whose header, vtable and inline extent were verified. */
struct shm__fb_table {
    const uint8_t *buf;
    size_t len;       /* buffer length, <= the kind's limit */
    const char *kind; /* "TagValue", "TagMeta": prefix of diagnostics */
    uint32_t pos;     /* table start (its soffset) */
    uint32_t size;    /* table inline bytes, soffset included */
    uint32_t vt;      /* vtable start */
    uint32_t vt_len;  /* vtable bytes */
};

/* Verifies the buffer header (length within [8, len_max], file identifier,
 * root uoffset), then the root table: soffset, vtable position, alignment
 * and size, table inline size, all inside the buffer. Fills *t. Returns 0
 * or SHM_EBADRECORD with a diagnostic naming what was wrong. */
int shm__fb_root(const void *buf, size_t len, const char *ident, size_t len_max, const char *kind,
                 struct shm__fb_table *t);

/* Formats the diagnostic for a field that shm__fb_field() found bad (out
 * of line: the failure path). Returns SHM_EBADRECORD. */
int shm__fb_field_fail(const struct shm__fb_table *t, unsigned size, const char *name, uint32_t fo);

/* Locates field `id` of `size` bytes (a scalar, or 4 for a uoffset): sets
 * *at to its buffer position, or 0 when absent (default applies). Checks it
 * lies inside the table's inline bytes, after the soffset, aligned to size.
 * Returns 0 or SHM_EBADRECORD; `name` names the field in the diagnostic.
 * Inline: the generic decoders call it once per field. */
static inline int shm__fb_field(const struct shm__fb_table *t, unsigned id, unsigned size,
                                const char *name, uint32_t *at)
{
    *at = 0;
    uint32_t slot = 4 + 2 * (uint32_t)id;
    if (slot + 2 > t->vt_len)
        return 0; /* written by an older schema, or trimmed: the default applies */
    uint32_t fo = shm__ld16(t->buf + t->vt + slot);
    if (fo == 0)
        return 0;
    uint32_t pos = t->pos + fo; /* fo + size <= t->size keeps it inside the buffer */
    if (fo < 4 || fo + size > t->size || (pos & (size - 1)) != 0) /* size: 1, 2, 4 or 8 */
        return shm__fb_field_fail(t, size, name, fo);
    *at = pos;
    return 0;
}

/* Verifies the string of field `id` (uoffset non-zero and forward, length
 * prefix aligned and inside, at most max_len bytes, NUL inside the buffer,
 * no NUL among the bytes, valid UTF-8) and points *out at its bytes, or at
 * "" when the field is absent. Returns 0 or SHM_EBADRECORD. */
int shm__fb_string(const struct shm__fb_table *t, unsigned id, const char *name, uint32_t max_len,
                   const char **out, uint32_t *len_out);

/* 1 when s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int shm__utf8_valid(const uint8_t *s, size_t n);

/* record_value.c: the decoder without its fast path, for tests and the
 * fuzz target (the fast path must agree with it on every input). */
int shm__tag_value_decode_generic(const void *buf, size_t len, shm_tag_value *out);

#endif /* SHMBUS_RECORD_INTERNAL_H */

/*
 * fuzz_records.c — libFuzzer target for the record verifier and readers.
 *
 * Every input is decoded as a TagValue and as a TagMeta. The properties
 * checked (abort() on violation, so libFuzzer and the corpus replay report
 * it), on top of AddressSanitizer's "no read outside the input":
 *  - a decoder returns 0 or SHM_EBADRECORD, and a rejection has a diagnostic
 *    that names the record kind;
 *  - the TagValue fast path and the generic verifier agree on every input;
 *  - the input decodes the same from an odd address;
 *  - what decodes re-encodes, and the re-encoding decodes to the same values
 *    (doubles bit for bit);
 *  - a decoded TagMeta's strings lie inside the input, NUL-terminated, at
 *    most 255 bytes, valid UTF-8.
 * Built with clang -fsanitize=fuzzer,address,undefined when SHMBUS_FUZZ=ON,
 * and always into the plain corpus replay test (corpus_replay.c).
 */
#include "record_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_records: property violated: %s (last diagnostic: %s)\n", what,
                shm_last_error());
        abort();
    }
}

static int same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

static int same_value(const shm_tag_value *a, const shm_tag_value *b)
{
    return a->sequence == b->sequence && a->timestamp_ns == b->timestamp_ns &&
           a->device_id == b->device_id && a->tag_id == b->tag_id && same_bits(a->value, b->value) &&
           a->raw == b->raw && a->quality == b->quality && a->exception_code == b->exception_code &&
           a->flags == b->flags;
}

static int same_meta(const shm_tag_meta *a, const shm_tag_meta *b)
{
    return a->id == b->id && a->device_id == b->device_id && strcmp(a->name, b->name) == 0 &&
           strcmp(a->device, b->device) == 0 && strcmp(a->unit, b->unit) == 0 &&
           a->data_type == b->data_type && a->priority == b->priority &&
           same_bits(a->scale, b->scale) && same_bits(a->offset, b->offset);
}

static void require_rejection(int rc, const char *kind)
{
    require(rc == SHM_EBADRECORD, "a decoder returns 0 or SHM_EBADRECORD");
    require(strncmp(shm_last_error(), kind, strlen(kind)) == 0,
            "a rejection's diagnostic names the record kind");
}

static void check_value(const uint8_t *data, size_t size, const uint8_t *odd)
{
    shm_tag_value v, g, o;
    int rc = shm_tag_value_decode(data, size, &v);
    int rc_generic = shm__tag_value_decode_generic(data, size, &g);
    int rc_odd = shm_tag_value_decode(odd, size, &o);
    require(rc == rc_generic, "fast path and generic verifier agree");
    require(rc == rc_odd, "alignment of the input does not matter");
    if (rc != 0) {
        require_rejection(rc, "TagValue");
        return;
    }
    require(same_value(&v, &g), "fast path and generic decoder read the same values");
    require(same_value(&v, &o), "an odd address reads the same values");
    uint8_t buf[SHM_TAG_VALUE_MAX];
    int n = shm_tag_value_encode(&v, buf, sizeof buf);
    require(n > 0 && n <= SHM_TAG_VALUE_MAX, "a decoded TagValue re-encodes");
    shm_tag_value again;
    require(shm_tag_value_decode(buf, (size_t)n, &again) == 0, "the re-encoding decodes");
    require(same_value(&v, &again), "the re-encoding holds the same values");
}

static void check_string(const char *s, const uint8_t *data, size_t size)
{
    const uint8_t *p = (const uint8_t *)s;
    if (*s == '\0' && (p < data || p >= data + size))
        return; /* an absent string: the static "" */
    require(p >= data && p < data + size, "a string points into the input");
    size_t room = (size_t)(data + size - p);
    size_t n = strnlen(s, room);
    require(n < room, "a string is NUL-terminated inside the input");
    require(n <= SHM__META_STRING_MAX, "a string is at most 255 bytes");
    require(shm__utf8_valid(p, n), "a string is valid UTF-8");
}

static void check_meta(const uint8_t *data, size_t size, const uint8_t *odd)
{
    shm_tag_meta m, o;
    int rc = shm_tag_meta_decode(data, size, &m);
    int rc_odd = shm_tag_meta_decode(odd, size, &o);
    require(rc == rc_odd, "alignment of the input does not matter");
    if (rc != 0) {
        require_rejection(rc, "TagMeta");
        return;
    }
    check_string(m.name, data, size);
    check_string(m.device, data, size);
    check_string(m.unit, data, size);
    require(same_meta(&m, &o), "an odd address reads the same values");
    uint8_t buf[SHM_CATALOG_ENTRY_MAX];
    int n = shm_tag_meta_encode(&m, buf, sizeof buf);
    require(n > 0 && n <= SHM_CATALOG_ENTRY_MAX, "a decoded TagMeta re-encodes");
    shm_tag_meta again;
    require(shm_tag_meta_decode(buf, (size_t)n, &again) == 0, "the re-encoding decodes");
    require(same_meta(&m, &again), "the re-encoding holds the same values");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The same bytes at an odd address, ending exactly where the copy ends. */
    uint8_t *odd_alloc = malloc(size + 1);
    if (odd_alloc == NULL)
        return 0;
    uint8_t *odd = odd_alloc + 1;
    if (size > 0)
        memcpy(odd, data, size);
    check_value(data, size, odd);
    check_meta(data, size, odd);
    free(odd_alloc);
    return 0;
}

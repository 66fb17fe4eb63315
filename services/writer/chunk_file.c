/*
 * chunk_file.c — the chunk file header and the names of files in a data
 * directory.
 *
 * File header (128 bytes, little-endian): magic "SHMBCHNK", u32 format
 * version, u32 header length, u32 chunk number, u32 flags, i64 created_ns,
 * i64 segment_created_ns, char writer[32], char segment[32], 20 reserved
 * bytes, u32 CRC32C over bytes 0..123. The version is checked before the
 * CRC so that a newer file is reported as newer, not as damaged.
 *
 * Names: <writer>.<10-digit number>.open while a writer appends to it,
 * .chunk once sealed, .tmp while a seal rewrites it, .damaged for a copy
 * kept before recovery cut intact blocks off; <writer>.catalog.json and
 * <writer>.lock beside them. Writer names use [A-Za-z0-9_-] only, so the
 * dots always separate the fields.
 */
#include "chunk_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void chunk_file_header_write(const chunk_file_header *h, uint8_t out[CHUNK_FILE_HEADER_SIZE])
{
    memset(out, 0, CHUNK_FILE_HEADER_SIZE);
    memcpy(out, CHUNK_FILE_MAGIC, 8);
    le32_put(out + 8, h->version ? h->version : CHUNK_FORMAT_VERSION);
    le32_put(out + 12, CHUNK_FILE_HEADER_SIZE);
    le32_put(out + 16, h->chunk_no);
    le32_put(out + 20, 0);
    le64_put(out + 24, (uint64_t)h->created_ns);
    le64_put(out + 32, (uint64_t)h->segment_created_ns);
    memcpy(out + 40, h->writer, strnlen(h->writer, CHUNK_NAME_MAX));
    memcpy(out + 72, h->segment, strnlen(h->segment, SHM_NAME_MAX));
    le32_put(out + 124, chunk_crc32c(0, out, 124));
}

int chunk_file_header_parse(const uint8_t *b, size_t len, chunk_file_header *h)
{
    if (len < 8)
        return chunk__fail(CHUNK_ETRUNCATED, "file of %zu bytes has no header", len);
    if (memcmp(b, CHUNK_FILE_MAGIC, 8) != 0)
        return chunk__fail(CHUNK_EFOREIGN, "no shmbus chunk magic at offset 0");
    if (len < 16)
        return chunk__fail(CHUNK_ETRUNCATED, "file header cut short (%zu bytes)", len);
    /* Every version keeps magic, version and header length where they are
     * and ends its header with a CRC, so a valid CRC makes the version
     * trustworthy: newer means newer, and a bad CRC means damage. */
    uint32_t hlen = le32_get(b + 12);
    if (hlen < CHUNK_FILE_HEADER_SIZE || hlen > CHUNK_FILE_HEADER_MAX)
        return chunk__fail(CHUNK_ECORRUPT, "file header length %u is impossible (offset 12)", hlen);
    if (len < hlen)
        return chunk__fail(CHUNK_ETRUNCATED, "file header cut short (%zu of %u bytes)", len, hlen);
    if (chunk_crc32c(0, b, hlen - 4) != le32_get(b + hlen - 4))
        return chunk__fail(CHUNK_ECORRUPT, "file header is damaged (CRC mismatch at offset %u)",
                           hlen - 4);
    uint32_t version = le32_get(b + 8);
    if (version > CHUNK_FORMAT_VERSION)
        return chunk__fail(CHUNK_EVERSION,
                           "chunk format version %u is newer than this build reads (%u)", version,
                           CHUNK_FORMAT_VERSION);
    if (version == 0 || hlen != CHUNK_FILE_HEADER_SIZE)
        return chunk__fail(CHUNK_ECORRUPT, "file header names version %u with %u bytes", version,
                           hlen);
    memset(h, 0, sizeof *h);
    h->version = version;
    h->chunk_no = le32_get(b + 16);
    h->created_ns = (int64_t)le64_get(b + 24);
    h->segment_created_ns = (int64_t)le64_get(b + 32);
    memcpy(h->writer, b + 40, CHUNK_NAME_MAX);
    memcpy(h->segment, b + 72, SHM_NAME_MAX);
    return 0;
}

int chunk_writer_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CHUNK_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-')
            return 0;
    return 1;
}

static const struct {
    const char *ext;
    int kind;
} numbered[] = {
    {"chunk", CHUNK_NAME_SEALED},
    {"open", CHUNK_NAME_OPEN},
    {"tmp", CHUNK_NAME_TMP},
    {"damaged", CHUNK_NAME_DAMAGED},
};

int chunk_name_parse(const char *fname, char writer[CHUNK_NAME_MAX + 1], uint32_t *no)
{
    const char *dot = strchr(fname, '.');
    if (!dot || dot == fname || (size_t)(dot - fname) > CHUNK_NAME_MAX)
        return CHUNK_NAME_FOREIGN;
    char w[CHUNK_NAME_MAX + 1];
    memcpy(w, fname, (size_t)(dot - fname));
    w[dot - fname] = '\0';
    if (!chunk_writer_name_valid(w))
        return CHUNK_NAME_FOREIGN;
    const char *rest = dot + 1;
    int kind = CHUNK_NAME_FOREIGN;
    if (strcmp(rest, "catalog.json") == 0) {
        kind = CHUNK_NAME_CATALOG;
    } else if (strcmp(rest, "lock") == 0) {
        kind = CHUNK_NAME_LOCK;
    } else {
        size_t digits = strspn(rest, "0123456789");
        if (digits != 10 || rest[10] != '.')
            return CHUNK_NAME_FOREIGN;
        for (size_t i = 0; i < sizeof numbered / sizeof numbered[0]; i++)
            if (strcmp(rest + 11, numbered[i].ext) == 0)
                kind = numbered[i].kind;
        if (kind == CHUNK_NAME_FOREIGN)
            return kind;
        unsigned long long v = strtoull(rest, NULL, 10);
        if (v > UINT32_MAX)
            return CHUNK_NAME_FOREIGN;
        if (no)
            *no = (uint32_t)v;
    }
    if (writer)
        memcpy(writer, w, sizeof w);
    return kind;
}

void chunk_name_format(char *buf, size_t len, const char *writer, uint32_t no, int kind)
{
    switch (kind) {
    case CHUNK_NAME_CATALOG:
        snprintf(buf, len, "%s.catalog.json", writer);
        return;
    case CHUNK_NAME_LOCK:
        snprintf(buf, len, "%s.lock", writer);
        return;
    default:
        for (size_t i = 0; i < sizeof numbered / sizeof numbered[0]; i++)
            if (numbered[i].kind == kind) {
                snprintf(buf, len, "%s.%010u.%s", writer, no, numbered[i].ext);
                return;
            }
        snprintf(buf, len, "%s.%010u", writer, no);
    }
}

int chunk_fsync_dir(int dirfd, const char *what)
{
    if (fsync(dirfd) != 0) {
        int e = errno;
        return chunk__fail(chunk_errno_code(e), "fsync of directory %s: %s", what, strerror(e));
    }
    return 0;
}

/*
 * record_tool.c — test helper bridging libshm's record codec and the
 * official FlatBuffers tools in the tests/records Python scripts.
 *
 *   record_tool encode-value OUT [key=value ...]   build a TagValue into file OUT
 *   record_tool encode-meta OUT [key=value ...]    build a TagMeta into file OUT
 *   record_tool decode FILE...                     verify and read each file,
 *                                                  print one JSON line per file
 *   record_tool decode-value|decode-meta FILE...   the same, as that kind
 *
 * Keys are the schema's field names. Integers accept 0x hex; doubles accept
 * what strtod does (hex floats, "nan", "inf"), or exact bits through
 * value_bits / scale_bits / offset_bits (hex). decode picks the record kind
 * from the file identifier ("SHMC" TagMeta, anything else TagValue) and
 * prints doubles as their bits ("value_bits":"7ff8000000000000") beside a
 * readable number. Exit status: 0 when every file decoded, 1 when one was
 * rejected (its line says why), 2 on a usage or I/O error.
 */
#include <shmbus/shm.h>

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
    fprintf(stderr, "usage: record_tool encode-value|encode-meta OUT [key=value ...]\n"
                    "       record_tool decode|decode-value|decode-meta FILE...\n");
    return 2;
}

static int parse_u64(const char *key, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *s == '\0' || *end != '\0' || *s == '-' || v > max) {
        fprintf(stderr, "record_tool: %s=%s: not an unsigned integer <= %" PRIu64 "\n", key, s,
                max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_i64(const char *key, const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 0);
    if (errno || *s == '\0' || *end != '\0') {
        fprintf(stderr, "record_tool: %s=%s: not a signed 64-bit integer\n", key, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *key, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0') {
        fprintf(stderr, "record_tool: %s=%s: not a number\n", key, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_bits(const char *key, const char *s, double *out)
{
    uint64_t bits;
    if (parse_u64(key, s, UINT64_MAX, &bits) < 0)
        return -1;
    memcpy(out, &bits, sizeof *out);
    return 0;
}

static int write_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(buf, 1, len, f) != len || fclose(f) != 0) {
        fprintf(stderr, "record_tool: %s: %s\n", path, strerror(errno));
        return 2;
    }
    return 0;
}

static int encode_value(const char *out, int argc, char **argv)
{
    shm_tag_value v = {0};
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            return usage();
        *eq = '\0';
        const char *k = argv[i], *s = eq + 1;
        uint64_t u = 0;
        int rc;
        if (strcmp(k, "sequence") == 0)
            rc = parse_u64(k, s, UINT64_MAX, &v.sequence);
        else if (strcmp(k, "timestamp_ns") == 0)
            rc = parse_i64(k, s, &v.timestamp_ns);
        else if (strcmp(k, "device_id") == 0)
            rc = parse_u64(k, s, UINT32_MAX, &u), v.device_id = (uint32_t)u;
        else if (strcmp(k, "tag_id") == 0)
            rc = parse_u64(k, s, UINT32_MAX, &u), v.tag_id = (uint32_t)u;
        else if (strcmp(k, "value") == 0)
            rc = parse_double(k, s, &v.value);
        else if (strcmp(k, "value_bits") == 0)
            rc = parse_bits(k, s, &v.value);
        else if (strcmp(k, "raw") == 0)
            rc = parse_i64(k, s, &v.raw);
        else if (strcmp(k, "quality") == 0)
            rc = parse_u64(k, s, UINT8_MAX, &u), v.quality = (uint8_t)u;
        else if (strcmp(k, "exception_code") == 0)
            rc = parse_u64(k, s, UINT8_MAX, &u), v.exception_code = (uint8_t)u;
        else if (strcmp(k, "flags") == 0)
            rc = parse_u64(k, s, UINT16_MAX, &u), v.flags = (uint16_t)u;
        else {
            fprintf(stderr, "record_tool: unknown TagValue field '%s'\n", k);
            return 2;
        }
        if (rc < 0)
            return 2;
    }
    unsigned char buf[SHM_TAG_VALUE_MAX];
    int n = shm_tag_value_encode(&v, buf, sizeof buf);
    if (n < 0) {
        fprintf(stderr, "record_tool: %s\n", shm_last_error());
        return 2;
    }
    return write_file(out, buf, (size_t)n);
}

static int encode_meta(const char *out, int argc, char **argv)
{
    shm_tag_meta m = {.scale = 1.0};
    for (int i = 0; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (eq == NULL)
            return usage();
        *eq = '\0';
        const char *k = argv[i], *s = eq + 1;
        uint64_t u = 0;
        int rc = 0;
        if (strcmp(k, "id") == 0)
            rc = parse_u64(k, s, UINT32_MAX, &u), m.id = (uint32_t)u;
        else if (strcmp(k, "device_id") == 0)
            rc = parse_u64(k, s, UINT32_MAX, &u), m.device_id = (uint32_t)u;
        else if (strcmp(k, "name") == 0)
            m.name = s;
        else if (strcmp(k, "device") == 0)
            m.device = s;
        else if (strcmp(k, "unit") == 0)
            m.unit = s;
        else if (strcmp(k, "data_type") == 0)
            rc = parse_u64(k, s, UINT8_MAX, &u), m.data_type = (uint8_t)u;
        else if (strcmp(k, "priority") == 0)
            rc = parse_u64(k, s, UINT8_MAX, &u), m.priority = (uint8_t)u;
        else if (strcmp(k, "scale") == 0)
            rc = parse_double(k, s, &m.scale);
        else if (strcmp(k, "scale_bits") == 0)
            rc = parse_bits(k, s, &m.scale);
        else if (strcmp(k, "offset") == 0)
            rc = parse_double(k, s, &m.offset);
        else if (strcmp(k, "offset_bits") == 0)
            rc = parse_bits(k, s, &m.offset);
        else {
            fprintf(stderr, "record_tool: unknown TagMeta field '%s'\n", k);
            return 2;
        }
        if (rc < 0)
            return 2;
    }
    unsigned char buf[SHM_CATALOG_ENTRY_MAX];
    int n = shm_tag_meta_encode(&m, buf, sizeof buf);
    if (n < 0) {
        fprintf(stderr, "record_tool: %s\n", shm_last_error());
        return 2;
    }
    return write_file(out, buf, (size_t)n);
}

/* Writes s as a JSON string: quotes, backslashes and control bytes escaped;
 * other bytes as they are (decoded strings are verified UTF-8). */
static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void json_double(const char *key, double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    printf(",\"%s_bits\":\"%016" PRIx64 "\",\"%s\":", key, bits, key);
    if (isnan(d))
        printf("\"nan\"");
    else if (isinf(d))
        printf(d > 0 ? "\"inf\"" : "\"-inf\"");
    else
        printf("%.17g", d);
}

enum decode_as { AS_IDENT, AS_VALUE, AS_META };

static int decode_file(const char *path, enum decode_as as)
{
    static unsigned char buf[1 << 20];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "record_tool: %s: %s\n", path, strerror(errno));
        return 2;
    }
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* An exact-size heap copy, so AddressSanitizer sees any read past the end. */
    unsigned char *rec = malloc(len ? len : 1);
    if (rec == NULL)
        return 2;
    memcpy(rec, buf, len);

    int is_meta = as == AS_META || (as == AS_IDENT && len >= 8 && memcmp(rec + 4, "SHMC", 4) == 0);
    printf("{\"file\":");
    json_str(path);
    printf(",\"len\":%zu,\"kind\":\"%s\"", len, is_meta ? "TagMeta" : "TagValue");
    int rc;
    if (is_meta) {
        shm_tag_meta m;
        rc = shm_tag_meta_decode(rec, len, &m);
        if (rc == 0) {
            printf(",\"ok\":true,\"id\":%" PRIu32 ",\"device_id\":%" PRIu32 ",\"name\":", m.id,
                   m.device_id);
            json_str(m.name);
            printf(",\"device\":");
            json_str(m.device);
            printf(",\"unit\":");
            json_str(m.unit);
            printf(",\"data_type\":%u,\"data_type_name\":\"%s\",\"priority\":%u", m.data_type,
                   shm_data_type_name(m.data_type), m.priority);
            json_double("scale", m.scale);
            json_double("offset", m.offset);
        }
    } else {
        shm_tag_value v;
        rc = shm_tag_value_decode(rec, len, &v);
        if (rc == 0) {
            printf(",\"ok\":true,\"sequence\":%" PRIu64 ",\"timestamp_ns\":%" PRId64
                   ",\"device_id\":%" PRIu32 ",\"tag_id\":%" PRIu32,
                   v.sequence, v.timestamp_ns, v.device_id, v.tag_id);
            json_double("value", v.value);
            printf(",\"raw\":%" PRId64 ",\"quality\":%u,\"quality_name\":\"%s\","
                   "\"exception_code\":%u,\"flags\":%u",
                   v.raw, v.quality, shm_quality_name(v.quality), v.exception_code, v.flags);
        }
    }
    if (rc < 0) {
        printf(",\"ok\":false,\"error\":");
        json_str(shm_strerror(rc));
        printf(",\"diag\":");
        json_str(shm_last_error());
    }
    printf("}\n");
    free(rec);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return usage();
    if (strcmp(argv[1], "encode-value") == 0)
        return encode_value(argv[2], argc - 3, argv + 3);
    if (strcmp(argv[1], "encode-meta") == 0)
        return encode_meta(argv[2], argc - 3, argv + 3);
    enum decode_as as = AS_IDENT;
    if (strcmp(argv[1], "decode-value") == 0)
        as = AS_VALUE;
    else if (strcmp(argv[1], "decode-meta") == 0)
        as = AS_META;
    if (as != AS_IDENT || strcmp(argv[1], "decode") == 0) {
        int status = 0;
        for (int i = 2; i < argc; i++) {
            int rc = decode_file(argv[i], as);
            if (rc > status)
                status = rc;
        }
        return status;
    }
    return usage();
}

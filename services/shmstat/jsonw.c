/*
 * jsonw.c — the streaming JSON writer (see jsonw.h).
 */
#include "jsonw.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void jw_init(struct jsonw *w, FILE *out, int pretty)
{
    memset(w, 0, sizeof *w);
    w->out = out;
    w->pretty = pretty;
}

static void newline_indent(struct jsonw *w)
{
    if (!w->pretty)
        return;
    fputc('\n', w->out);
    for (int i = 0; i < w->depth; i++)
        fputs("  ", w->out);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values above U+10FFFF are invalid. */
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

static void write_string(FILE *out, const char *value, size_t len)
{
    const unsigned char *s = (const unsigned char *)value;
    fputc('"', out);
    size_t i = 0;
    while (i < len && s[i] != '\0') {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc(c, out);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\u%04x", c);
            i++;
        } else {
            size_t n = utf8_len(s + i, len - i);
            if (n == 0) {
                fputs("\\ufffd", out);
                i++;
            } else {
                fwrite(s + i, 1, n, out);
                i += n;
            }
        }
    }
    fputc('"', out);
}

/* Comma, indentation and key before a value. */
static void item(struct jsonw *w, const char *key)
{
    if (w->depth > 0) {
        if (w->has_items[w->depth])
            fputc(',', w->out);
        w->has_items[w->depth] = 1;
        newline_indent(w);
    }
    if (key) {
        write_string(w->out, key, strlen(key));
        fputs(w->pretty ? ": " : ":", w->out);
    }
}

static void open_container(struct jsonw *w, const char *key, char c)
{
    item(w, key);
    fputc(c, w->out);
    if (w->depth + 1 < JSONW_MAX_DEPTH)
        w->depth++;
    w->has_items[w->depth] = 0;
}

static void close_container(struct jsonw *w, char c)
{
    int had = w->has_items[w->depth];
    if (w->depth > 0)
        w->depth--;
    if (had)
        newline_indent(w);
    fputc(c, w->out);
}

void jw_object_begin(struct jsonw *w, const char *key)
{
    open_container(w, key, '{');
}

void jw_object_end(struct jsonw *w)
{
    close_container(w, '}');
}

void jw_array_begin(struct jsonw *w, const char *key)
{
    open_container(w, key, '[');
}

void jw_array_end(struct jsonw *w)
{
    close_container(w, ']');
}

void jw_str(struct jsonw *w, const char *key, const char *value)
{
    item(w, key);
    write_string(w->out, value ? value : "", value ? strlen(value) : 0);
}

void jw_strn(struct jsonw *w, const char *key, const char *value, size_t len)
{
    item(w, key);
    write_string(w->out, value, len);
}

void jw_u64(struct jsonw *w, const char *key, uint64_t value)
{
    item(w, key);
    fprintf(w->out, "%" PRIu64, value);
}

void jw_i64(struct jsonw *w, const char *key, int64_t value)
{
    item(w, key);
    fprintf(w->out, "%" PRId64, value);
}

void jw_double(struct jsonw *w, const char *key, double value)
{
    item(w, key);
    if (!isfinite(value)) {
        fputs("null", w->out);
        return;
    }
    /* The shorter form when it reads back exactly (12.3, not
     * 12.300000000000001); otherwise 17 digits, which always do. */
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", value);
    if (strtod(buf, NULL) != value)
        snprintf(buf, sizeof buf, "%.17g", value);
    fputs(buf, w->out);
}

void jw_bool(struct jsonw *w, const char *key, int value)
{
    item(w, key);
    fputs(value ? "true" : "false", w->out);
}

void jw_finish(struct jsonw *w)
{
    fputc('\n', w->out);
}

/*
 * promname.c — sanitizing counter names into Prometheus names (see promname.h).
 * Valid metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, label names
 * [a-zA-Z_][a-zA-Z0-9_]* (not starting with "__", which is reserved).
 */
#include "promname.h"

#include <stdio.h>
#include <string.h>

static bool name_char(char c, bool first, bool colon_ok)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
        return true;
    if (c == ':' && colon_ok)
        return true;
    return !first && c >= '0' && c <= '9';
}

/* Appends to a fixed buffer; returns false when it does not fit. */
static bool put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n + 1 > cap)
        return false;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
    return true;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] < 0x80             ? 1
                 : (s[0] & 0xe0) == 0xc0 ? 2
                 : (s[0] & 0xf0) == 0xe0 ? 3
                 : (s[0] & 0xf8) == 0xf0 ? 4
                                         : 0;
    if (len == 0 || len > n || (len == 2 && s[0] < 0xc2) || (len == 4 && s[0] > 0xf4))
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((len == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (len == 3 && s[0] == 0xed && s[1] >= 0xa0) ||
        (len == 4 && s[0] == 0xf0 && s[1] < 0x90) || (len == 4 && s[0] == 0xf4 && s[1] >= 0x90))
        return 0; /* overlong, surrogate, beyond U+10FFFF */
    return len;
}

/* One step of escaping v for a label value: sets *piece and *plen to what to
 * emit for the character at v[i] and returns how many input bytes it covers.
 * Backslash, quote and newline are escaped; invalid UTF-8 becomes '?'. */
static size_t label_piece(const char *v, size_t n, size_t i, const char **piece, size_t *plen)
{
    const unsigned char *u = (const unsigned char *)v + i;
    size_t l = utf8_len(u, n - i);
    *plen = 2;
    if (l == 0) {
        *piece = "?";
        *plen = 1;
        return 1;
    }
    if (*u == '\\')
        *piece = "\\\\";
    else if (*u == '"')
        *piece = "\\\"";
    else if (*u == '\n')
        *piece = "\\n";
    else {
        *piece = (const char *)u;
        *plen = l;
    }
    return l;
}

static bool put_escaped(char *buf, size_t cap, size_t *len, const char *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        const char *piece;
        size_t plen;
        i += label_piece(v, n, i, &piece, &plen);
        if (!put(buf, cap, len, piece, plen))
            return false;
    }
    return true;
}

/* Parses `{a="x",b="y"}` (text points after '{', end at the NUL). Writes the
 * sanitized pairs into labels. Returns 0 valid, 1 repaired, -1 unparsable,
 * -2 too long. */
static int parse_labels(const char *p, char *labels, size_t llen)
{
    size_t len = 0;
    int repaired = 0;
    char seen[16][PROM_NAME_MAX];
    int nseen = 0;
    labels[0] = '\0';
    while (*p == ' ')
        p++;
    if (*p == '}')
        return p[1] == '\0' ? 0 : -1;
    for (;;) {
        char lname[PROM_NAME_MAX];
        size_t ln = 0;
        while (*p && *p != '=' && *p != '}' && *p != ',') {
            if (ln + 2 >= sizeof lname)
                return -2;
            char c = *p++;
            if (!name_char(c, ln == 0, false)) {
                repaired = 1;
                if (ln == 0 && c >= '0' && c <= '9')
                    lname[ln++] = '_';
                else
                    c = '_';
            }
            lname[ln++] = c;
        }
        lname[ln] = '\0';
        if (ln == 0 || *p != '=' || p[1] != '"')
            return -1;
        if (strncmp(lname, "__", 2) == 0) {
            memmove(lname + 1, lname, ln + 1);
            lname[0] = 'l';
            repaired = 1;
        }
        p += 2;
        char value[PROM_LABELS_MAX];
        size_t vn = 0;
        while (*p && *p != '"') {
            char c = *p++;
            if (c == '\\') {
                if (*p == 'n')
                    c = '\n';
                else if (*p == '\\' || *p == '"')
                    c = *p;
                else
                    return -1;
                p++;
            }
            if (vn + 1 >= sizeof value)
                return -2;
            value[vn++] = c;
        }
        if (*p != '"')
            return -1;
        p++;
        int dup = 0;
        for (int i = 0; i < nseen; i++)
            dup |= strcmp(seen[i], lname) == 0;
        if (dup || nseen == 16) {
            repaired = 1; /* a repeated label name would make the sample invalid */
        } else {
            snprintf(seen[nseen++], PROM_NAME_MAX, "%s", lname);
            if ((len && !put(labels, llen, &len, ",", 1)) ||
                !put(labels, llen, &len, lname, strlen(lname)) ||
                !put(labels, llen, &len, "=\"", 2) || !put_escaped(labels, llen, &len, value, vn) ||
                !put(labels, llen, &len, "\"", 1))
                return -2;
        }
        while (*p == ' ')
            p++;
        if (*p == ',') {
            p++;
            while (*p == ' ')
                p++;
            if (*p == '}') /* trailing comma is allowed by the format */
                return p[1] == '\0' ? repaired : -1;
            continue;
        }
        if (*p == '}')
            return p[1] == '\0' ? repaired : -1;
        return -1;
    }
}

int prom_counter_name(const char *in, bool is_counter, char *family, size_t flen, char *labels,
                      size_t llen)
{
    size_t fl = 0;
    int repaired = 0;
    if (!in || flen < 16 || llen < 2)
        return -1;
    family[0] = labels[0] = '\0';
    const char *brace = strchr(in, '{');
    size_t name_len = brace ? (size_t)(brace - in) : strlen(in);
    if (!(name_len >= 7 && strncmp(in, "shmbus_", 7) == 0) && !put(family, flen, &fl, "shmbus_", 7))
        return -1;
    if (name_len == 0) {
        repaired = 1;
        if (!put(family, flen, &fl, "unnamed", 7))
            return -1;
    }
    for (size_t i = 0; i < name_len; i++) {
        char c = in[i];
        if (!name_char(c, false, true)) {
            c = '_';
            repaired = 1;
        }
        if (!put(family, flen, &fl, &c, 1))
            return -1;
    }
    if (is_counter && (fl < 6 || strcmp(family + fl - 6, "_total") != 0)) {
        if (!put(family, flen, &fl, "_total", 6))
            return -1;
    }
    if (!brace)
        return repaired;
    int rc = parse_labels(brace + 1, labels, llen);
    if (rc == -2)
        return -1;
    if (rc == -1) {
        /* Keep the information, in a form that always parses. */
        size_t len = 0;
        labels[0] = '\0';
        if (!put(labels, llen, &len, "raw_labels=\"", 12) ||
            !put_escaped(labels, llen, &len, brace, strlen(brace)) ||
            !put(labels, llen, &len, "\"", 1))
            return -1;
        return 1;
    }
    return repaired | rc;
}

void prom_label_value(strbuf *b, const char *v)
{
    size_t n = strlen(v);
    for (size_t i = 0; i < n;) {
        const char *piece;
        size_t plen;
        i += label_piece(v, n, i, &piece, &plen);
        strbuf_append(b, piece, plen);
    }
}

void prom_help_text(strbuf *b, const char *v)
{
    size_t n = strlen(v);
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len((const unsigned char *)v + i, n - i);
        if (l == 0)
            strbuf_append(b, "?", 1);
        else if (v[i] == '\\')
            strbuf_append(b, "\\\\", 2);
        else if (v[i] == '\n')
            strbuf_append(b, "\\n", 2);
        else
            strbuf_append(b, v + i, l);
        i += l ? l : 1;
    }
}

double prom_base_unit(char *family, size_t flen)
{
    static const struct {
        const char *token;
        double factor;
    } units[] = {{"_nanoseconds", 1e-9}, {"_ns", 1e-9},  {"_microseconds", 1e-6},
                 {"_us", 1e-6},          {"_milliseconds", 1e-3}, {"_ms", 1e-3}};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t tl = strlen(units[u].token);
        for (char *p = strstr(family, units[u].token); p; p = strstr(p + 1, units[u].token)) {
            if (p[tl] != '_' && p[tl] != '\0')
                continue;
            size_t head = (size_t)(p - family), tail = strlen(p + tl);
            if (head + strlen("_seconds") + tail + 1 > flen)
                return 1; /* no room: keep the name (still valid) */
            memmove(p + strlen("_seconds"), p + tl, tail + 1);
            memcpy(p, "_seconds", strlen("_seconds"));
            return units[u].factor;
        }
    }
    return 1;
}

/*
 * strbuf.h — a growable text buffer for responses (/metrics can be large).
 * Allocation failure is sticky: after one, every append is ignored and
 * strbuf_failed() says so, so callers check once at the end.
 */
#ifndef SHMBUS_CTL_STRBUF_H
#define SHMBUS_CTL_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
    char *data; /* NUL-terminated when len > 0 */
    size_t len, cap;
    bool failed;
} strbuf;

void strbuf_append(strbuf *b, const char *s, size_t n);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool strbuf_failed(const strbuf *b);
void strbuf_free(strbuf *b);

#endif

/*
 * promname.h — Prometheus text-format names and escaping.
 *
 * Named counters in the segment are written by every service as
 * Prometheus-style names with optional labels, e.g.
 * `poller_requests_total{device="plc1"}`, but nothing in libshm forces them to
 * be valid. prom_counter_name() turns any such name into a valid family name
 * (prefixed `shmbus_`, `_total` appended to counters that lack it) and a
 * valid, re-escaped label list, so /metrics always parses.
 */
#ifndef SHMBUS_CTL_PROMNAME_H
#define SHMBUS_CTL_PROMNAME_H

#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

#define PROM_NAME_MAX 160
#define PROM_LABELS_MAX 512

/* Splits and sanitizes `in`. family receives the metric family name, labels
 * the label pairs without braces (`device="plc1"`, "" when none). Returns 0
 * when the name was valid as it was, 1 when something had to be repaired
 * (invalid characters replaced, unparsable labels kept as one `raw_labels`
 * label), -1 when it does not fit the buffers. */
int prom_counter_name(const char *in, bool is_counter, char *family, size_t flen, char *labels,
                      size_t llen);

/* Prometheus names carry base units: a time unit token in family (`_ns`,
 * `_us`, `_ms` or their long forms, followed by `_` or the end) is rewritten
 * as `_seconds` in place. Returns the factor that turns the counter's integer
 * value into seconds, or 1 when the name is left as it was. */
double prom_base_unit(char *family, size_t flen);

/* Appends v escaped for a label value (backslash, double quote, newline;
 * invalid UTF-8 becomes ?). */
void prom_label_value(strbuf *b, const char *v);

/* Appends v escaped for a # HELP line (backslash, newline; invalid UTF-8 as ?). */
void prom_help_text(strbuf *b, const char *v);

#endif

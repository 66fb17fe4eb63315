/*
 * mqtt_internal.h — private to the MQTT target: topic and payload
 * formatting (mqtt_payload.c), shared with the tests and the benchmark so
 * they produce the very bytes the exporter publishes. Not a public API.
 */
#ifndef SHMBUS_EXPORT_MQTT_INTERNAL_H
#define SHMBUS_EXPORT_MQTT_INTERNAL_H

#include "export.h"

#define MQTT_TOPIC_MAX 512
#define MQTT_PAYLOAD_MAX 400

/* "<prefix>/<device>/<tag>"; returns its length or -1 when cap is short. */
int mqtt_format_topic(const char *prefix, const export_row *r, const export_tag *tag, char *buf,
                      size_t cap);
/* The JSON payload of schemas/mqtt.md; returns its length or -1. */
int mqtt_format_payload(const export_row *r, const export_tag *tag, char *buf, size_t cap);
/* RFC 3339 UTC with microseconds: "2026-11-23T16:32:18.123456Z". */
int mqtt_format_time(int64_t unix_ns, char *buf, size_t cap);

#endif

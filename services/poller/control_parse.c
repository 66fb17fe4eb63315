/*
 * control_parse.c — validates controller messages (see control.h) with
 * jansson. Every field is type-checked; the reason for a refusal names the
 * field, so the controller's log and ours tell the same story.
 */
#include "control.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static const char *const level_names[] = {"none", "low", "moderate", "high", "critical"};

const char *pressure_level_name(int level)
{
    return level >= 0 && level <= PRESSURE_CRITICAL ? level_names[level] : "?";
}

static int get_name(json_t *root, const char *key, char *out, size_t cap, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!json_is_string(v)) {
        snprintf(err, errlen, "\"%s\" must be a string", key);
        return -1;
    }
    const char *s = json_string_value(v);
    if (!*s || strlen(s) >= cap) {
        snprintf(err, errlen, "\"%s\" must have 1..%zu characters", key, cap - 1);
        return -1;
    }
    memcpy(out, s, strlen(s) + 1);
    return 0;
}

static int get_uint(json_t *root, const char *key, uint32_t min, uint32_t max, uint32_t *out,
                    int required, char *err, size_t errlen)
{
    json_t *v = json_object_get(root, key);
    if (!v && !required)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
        json_integer_value(v) > (json_int_t)max) {
        snprintf(err, errlen, "\"%s\" must be an integer in %u..%u", key, min, max);
        return -1;
    }
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

int control_parse(const char *text, size_t len, control_msg *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->min_priority = CONTROL_DEFAULT_MIN_PRIORITY;
    out->slow_factor = CONTROL_DEFAULT_SLOW_FACTOR;
    if (len > CONTROL_MSG_MAX) {
        snprintf(err, errlen, "message of %zu bytes; at most %d", len, CONTROL_MSG_MAX);
        return -1;
    }
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, errlen, "not JSON: %s (column %d)", jerr.text, jerr.column);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "not a JSON object");
        goto out;
    }
    json_t *cmd = json_object_get(root, "cmd");
    if (!json_is_string(cmd)) {
        snprintf(err, errlen, "\"cmd\" must be a string");
        goto out;
    }
    const char *c = json_string_value(cmd);
    if (strcmp(c, "pause") == 0) {
        out->cmd = CTL_PAUSE;
    } else if (strcmp(c, "resume") == 0) {
        out->cmd = CTL_RESUME;
    } else if (strcmp(c, "reload") == 0) {
        out->cmd = CTL_RELOAD;
    } else if (strcmp(c, "set_interval") == 0) {
        out->cmd = CTL_SET_INTERVAL;
        if (get_name(root, "device", out->device, sizeof out->device, err, errlen) < 0 ||
            get_name(root, "group", out->group, sizeof out->group, err, errlen) < 0 ||
            get_uint(root, "interval_ms", 1, 86400u * 1000, &out->interval_ms, 1, err, errlen) < 0)
            goto out;
    } else if (strcmp(c, "pressure") == 0) {
        out->cmd = CTL_PRESSURE;
        json_t *level = json_object_get(root, "level");
        out->level = -1;
        for (int i = 0; json_is_string(level) && i <= PRESSURE_CRITICAL; i++)
            if (strcmp(json_string_value(level), level_names[i]) == 0)
                out->level = i;
        if (out->level < 0) {
            snprintf(err, errlen,
                     "\"level\" must be one of none, low, moderate, high, critical");
            goto out;
        }
        if (get_uint(root, "min_priority", 0, 255, &out->min_priority, 0, err, errlen) < 0 ||
            get_uint(root, "slow_factor", 1, 1000, &out->slow_factor, 0, err, errlen) < 0)
            goto out;
    } else {
        out->cmd = CTL_IGNORED;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

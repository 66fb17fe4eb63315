/*
 * control_cmds.c — parsing, validating and answering control requests.
 * Strict on input: the request must be a JSON object of at most
 * CTL_REQUEST_MAX bytes with a string "cmd" among the known commands, and no
 * fields other than those the command takes, each of the right type.
 * Everything else gets {"error":"<what was wrong>"}.
 */
#include "control.h"

#include "events.h"
#include "log.h"
#include "views.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INTERVAL_MAX_MS 86400000 /* one day */

typedef json_t *(*cmd_fn)(controller *c, json_t *req, char *err, size_t errlen);

struct command {
    const char *name;
    const char *const fields[4]; /* besides "cmd" */
    cmd_fn fn;
};

static json_t *ok_object(void)
{
    return json_pack("{s:b}", "ok", 1);
}

static json_t *cmd_status(controller *c, json_t *req, char *err, size_t errlen)
{
    return view_status(c);
}

static json_t *cmd_members(controller *c, json_t *req, char *err, size_t errlen)
{
    return view_members(c);
}

static json_t *cmd_pressure(controller *c, json_t *req, char *err, size_t errlen)
{
    return view_pressure(c);
}

static json_t *pause_state(controller *c)
{
    pthread_mutex_lock(&c->lock);
    json_t *o = json_pack("{s:b, s:b, s:b, s:b}", "ok", 1, "paused",
                          c->paused_by_operator || c->paused_by_pressure, "paused_by_operator",
                          c->paused_by_operator, "paused_by_pressure", c->paused_by_pressure);
    pthread_mutex_unlock(&c->lock);
    return o;
}

static json_t *cmd_pause(controller *c, json_t *req, char *err, size_t errlen)
{
    pthread_mutex_lock(&c->lock);
    c->paused_by_operator = true;
    ctl_apply_pause_locked(c);
    pthread_mutex_unlock(&c->lock);
    return pause_state(c);
}

static json_t *cmd_resume(controller *c, json_t *req, char *err, size_t errlen)
{
    pthread_mutex_lock(&c->lock);
    c->paused_by_operator = false;
    ctl_apply_pause_locked(c);
    pthread_mutex_unlock(&c->lock);
    return pause_state(c);
}

static json_t *cmd_set_interval(controller *c, json_t *req, char *err, size_t errlen)
{
    json_t *dev = json_object_get(req, "device"), *grp = json_object_get(req, "group"),
           *ms = json_object_get(req, "interval_ms");
    if (!json_is_string(dev) || !json_is_string(grp)) {
        snprintf(err, errlen, "set_interval: \"device\" and \"group\" must be strings");
        return NULL;
    }
    if (!json_is_integer(ms) || json_integer_value(ms) < 1 ||
        json_integer_value(ms) > INTERVAL_MAX_MS) {
        snprintf(err, errlen, "set_interval: \"interval_ms\" must be an integer 1..%d",
                 INTERVAL_MAX_MS);
        return NULL;
    }
    const char *d = json_string_value(dev), *g = json_string_value(grp);
    pthread_mutex_lock(&c->lock);
    const config_device *cd = config_find_device(c->cfg, d);
    bool group_ok = false;
    for (size_t i = 0; cd && i < cd->n_poll_groups; i++)
        group_ok |= strcmp(cd->poll_groups[i].name, g) == 0;
    pthread_mutex_unlock(&c->lock);
    if (!cd) {
        snprintf(err, errlen, "set_interval: unknown device '%.64s'", d);
        return NULL;
    }
    if (!group_ok) {
        snprintf(err, errlen, "set_interval: device '%.64s' has no poll group '%.64s'", d, g);
        return NULL;
    }
    uint32_t v = (uint32_t)json_integer_value(ms);
    log_info("control: set_interval %s/%s to %u ms", d, g, v);
    if (events_set_interval(c->ev, d, g, v) != 0) {
        snprintf(err, errlen, "set_interval: publishing failed");
        return NULL;
    }
    return ok_object();
}

static json_t *cmd_reload(controller *c, json_t *req, char *err, size_t errlen)
{
    if (ctl_reload(c, "control request", err, errlen) != 0)
        return NULL;
    return ok_object();
}

static json_t *cmd_reset_counters(controller *c, json_t *req, char *err, size_t errlen)
{
    json_t *prefix = json_object_get(req, "prefix");
    if (prefix && !json_is_string(prefix)) {
        snprintf(err, errlen, "reset_counters: \"prefix\" must be a string");
        return NULL;
    }
    int n = ctl_counters_reset(c, prefix ? json_string_value(prefix) : "");
    return json_pack("{s:b, s:i}", "ok", 1, "reset", n);
}

static const struct command commands[] = {
    {"status", {NULL}, cmd_status},
    {"members", {NULL}, cmd_members},
    {"pressure", {NULL}, cmd_pressure},
    {"pause", {NULL}, cmd_pause},
    {"resume", {NULL}, cmd_resume},
    {"set_interval", {"device", "group", "interval_ms", NULL}, cmd_set_interval},
    {"reload", {NULL}, cmd_reload},
    {"reset_counters", {"prefix", NULL}, cmd_reset_counters},
};

static char *error_text(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *error_text(const char *fmt, ...)
{
    char msg[4608];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Messages quote what the client sent, cut to a length: keep them ASCII
     * so a cut multi-byte character can never make the response invalid. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p >= 0x80 || ((unsigned char)*p < 0x20 && *p != '\n'))
            *p = '?';
    json_t *o = json_pack("{s:s}", "error", msg);
    char *text = o ? json_dumps(o, CTL_JSON_FLAGS) : NULL;
    json_decref(o);
    return text;
}

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

/* Returns the first field of req the command does not take, or NULL. */
static const char *unknown_field(const struct command *cmd, json_t *req)
{
    const char *key;
    json_t *value;
    json_object_foreach(req, key, value)
    {
        bool known = strcmp(key, "cmd") == 0;
        for (int i = 0; !known && cmd->fields[i]; i++)
            known = strcmp(key, cmd->fields[i]) == 0;
        if (!known)
            return key;
    }
    return NULL;
}

static char *dispatch(controller *c, const void *data, size_t len)
{
    if (len > CTL_REQUEST_MAX)
        return error_text("request of %zu bytes exceeds the limit of %d bytes", len,
                          CTL_REQUEST_MAX);
    if (len == 0)
        return error_text("empty request; send a JSON object like {\"cmd\":\"status\"}");
    json_error_t jerr;
    json_t *req = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!req)
        return error_text("malformed JSON at line %d, column %d: %s", jerr.line, jerr.column,
                          jerr.text);
    char *out = NULL;
    json_t *cmd = json_object_get(req, "cmd");
    if (!json_is_object(req)) {
        out = error_text("a request is a JSON object like {\"cmd\":\"status\"}");
    } else if (!cmd) {
        out = error_text("missing \"cmd\"");
    } else if (!json_is_string(cmd)) {
        out = error_text("\"cmd\" must be a string");
    } else {
        const struct command *k = find_command(json_string_value(cmd));
        const char *extra = k ? unknown_field(k, req) : NULL;
        if (!k) {
            out = error_text("unknown command '%.64s' (expected status, members, pressure, "
                             "pause, resume, set_interval, reload, reset_counters)",
                             json_string_value(cmd));
        } else if (extra) {
            out = error_text("%s: unknown field '%.64s'", k->name, extra);
        } else {
            char err[4096] = "";
            json_t *res = k->fn(c, req, err, sizeof err);
            if (res) {
                out = json_dumps(res, CTL_JSON_FLAGS);
                json_decref(res);
            } else {
                out = error_text("%s", err[0] ? err : "out of memory");
            }
        }
    }
    json_decref(req);
    return out;
}

char *control_handle(controller *c, const void *request, size_t len)
{
    char *out = dispatch(c, request, len);
    bool failed = !out || strncmp(out, "{\"error\"", 8) == 0;
    shm_counter_add(failed ? c->counters.requests_error : c->counters.requests_ok, 1);
    if (failed && out)
        log_info("control: answered %s", out);
    return out;
}

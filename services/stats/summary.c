/*
 * summary.c — the periodic summary on the PUB socket: per tag the figures a
 * dashboard or the controller needs (count, mean, min, max, last, stddev,
 * suggested poll interval, change rate), split into messages of at most
 * SUMMARY_TAGS_PER_MESSAGE tags so every message stays small. Each message:
 *   {"type":"summary","segment":..,"shard":"K/N","t_ns":..,"part":i,
 *    "parts":n,"tags_total":..,"records":..,"tags":[...]}
 */
#include "service.h"

#include "log.h"
#include "trend.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SUMMARY_TAGS_PER_MESSAGE 200

static json_t *jnum(double v)
{
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *summary_entry(tag_state *t, const store_params *p)
{
    rolling_stats st;
    rolling_get_stats(&t->roll, &st);
    int64_t span = st.count >= 2 ? st.last_t_ns - st.first_t_ns : 0;
    return json_pack("{sI ss sI so so so so so so so}", "id", (json_int_t)t->id, "name", t->name,
                     "count", (json_int_t)st.count, "mean", jnum(st.mean), "min", jnum(st.min),
                     "max", jnum(st.max), "last", jnum(st.last), "stddev", jnum(st.stddev),
                     "suggested_interval_ms",
                     jnum(trend_suggest_interval_ms(&p->limits, st.count, st.changes, span)),
                     "change_rate_per_s", jnum(trend_change_rate(st.changes, span)));
}

int stats_service_publish_summary(stats_service *sv)
{
    tagstore *s = &sv->store;
    uint32_t parts =
        s->n_tags ? (s->n_tags + SUMMARY_TAGS_PER_MESSAGE - 1) / SUMMARY_TAGS_PER_MESSAGE : 1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_int_t now = (json_int_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    char shard[24];
    snprintf(shard, sizeof shard, "%u/%u", sv->opt.shard_k, sv->opt.shard_n);
    int sent = 0;
    for (uint32_t part = 0; part < parts; part++) {
        json_t *tags = json_array();
        uint32_t end = (part + 1) * SUMMARY_TAGS_PER_MESSAGE;
        for (uint32_t i = part * SUMMARY_TAGS_PER_MESSAGE; i < end && i < s->n_tags; i++)
            json_array_append_new(tags, summary_entry(tagstore_at(s, i), &s->p));
        json_t *msg =
            json_pack("{ss ss ss sI sI sI sI sI sb so}", "type", "summary", "segment",
                      sv->opt.segment, "shard", shard, "t_ns", now, "part", (json_int_t)part,
                      "parts", (json_int_t)parts, "tags_total", (json_int_t)s->n_tags, "records",
                      (json_int_t)sv->in.records, "attached", sv->attached, "tags", tags);
        char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
        json_decref(msg);
        if (!text) {
            log_warn("summary: out of memory");
            break;
        }
        int rv = endpoints_publish(&sv->ep, text, strlen(text));
        free(text);
        if (rv != 0) {
            log_warn("summary: publish: %s", nng_strerror(rv));
            break;
        }
        sent++;
    }
    sv->summaries += (uint64_t)sent;
    return sent;
}

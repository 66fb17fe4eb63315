/*
 * memplan.c — the stats service's memory plan where operators see it: one
 * log line per plan (what was asked, what was granted, why), the status
 * reply's "memory" object, and the tag store's hooks (the catalog's tag
 * count, plan changes). The plan itself is tagstore.c's and budget.c's.
 */
#include "service.h"

#include "log.h"

#include <stdint.h>

static const char *plan_text(const stats_service *sv, const tagstore *s, char *buf, size_t len)
{
    return budget_describe(&s->request, &s->grant, sv->opt.memory_limit_name, buf, len);
}

json_t *stats_memplan_status(const stats_service *sv)
{
    const tagstore *s = &sv->store;
    const budget_grant *g = &s->grant;
    char text[512];
    return json_pack(
        "{sI ss sI sI sI sI sI sI sI sI sI sI sI sI sb sb sI sI ss}", "limit_bytes",
        (json_int_t)s->request.limit_bytes, "limit_setting", sv->opt.memory_limit_name,
        "state_bytes", (json_int_t)tagstore_state_bytes(s), "planned_bytes",
        (json_int_t)g->total_bytes, "tags", (json_int_t)s->n_tags, "planned_tags",
        (json_int_t)g->tags, "window_asked", (json_int_t)s->request.window, "window_granted",
        (json_int_t)g->window, "history_asked", (json_int_t)s->request.history, "history_granted",
        (json_int_t)g->history, "tag_bytes", (json_int_t)g->tag_bytes, "asked_tag_bytes",
        (json_int_t)g->asked_tag_bytes, "min_tag_bytes", (json_int_t)g->min_tag_bytes,
        "tags_at_minimum",
        g->tags_at_minimum == UINT32_MAX ? (json_int_t)-1 : (json_int_t)g->tags_at_minimum,
        "reduced", g->reduced, "over_limit", g->over, "replans", (json_int_t)s->replans,
        "resize_failures", (json_int_t)s->resize_failures, "plan",
        plan_text(sv, s, text, sizeof text));
}

void stats_memplan_log(const stats_service *sv, const tagstore *s, const budget_grant *before,
                       const char *why)
{
    const budget_grant *g = &s->grant;
    char text[512];
    plan_text(sv, s, text, sizeof text);
    if (g->over)
        log_error("stats memory over its limit (%s): %s; raise %s or add stats shards", why, text,
                  sv->opt.memory_limit_name);
    else if (g->reduced && (!before || g->window != before->window ||
                            g->history != before->history || before->over))
        log_warn("stats memory (%s): %s", why, text);
    else if (!before || g->window != before->window || g->history != before->history ||
             g->reduced != before->reduced)
        log_info("stats memory (%s): %s", why, text);
    else
        log_debug("stats memory (%s): %u tags planned, sizes unchanged", why, g->tags);
}

static void on_plan(void *ctx, const tagstore *s, const budget_grant *before, const char *why)
{
    stats_memplan_log(ctx, s, before, why);
}

static uint32_t count_known_tags(void *ctx)
{
    stats_service *sv = ctx;
    return ingest_count_catalog(&sv->in, &sv->store);
}

tagstore_hooks stats_memplan_hooks(stats_service *sv)
{
    return (tagstore_hooks){.ctx = sv, .count_known_tags = count_known_tags, .on_plan = on_plan};
}

/*
 * t_stats_budget.c — the memory plan of the stats service: budget_derive()
 * (limit vs tags vs asked window and history: as asked when it fits, the
 * even split, the minimal sizes, -ENOSPC, bad requests) over hand-picked
 * and swept cases; and the tag store following it: tags beyond the plan
 * shrink every tag while the statistics stay those of the newest values, a
 * reload grows them back, more tags than the limit holds are still kept
 * (over the limit, said so), and the store's counted bytes never pass the
 * limit while the plan holds.
 */
#include "budget.h"
#include "rolling.h"
#include "statref.h"
#include "tagstore.h"
#include "timebuf.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h> /* after the three headers it needs */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MiB (1ull << 20)
#define SEC 1000000000LL

static budget_request request(uint64_t limit, uint32_t tags, uint32_t window, uint32_t history)
{
    return (budget_request){.limit_bytes = limit,
                            .fixed_bytes = 48 * 1024,
                            .tag_fixed_bytes = 512,
                            .tags = tags,
                            .window = window,
                            .history = history};
}

static uint64_t wbytes(uint32_t w)
{
    return budget_chunk(rolling_state_bytes(w));
}

static uint64_t hbytes(uint32_t h)
{
    return budget_chunk(timebuf_state_bytes(h));
}

static void test_chunk_model(void **state)
{
    (void)state;
    assert_int_equal(budget_chunk(0), 0);
    assert_int_equal(budget_chunk(1), 32);
    assert_int_equal(budget_chunk(24), 32);
    assert_int_equal(budget_chunk(25), 48);
    assert_int_equal(budget_chunk(1024), 1040);
    /* The compact window: 16 bytes a value, 2 doubles per 8 values, a bit each. */
    assert_int_equal(rolling_state_bytes(1), 16 + 16 + 8);
    assert_int_equal(rolling_state_bytes(100), 1600 + 2 * 13 * 8 + 2 * 8);
    assert_int_equal(rolling_state_bytes(1000), 16000 + 2 * 125 * 8 + 16 * 8);
    assert_int_equal(timebuf_state_bytes(64), 1024);
    assert_int_equal(budget_tag_bytes(512, 100, 64), 512 + budget_chunk(1824) + 1040);
}

static void test_as_asked(void **state)
{
    (void)state;
    budget_grant g;
    budget_request r = request(10 * MiB, 50, 1000, 10000);
    assert_int_equal(budget_derive(&r, &g), 0);
    assert_false(g.reduced);
    assert_false(g.over);
    assert_int_equal(g.window, 1000);
    assert_int_equal(g.history, 10000);
    assert_int_equal(g.tag_bytes, g.asked_tag_bytes);
    assert_int_equal(g.total_bytes, r.fixed_bytes + 50 * g.tag_bytes);
    assert_true(g.total_bytes <= r.limit_bytes);
    /* No limit: as asked for any number of tags. */
    r = request(0, 1000000, 1000, 10000);
    assert_int_equal(budget_derive(&r, &g), 0);
    assert_false(g.reduced);
    assert_int_equal(g.window, 1000);
    assert_int_equal(g.tags_at_minimum, UINT32_MAX);
    /* Zero tags plan for one. */
    r = request(10 * MiB, 0, 100, 64);
    assert_int_equal(budget_derive(&r, &g), 0);
    assert_int_equal(g.tags, 1);
    /* Exactly at the limit still fits; one byte less does not. */
    r = request(0, 10, 100, 64);
    budget_derive(&r, &g);
    r.limit_bytes = g.total_bytes;
    assert_int_equal(budget_derive(&r, &g), 0);
    assert_false(g.reduced);
    r.limit_bytes--;
    assert_int_equal(budget_derive(&r, &g), 0);
    assert_true(g.reduced);
    assert_true(g.total_bytes <= r.limit_bytes);
}

/* The soak's shape: 4,000 tags asking the defaults under 10 MiB. */
static void test_even_split(void **state)
{
    (void)state;
    budget_grant g;
    budget_request r = request(10 * MiB, 4000, 1000, 10000);
    assert_int_equal(budget_derive(&r, &g), 0);
    assert_true(g.reduced);
    assert_false(g.over);
    assert_true(g.total_bytes <= r.limit_bytes);
    uint64_t room = (r.limit_bytes - r.fixed_bytes) / 4000 - r.tag_fixed_bytes;
    /* Both below what was asked, each about half of the room. */
    assert_true(g.window < 1000 && g.window >= BUDGET_MIN_WINDOW);
    assert_true(g.history < 10000 && g.history >= TIMEBUF_MIN_CAPACITY);
    assert_true(wbytes(g.window) <= room / 2);
    assert_true(wbytes(g.window + 1) > room / 2);
    assert_true(wbytes(g.window) + hbytes(g.history) <= room);
    assert_true(wbytes(g.window) + hbytes(g.history + 1) > room); /* history took the rest */
    fprintf(stderr, "4000 tags, 10 MiB: window %u, history %u, %llu bytes a tag\n", g.window,
            g.history, (unsigned long long)g.tag_bytes);

    /* A window that needs less than half keeps what it asked. */
    r = request(10 * MiB, 4000, 20, 10000);
    assert_int_equal(budget_derive(&r, &g), 0);
    assert_int_equal(g.window, 20);
    assert_true(g.history < 10000);
    assert_true(wbytes(20) + hbytes(g.history + 1) > room);
    /* A history that needs less than half leaves the rest to the window. */
    r = request(10 * MiB, 4000, 100000, 64);
    assert_int_equal(budget_derive(&r, &g), 0);
    assert_int_equal(g.history, 64);
    assert_true(g.window < 100000);
    assert_true(wbytes(g.window) + hbytes(64) <= room);
    assert_true(wbytes(g.window + 1) + hbytes(64) > room);
}

static void test_minimal_sizes(void **state)
{
    (void)state;
    budget_grant g;
    /* Just above the minimum: the history sits at its floor, the window
     * takes what is left (at least 16). */
    budget_request r = request(0, 1000, 1000, 10000);
    r.limit_bytes = r.fixed_bytes + 1000 * budget_tag_bytes(r.tag_fixed_bytes, 16, 64) + 1000 * 40;
    assert_int_equal(budget_derive(&r, &g), 0);
    assert_true(g.reduced);
    assert_int_equal(g.history, TIMEBUF_MIN_CAPACITY);
    assert_true(g.window >= BUDGET_MIN_WINDOW);
    assert_true(g.total_bytes <= r.limit_bytes);
    /* An asked window below the minimal one is its own minimum. */
    r = request(0, 1000, 7, 10000);
    r.limit_bytes = r.fixed_bytes + 1000 * budget_tag_bytes(r.tag_fixed_bytes, 7, 64);
    assert_int_equal(budget_derive(&r, &g), 0);
    assert_int_equal(g.window, 7);
    assert_int_equal(g.history, 64);
    assert_int_equal(g.min_tag_bytes, budget_tag_bytes(r.tag_fixed_bytes, 7, 64));
}

static void test_too_small(void **state)
{
    (void)state;
    budget_grant g;
    /* 1 MiB cannot hold 4,000 tags even at the minimal sizes. */
    budget_request r = request(1 * MiB, 4000, 1000, 10000);
    assert_int_equal(budget_derive(&r, &g), -ENOSPC);
    assert_true(g.over && g.reduced);
    assert_int_equal(g.window, BUDGET_MIN_WINDOW);
    assert_int_equal(g.history, TIMEBUF_MIN_CAPACITY);
    assert_int_equal(g.tags_at_minimum, (r.limit_bytes - r.fixed_bytes) / g.min_tag_bytes);
    assert_true(g.total_bytes > r.limit_bytes);
    char text[512];
    budget_describe(&r, &g, "stats.memory_limit_mb", text, sizeof text);
    assert_non_null(strstr(text, "stats.memory_limit_mb 1.0 MiB is too small"));
    assert_non_null(strstr(text, "4000 tags"));
    assert_non_null(strstr(text, "minimal window 16 and history 64"));
    /* The tables alone are bigger than the limit. */
    r = request(1 * MiB, 1, 100, 64);
    r.fixed_bytes = 2 * MiB;
    assert_int_equal(budget_derive(&r, &g), -ENOSPC);
    assert_int_equal(g.tags_at_minimum, 0);
    /* Bad requests. */
    r = request(1 * MiB, 1, 0, 64);
    assert_int_equal(budget_derive(&r, &g), -EINVAL);
    r = request(1 * MiB, 1, 100, 63);
    assert_int_equal(budget_derive(&r, &g), -EINVAL);
}

/* Every combination in a sweep: within the limit, within what was asked,
 * never below the minimum, nothing left that the rules would have given. */
static void test_sweep(void **state)
{
    (void)state;
    static const uint32_t tags[] = {1, 7, 100, 1000, 3760, 8192, 100000};
    static const uint32_t windows[] = {1, 15, 16, 17, 100, 1000, 100000};
    static const uint32_t histories[] = {64, 65, 100, 1000, 10000, 1000000};
    static const uint64_t limits[] = {1 * MiB, 3 * MiB, 10 * MiB, 64 * MiB, 1024 * MiB};
    int cases = 0, reduced = 0, over = 0;
    for (size_t a = 0; a < sizeof tags / sizeof *tags; a++)
        for (size_t b = 0; b < sizeof windows / sizeof *windows; b++)
            for (size_t c = 0; c < sizeof histories / sizeof *histories; c++)
                for (size_t d = 0; d < sizeof limits / sizeof *limits; d++) {
                    budget_request r = request(limits[d], tags[a], windows[b], histories[c]);
                    budget_grant g;
                    int rc = budget_derive(&r, &g);
                    uint32_t min_w = windows[b] < 16 ? windows[b] : 16;
                    cases++;
                    assert_true(g.window >= min_w && g.window <= windows[b]);
                    assert_true(g.history >= 64 && g.history <= histories[c]);
                    assert_int_equal(g.tag_bytes,
                                     budget_tag_bytes(r.tag_fixed_bytes, g.window, g.history));
                    if (rc == -ENOSPC) {
                        over++;
                        assert_true(g.window == min_w && g.history == 64);
                        assert_true(r.fixed_bytes + (uint64_t)tags[a] * g.min_tag_bytes >
                                    r.limit_bytes);
                        continue;
                    }
                    assert_int_equal(rc, 0);
                    assert_true(g.total_bytes <= r.limit_bytes);
                    if (!g.reduced) {
                        assert_true(g.window == windows[b] && g.history == histories[c]);
                        continue;
                    }
                    reduced++;
                    uint64_t room = (r.limit_bytes - r.fixed_bytes) / tags[a] - r.tag_fixed_bytes;
                    if (g.window < windows[b] && g.history > 64) /* the window had its half */
                        assert_true(wbytes(g.window + 1) > room / 2 ||
                                    wbytes(g.window + 1) + hbytes(g.history) > room);
                    if (g.history < histories[c] && g.history > 64) /* the history took the rest */
                        assert_true(wbytes(g.window) + hbytes(g.history + 1) > room);
                }
    fprintf(stderr, "sweep: %d cases, %d reduced, %d over\n", cases, reduced, over);
    assert_true(reduced > 50 && over > 20);
}

/* ------------------------------------------------------------ the store */

static store_params params(uint64_t limit, uint32_t planned)
{
    return (store_params){.window = 1000,
                          .history_ns = 3600 * SEC,
                          .history_capacity = 10000,
                          .memory_limit = limit,
                          .planned_tags = planned,
                          .limits = {.min_ms = 100, .max_ms = 60000},
                          .shard_k = 0,
                          .shard_n = 1,
                          .max_tags = 4096};
}

typedef struct plan_log {
    int calls;
    char last_why[128];
} plan_log;

static void on_plan(void *ctx, const tagstore *s, const budget_grant *before, const char *why)
{
    (void)s;
    (void)before;
    plan_log *l = ctx;
    l->calls++;
    snprintf(l->last_why, sizeof l->last_why, "%s", why);
}

static uint32_t known_none(void *ctx)
{
    (void)ctx;
    return 0;
}

/* Feeds tag `id` n values of a random walk, keeping a copy of them. */
static void feed(tagstore *s, uint32_t id, double *kept, uint32_t n, test_rng *rng)
{
    double x = 1000.0 * id;
    for (uint32_t i = 0; i < n; i++) {
        x += rng_normal(rng);
        kept[i] = x;
        assert_int_equal(tagstore_apply(s, id, (int64_t)(i + 1) * SEC, x, 0), 0);
    }
}

static void check_window(tagstore *s, uint32_t id, const double *kept, uint32_t n, uint64_t added)
{
    tag_state *t = tagstore_get(s, id);
    assert_non_null(t);
    rolling_stats st;
    rolling_get_stats(&t->roll, &st);
    uint32_t w = t->roll.window < n ? t->roll.window : n;
    ref_stats ref;
    ref_compute(kept + n - w, w, &ref);
    assert_int_equal(st.count, w);
    assert_true(st.min == ref.min && st.max == ref.max && st.last == ref.last);
    assert_true(rel_err(st.mean, ref.mean) < 1e-12);
    assert_true(rel_err(st.stddev, ref.stddev) < 1e-9);
    assert_int_equal(st.added, added); /* the counters went on */
    /* The history still ends with the newest point and spans back to the first. */
    assert_int_equal(timebuf_at(&t->hist, t->hist.count - 1).t_ns, (int64_t)n * SEC);
    assert_true(t->hist.count <= t->hist.capacity);
}

static void test_store_grows_plan(void **state)
{
    (void)state;
    tagstore s;
    store_params p = params(1 * MiB, 4);
    assert_int_equal(tagstore_init(&s, &p), 0);
    plan_log log = {0};
    s.hooks = (tagstore_hooks){.ctx = &log, .count_known_tags = known_none, .on_plan = on_plan};
    assert_int_equal(s.grant.tags, 4);
    assert_false(s.grant.reduced); /* 4 tags x 175 KiB fit in 1 MiB */
    assert_int_equal(s.grant.window, 1000);

    test_rng rng;
    rng_seed(&rng, 7);
    static double kept[40][1200];
    uint32_t n = 1200;
    for (uint32_t id = 0; id < 40; id++) {
        feed(&s, id, kept[id], n, &rng);
        assert_true(tagstore_state_bytes(&s) <= p.memory_limit);
    }
    assert_int_equal(s.n_tags, 40);
    assert_true(s.grant.tags >= 40);
    assert_true(s.grant.reduced);
    assert_true(s.grant.window < 1000 && s.grant.history < 10000);
    assert_true(log.calls >= 3); /* 4 -> 5 -> ... -> 40: an eighth at a time at least */
    assert_non_null(strstr(log.last_why, "were planned for"));
    assert_true(s.replans == (uint64_t)log.calls);
    assert_int_equal(s.resize_failures, 0);
    /* Every tag has the plan's sizes, and the statistics of its newest values. */
    for (uint32_t id = 0; id < 40; id++) {
        tag_state *t = tagstore_get(&s, id);
        assert_int_equal(t->roll.window, s.grant.window);
        assert_int_equal(t->hist.capacity, s.grant.history);
        check_window(&s, id, kept[id], n, n);
    }
    /* A reload with a bigger limit grows the tags back (values kept as far
     * as the smaller window had them). */
    uint32_t small_window = s.grant.window;
    assert_int_equal(tagstore_set_limits(&s, 1000, 10000, 64 * MiB, 3600 * SEC), 0);
    assert_false(s.grant.reduced);
    assert_int_equal(strcmp(log.last_why, "reload"), 0);
    tag_state *t = tagstore_get(&s, 3);
    assert_int_equal(t->roll.window, 1000);
    assert_int_equal(t->roll.count, small_window);
    assert_int_equal(t->hist.capacity, 10000);
    /* ... and values then fill the bigger window. */
    double more[1200];
    feed(&s, 3, more, 1200, &rng);
    check_window(&s, 3, more, 1200, 2400);
    /* Bad limits change nothing. */
    assert_int_equal(tagstore_set_limits(&s, 0, 10000, 64 * MiB, SEC), -EINVAL);
    assert_int_equal(tagstore_set_limits(&s, 10, 63, 64 * MiB, SEC), -EINVAL);
    assert_int_equal(s.grant.window, 1000);
    tagstore_free(&s);
}

static uint32_t known_500(void *ctx)
{
    (void)ctx;
    return 500;
}

static void test_store_over_limit(void **state)
{
    (void)state;
    tagstore s;
    /* The configuration's tags alone do not fit: init says so. */
    store_params p = params(1 * MiB, 2000);
    assert_int_equal(tagstore_init(&s, &p), -ENOSPC);
    assert_true(s.grant.over);
    assert_int_equal(s.grant.tags, 2000);
    tagstore_free(&s);
    /* Planned tags are capped at the ids this shard can own. */
    p = params(64 * MiB, 100000);
    budget_request req;
    budget_grant g;
    assert_int_equal(tagstore_plan(&p, &req, &g), 0);
    assert_int_equal(g.tags, 4096);
    p.shard_n = 4;
    p.shard_k = 1;
    assert_int_equal(tagstore_plan(&p, &req, &g), 0);
    assert_true(g.tags > 900 && g.tags < 1150);

    /* Tags beyond what the limit holds at the minimum: kept, flagged over. */
    p = params(1 * MiB, 1);
    assert_int_equal(tagstore_init(&s, &p), 0);
    s.hooks = (tagstore_hooks){.count_known_tags = known_500}; /* "the catalog" */
    assert_int_equal(tagstore_apply(&s, 0, SEC, 1.0, 0), 0);
    assert_int_equal(tagstore_apply(&s, 1, SEC, 1.0, 0), 0);
    assert_int_equal(s.grant.tags, 500); /* jumped to what the catalog knows */
    assert_true(s.grant.tags_at_minimum < 1000);
    for (uint32_t id = 2; id < 1000; id++)
        assert_int_equal(tagstore_apply(&s, id, SEC, 1.0, 0), 0);
    assert_int_equal(s.n_tags, 1000);
    assert_true(s.grant.over);
    assert_int_equal(s.grant.window, BUDGET_MIN_WINDOW);
    assert_int_equal(s.grant.history, TIMEBUF_MIN_CAPACITY);
    assert_int_equal(tagstore_get(&s, 999)->roll.window, BUDGET_MIN_WINDOW);
    tagstore_free(&s);
}

/* Names are allocated to fit and counted as such. */
static void test_names(void **state)
{
    (void)state;
    tagstore s;
    store_params p = params(4 * MiB, 10);
    assert_int_equal(tagstore_init(&s, &p), 0);
    assert_int_equal(tagstore_apply(&s, 5, SEC, 1.0, 0), 0);
    tag_state *t = tagstore_get(&s, 5);
    assert_string_equal(t->name, "");
    uint64_t before = tagstore_state_bytes(&s);
    assert_int_equal(tagstore_set_meta(&s, t, "boiler.temp", 0), 0);
    assert_string_equal(t->name, "boiler.temp");
    assert_int_equal(tagstore_state_bytes(&s), before + budget_chunk(12));
    assert_ptr_equal(tagstore_find_name(&s, "boiler.temp"), t);
    char longname[400];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(tagstore_set_meta(&s, t, longname, 0), 0);
    assert_int_equal(strlen(t->name), TAG_NAME_MAX);
    assert_int_equal(tagstore_set_meta(&s, t, "", 0), 0);
    assert_string_equal(t->name, "");
    tagstore_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_model),
        cmocka_unit_test(test_as_asked),
        cmocka_unit_test(test_even_split),
        cmocka_unit_test(test_minimal_sizes),
        cmocka_unit_test(test_too_small),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_store_grows_plan),
        cmocka_unit_test(test_store_over_limit),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * metrics.c — the export's named counters in the segment. Every member has
 * its own set, labelled with the target and the member name:
 *   shmbus_export_rows_total{target="postgres",member="pg-1"}
 * so shmstat and the controller's /metrics show them without knowing the
 * export exists. Opening an existing name continues its total, so a
 * restarted member keeps counting where it stopped.
 */
#include "export.h"

#include <stdio.h>
#include <string.h>

static int open_one(shm_segment *seg, const char *what, int kind, const char *target,
                    const char *member, shm_counter **out)
{
    char name[SHM_COUNTER_NAME_MAX + 1];
    int n = snprintf(name, sizeof name, "shmbus_export_%s{target=\"%s\",member=\"%s\"}", what,
                     target, member);
    if (n < 0 || (size_t)n >= sizeof name)
        return SHM_EINVAL;
    return shm_counter_open(seg, name, kind, out);
}

int export_metrics_open(shm_segment *seg, const char *target, const char *member,
                        export_metrics *m)
{
    /* A row in PostgreSQL is a message at a broker: each target counts in its own word. */
    const char *rows_what = strcmp(target, "mqtt") == 0 ? "messages_total" : "rows_total";
    const struct {
        const char *what;
        int kind;
        shm_counter **slot;
    } all[] = {
        {"batches_total", SHM_COUNTER, &m->batches},
        {rows_what, SHM_COUNTER, &m->rows},
        {"duplicates_total", SHM_COUNTER, &m->duplicates},
        {"retries_total", SHM_COUNTER, &m->retries},
        {"outages_total", SHM_COUNTER, &m->outages},
        {"connected", SHM_GAUGE, &m->connected},
        {"spool_bytes", SHM_GAUGE, &m->spool_bytes},
        {"spooled_rows_total", SHM_COUNTER, &m->spooled},
        {"replayed_rows_total", SHM_COUNTER, &m->replayed},
        {"invalid_total", SHM_COUNTER, &m->invalid},
        {"released_batches_total", SHM_COUNTER, &m->released},
        {"grouped_batches_total", SHM_COUNTER, &m->grouped},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        int rc = open_one(seg, all[i].what, all[i].kind, target, member, all[i].slot);
        if (rc)
            return rc;
    }
    return 0;
}

void export_metrics_add(shm_counter *c, uint64_t n)
{
    if (c && n)
        shm_counter_add(c, n);
}

void export_metrics_set(shm_counter *c, uint64_t v)
{
    if (c)
        shm_counter_set(c, v);
}

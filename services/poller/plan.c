/*
 * plan.c — merges tags into read requests (see plan.h). Sorting is by
 * (poll group, unit id, function code, address, file order); one pass then
 * extends the current request while the next tag fits.
 */
#include "plan.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct sort_key {
    const config_tag *tag;
    uint32_t index;
} sort_key;

static int by_request(const void *a, const void *b)
{
    const config_tag *x = ((const sort_key *)a)->tag, *y = ((const sort_key *)b)->tag;
    if (x->poll_group != y->poll_group)
        return x->poll_group < y->poll_group ? -1 : 1;
    if (x->unit_id != y->unit_id)
        return x->unit_id < y->unit_id ? -1 : 1;
    if (x->reg != y->reg)
        return x->reg < y->reg ? -1 : 1;
    if (x->protocol_address != y->protocol_address)
        return x->protocol_address < y->protocol_address ? -1 : 1;
    uint32_t i = ((const sort_key *)a)->index, j = ((const sort_key *)b)->index;
    return (i > j) - (i < j);
}

static bool is_bit_table(int reg)
{
    return reg == CONFIG_REG_COIL || reg == CONFIG_REG_DISCRETE;
}

/* Can tag t join request r (whose span so far ends at `end`, exclusive)? */
static bool fits(const config_device *d, const plan_request *r, uint32_t end, const config_tag *t)
{
    if (d->single_request || t->poll_group != r->group || t->unit_id != r->unit_id ||
        plan_fc_of(t->reg) != r->fc)
        return false;
    uint32_t start = t->protocol_address, t_end = start + t->registers;
    uint32_t gap = start > end ? start - end : 0;
    uint32_t cap = is_bit_table(t->reg) ? d->max_bits : d->max_registers;
    uint32_t new_end = t_end > end ? t_end : end;
    return gap <= d->max_gap && new_end - r->address <= cap;
}

int plan_build(const config_device *d, plan *out)
{
    memset(out, 0, sizeof *out);
    out->n_groups = d->n_poll_groups;
    out->group_first = calloc(d->n_poll_groups ? d->n_poll_groups : 1, sizeof *out->group_first);
    out->group_count = calloc(d->n_poll_groups ? d->n_poll_groups : 1, sizeof *out->group_count);
    sort_key *keys = calloc(d->n_tags ? d->n_tags : 1, sizeof *keys);
    out->items = calloc(d->n_tags ? d->n_tags : 1, sizeof *out->items);
    out->requests = calloc(d->n_tags ? d->n_tags : 1, sizeof *out->requests);
    if (!out->group_first || !out->group_count || !keys || !out->items || !out->requests) {
        free(keys);
        plan_free(out);
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->n_tags; i++)
        keys[i] = (sort_key){.tag = &d->tags[i], .index = (uint32_t)i};
    qsort(keys, d->n_tags, sizeof *keys, by_request);

    plan_request *r = NULL;
    uint32_t end = 0;
    for (size_t i = 0; i < d->n_tags; i++) {
        const config_tag *t = keys[i].tag;
        if (!r || !fits(d, r, end, t)) {
            r = &out->requests[out->n_requests++];
            *r = (plan_request){.group = t->poll_group,
                                .unit_id = t->unit_id,
                                .fc = plan_fc_of(t->reg),
                                .address = t->protocol_address,
                                .best_priority = t->priority,
                                .first_item = (uint32_t)out->n_items};
            end = t->protocol_address;
        }
        uint32_t t_end = (uint32_t)t->protocol_address + t->registers;
        if (t_end > end)
            end = t_end;
        r->count = (uint16_t)(end - r->address);
        if (t->priority < r->best_priority)
            r->best_priority = t->priority;
        out->items[out->n_items++] =
            (plan_item){.tag = keys[i].index, .offset = (uint16_t)(t->protocol_address - r->address)};
        r->n_items++;
    }
    free(keys);
    /* Sorted by group first, so each group's requests are contiguous. */
    for (size_t i = out->n_requests; i-- > 0;) {
        out->group_first[out->requests[i].group] = (uint32_t)i;
        out->group_count[out->requests[i].group]++;
    }
    for (size_t i = 0; i < out->n_requests; i++)
        if (!is_bit_table(out->requests[i].fc))
            out->registers_read += out->requests[i].count;
    return 0;
}

void plan_free(plan *p)
{
    free(p->requests);
    free(p->items);
    free(p->group_first);
    free(p->group_count);
    memset(p, 0, sizeof *p);
}

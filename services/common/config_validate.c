/*
 * config_validate.c — checks across the whole configuration once each field
 * has parsed: unique device names, unique tag names and ids (ids below the
 * catalog capacity), and no two tags of one device, unit id and register
 * table sharing a register (bit tags may share a register, not a bit).
 * Each finding is reported at the later of the two tags in the file.
 */
#include "config_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct tag_ref {
    const config_tag *tag;
    uint32_t device; /* index, for the path */
    uint32_t index;  /* position in the device's tag list */
} tag_ref;

static void push_tag_path(creader *r, const tag_ref *ref)
{
    cr_push_key(r, "devices");
    cr_push_index(r, ref->device);
    cr_push_key(r, "tags");
    cr_push_index(r, ref->index);
}

static int by_name(const void *a, const void *b)
{
    const tag_ref *x = a, *y = b;
    int c = strcmp(x->tag->name, y->tag->name);
    return c ? c : (x->tag->line > y->tag->line) - (x->tag->line < y->tag->line);
}

static int by_id(const void *a, const void *b)
{
    const tag_ref *x = a, *y = b;
    if (x->tag->id != y->tag->id)
        return x->tag->id < y->tag->id ? -1 : 1;
    return (x->tag->line > y->tag->line) - (x->tag->line < y->tag->line);
}

/* Within one device: by unit id, table, address, then file order. */
static int by_location(const void *a, const void *b)
{
    const config_tag *x = ((const tag_ref *)a)->tag, *y = ((const tag_ref *)b)->tag;
    if (x->unit_id != y->unit_id)
        return x->unit_id < y->unit_id ? -1 : 1;
    if (x->reg != y->reg)
        return x->reg < y->reg ? -1 : 1;
    if (x->protocol_address != y->protocol_address)
        return x->protocol_address < y->protocol_address ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

static void check_devices(creader *r, const config *cfg)
{
    for (size_t i = 1; i < cfg->n_devices; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->devices[i].name, cfg->devices[j].name) != 0)
                continue;
            size_t saved = cr_push_key(r, "devices");
            cr_push_index(r, i);
            cr_error_line(r, cfg->devices[i].line, "name",
                          "duplicate device name '%s' (first on line %u)", cfg->devices[i].name,
                          cfg->devices[j].line);
            cr_pop(r, saved);
            break;
        }
    }
}

static void check_names_and_ids(creader *r, const config *cfg, tag_ref *refs, size_t n)
{
    qsort(refs, n, sizeof *refs, by_name);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(refs[i].tag->name, refs[i - 1].tag->name) != 0)
            continue;
        size_t saved = r->pathlen;
        push_tag_path(r, &refs[i]);
        cr_error_line(r, refs[i].tag->line, "name", "duplicate tag name '%s' (first on line %u)",
                      refs[i].tag->name, refs[i - 1].tag->line);
        cr_pop(r, saved);
    }
    qsort(refs, n, sizeof *refs, by_id);
    for (size_t i = 0; i < n; i++) {
        size_t saved = r->pathlen;
        if (i > 0 && refs[i].tag->id == refs[i - 1].tag->id) {
            push_tag_path(r, &refs[i]);
            cr_error_line(r, refs[i].tag->line, "id",
                          "duplicate tag id %u (tag '%s' on line %u has it; ids default to the "
                          "tag's position in the file)",
                          refs[i].tag->id, refs[i - 1].tag->name, refs[i - 1].tag->line);
        } else if (refs[i].tag->id >= cfg->segment.catalog_capacity) {
            push_tag_path(r, &refs[i]);
            cr_error_line(r, refs[i].tag->line, "id",
                          "tag id %u is beyond the catalog (segment.catalog_capacity %u)",
                          refs[i].tag->id, cfg->segment.catalog_capacity);
        }
        cr_pop(r, saved);
    }
}

static bool bits_of_one_register(const config_tag *a, const config_tag *b)
{
    return a->type == CONFIG_T_BIT && b->type == CONFIG_T_BIT &&
           a->protocol_address == b->protocol_address && a->bit != b->bit;
}

static void check_overlaps(creader *r, const config_device *d, tag_ref *refs)
{
    for (size_t i = 0; i < d->n_tags; i++)
        refs[i] = (tag_ref){.tag = &d->tags[i], .device = d->id, .index = (uint32_t)i};
    qsort(refs, d->n_tags, sizeof *refs, by_location);
    /* Sweep: `reach` is the tag (seen so far in this unit and table) whose
     * range ends furthest; any later tag starting before that end overlaps. */
    size_t reach = 0;
    for (size_t i = 1; i < d->n_tags; i++) {
        const config_tag *a = refs[reach].tag, *b = refs[i].tag;
        if (a->unit_id != b->unit_id || a->reg != b->reg) {
            reach = i;
            continue;
        }
        uint32_t a_end = a->protocol_address + (uint32_t)a->registers;
        bool clash = b->protocol_address < a_end && !bits_of_one_register(a, b);
        /* Bit tags of one register: each bit at most once. */
        for (size_t j = i; !clash && b->type == CONFIG_T_BIT && j-- > 0;) {
            const config_tag *c = refs[j].tag;
            if (c->unit_id != b->unit_id || c->reg != b->reg ||
                c->protocol_address != b->protocol_address)
                break;
            if (c->type == CONFIG_T_BIT && c->bit == b->bit) {
                a = c;
                clash = true;
            }
        }
        if (clash) {
            const tag_ref *later = a->line > b->line ? &refs[reach] : &refs[i];
            const config_tag *first = later == &refs[i] ? a : b;
            if (a != refs[reach].tag) /* a bit clash found by the backward scan */
                later = &refs[i];
            size_t saved = r->pathlen;
            push_tag_path(r, later);
            cr_error_line(r, later->tag->line, "address",
                          "%s %u..%u of unit %u overlaps tag '%s' (line %u, %s %u..%u)",
                          config_register_name(later->tag->reg), later->tag->address,
                          later->tag->address + later->tag->registers - 1u, later->tag->unit_id,
                          first->name, first->line, config_register_name(first->reg),
                          first->address, first->address + first->registers - 1u);
            cr_pop(r, saved);
        }
        if (b->protocol_address + (uint32_t)b->registers > a_end)
            reach = i;
    }
}

void config_validate(creader *r, config *cfg)
{
    check_devices(r, cfg);
    if (cfg->n_tags == 0)
        return;
    tag_ref *refs = calloc(cfg->n_tags, sizeof *refs);
    if (!refs) {
        r->oom = 1;
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < cfg->n_devices; i++)
        for (size_t j = 0; j < cfg->devices[i].n_tags; j++)
            refs[n++] = (tag_ref){.tag = &cfg->devices[i].tags[j],
                                  .device = (uint32_t)i,
                                  .index = (uint32_t)j};
    check_names_and_ids(r, cfg, refs, n);
    for (size_t i = 0; i < cfg->n_devices; i++)
        check_overlaps(r, &cfg->devices[i], refs);
    free(refs);
}

/*
 * sim_image.c — builds and refreshes shmbus-sim's register images (see
 * sim_image.h). A tag's value is simgen_value(tag.sim, t) encoded by
 * tagcodec into the tag's registers, exactly as the poller will decode it.
 */
#include "sim_image.h"

#include "simgen.h"
#include "tagcodec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int by_table_address(const void *a, const void *b)
{
    const config_tag *x = *(const config_tag *const *)a, *y = *(const config_tag *const *)b;
    if (x->reg != y->reg)
        return x->reg < y->reg ? -1 : 1;
    return (x->protocol_address > y->protocol_address) - (x->protocol_address < y->protocol_address);
}

static sim_unit *find_or_add_unit(sim_image *img, uint8_t unit_id)
{
    for (size_t i = 0; i < img->n_units; i++)
        if (img->units[i].unit_id == unit_id)
            return &img->units[i];
    sim_unit *u = &img->units[img->n_units++];
    u->unit_id = unit_id;
    return u;
}

int sim_image_build(const config_device *d, sim_image *img)
{
    memset(img, 0, sizeof *img);
    img->device = d;
    if (d->n_tags == 0)
        return 0;
    img->units = calloc(d->n_tags, sizeof *img->units);
    if (!img->units)
        return -ENOMEM;
    /* Sizes per unit and table: the highest register any tag reaches. */
    unsigned *ends = calloc(d->n_tags * 5, sizeof *ends);
    if (!ends)
        goto oom;
    for (size_t i = 0; i < d->n_tags; i++) {
        const config_tag *t = &d->tags[i];
        sim_unit *u = find_or_add_unit(img, t->unit_id);
        size_t ui = (size_t)(u - img->units);
        unsigned end = (unsigned)t->protocol_address + t->registers;
        if (ends[ui * 5 + t->reg] < end)
            ends[ui * 5 + t->reg] = end;
        u->n_tags++;
    }
    for (size_t ui = 0; ui < img->n_units; ui++) {
        sim_unit *u = &img->units[ui];
        unsigned *e = &ends[ui * 5];
        u->map = modbus_mapping_new((int)e[CONFIG_REG_COIL], (int)e[CONFIG_REG_DISCRETE],
                                    (int)e[CONFIG_REG_HOLDING], (int)e[CONFIG_REG_INPUT]);
        u->tags = calloc(u->n_tags, sizeof *u->tags);
        if (!u->map || !u->tags)
            goto oom;
        u->n_tags = 0;
    }
    free(ends);
    ends = NULL;
    for (size_t i = 0; i < d->n_tags; i++) {
        sim_unit *u = sim_image_unit(img, d->tags[i].unit_id);
        u->tags[u->n_tags++] = &d->tags[i];
    }
    for (size_t ui = 0; ui < img->n_units; ui++)
        qsort(img->units[ui].tags, img->units[ui].n_tags, sizeof *img->units[ui].tags,
              by_table_address);
    return 0;
oom:
    free(ends);
    sim_image_free(img);
    return -ENOMEM;
}

void sim_image_free(sim_image *img)
{
    for (size_t i = 0; i < img->n_units; i++) {
        if (img->units[i].map)
            modbus_mapping_free(img->units[i].map);
        free(img->units[i].tags);
    }
    free(img->units);
    memset(img, 0, sizeof *img);
}

sim_unit *sim_image_unit(sim_image *img, uint8_t unit_id)
{
    for (size_t i = 0; i < img->n_units; i++)
        if (img->units[i].unit_id == unit_id)
            return &img->units[i];
    return NULL;
}

static void refresh_tag(sim_unit *u, const config_tag *t, int64_t t_ms)
{
    modbus_mapping_t *m = u->map;
    unsigned a = t->protocol_address;
    switch (t->reg) {
    case CONFIG_REG_COIL:
        m->tab_bits[a] = simgen_value(&t->sim, t_ms) != 0.0;
        return;
    case CONFIG_REG_DISCRETE:
        m->tab_input_bits[a] = simgen_value(&t->sim, t_ms) != 0.0;
        return;
    default: {
        uint16_t *regs = t->reg == CONFIG_REG_HOLDING ? m->tab_registers : m->tab_input_registers;
        if (t->type == CONFIG_T_STRING)
            tagcodec_encode_text(t, t->sim.text, regs + a);
        else
            tagcodec_encode_registers(t, simgen_value(&t->sim, t_ms), regs + a);
        return;
    }
    }
}

static int table_of_fc(int fc)
{
    switch (fc) {
    case 1:
        return CONFIG_REG_COIL;
    case 2:
        return CONFIG_REG_DISCRETE;
    case 3:
        return CONFIG_REG_HOLDING;
    case 4:
        return CONFIG_REG_INPUT;
    default:
        return 0;
    }
}

void sim_unit_refresh(sim_unit *u, int fc, unsigned addr, unsigned count, int64_t t_ms)
{
    int table = table_of_fc(fc);
    if (!table)
        return;
    /* First tag of the table that ends after addr: binary search on the
     * start (tags of one table do not overlap, so ends ascend too). */
    size_t lo = 0, hi = u->n_tags;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const config_tag *t = u->tags[mid];
        if (t->reg < table || (t->reg == table && t->protocol_address + t->registers <= addr))
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < u->n_tags; i++) {
        const config_tag *t = u->tags[i];
        if (t->reg != table || t->protocol_address >= addr + count)
            break;
        refresh_tag(u, t, t_ms);
    }
}

void sim_unit_refresh_all(sim_unit *u, int64_t t_ms)
{
    for (size_t i = 0; i < u->n_tags; i++)
        refresh_tag(u, u->tags[i], t_ms);
}

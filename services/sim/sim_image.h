/*
 * sim_image.h — the register image shmbus-sim serves for one device: one
 * libmodbus mapping per unit id, filled from the device's tags and their
 * generators. Before a read is answered, the tags the request touches are
 * recomputed for the current (or frozen) time, so every reply is f(t).
 *
 * Ownership: an image belongs to one server thread; nothing is shared.
 */
#ifndef SHMBUS_SIM_IMAGE_H
#define SHMBUS_SIM_IMAGE_H

#include "config.h"

#include <modbus/modbus.h>
#include <stdint.h>

typedef struct sim_unit {
    uint8_t unit_id;
    modbus_mapping_t *map;
    const config_tag **tags; /* sorted by register table, then address */
    size_t n_tags;
} sim_unit;

typedef struct sim_image {
    const config_device *device;
    sim_unit *units;
    size_t n_units;
} sim_image;

/* Builds the image of d (tables sized to its highest address). Returns 0 or
 * -ENOMEM. */
int sim_image_build(const config_device *d, sim_image *img);
void sim_image_free(sim_image *img);

/* The unit's image, or NULL when the device has no tag on that unit id. */
sim_unit *sim_image_unit(sim_image *img, uint8_t unit_id);

/* Recomputes the tags of the table read by function code fc (1..4) that
 * overlap [addr, addr + count) at time t_ms. Other function codes: nothing. */
void sim_unit_refresh(sim_unit *u, int fc, unsigned addr, unsigned count, int64_t t_ms);

/* Recomputes every tag of the unit. */
void sim_unit_refresh_all(sim_unit *u, int64_t t_ms);

#endif

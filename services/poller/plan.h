/*
 * plan.h — the request planner: turns a device's tags into as few Modbus
 * read requests as the protocol and the device allow. Tags of one poll
 * group, unit id and register table (so one function code) are sorted by
 * address and merged while the gap between them is at most max_gap
 * registers (bits for coils and discrete inputs) and the request stays
 * within max_registers (<= 125) or max_bits (<= 2000). single_request
 * gives one request per tag, for devices that reject longer reads.
 *
 * A plan is immutable once built; a device thread owns its plan.
 */
#ifndef SHMBUS_POLLER_PLAN_H
#define SHMBUS_POLLER_PLAN_H

#include "config.h"

#include <stdint.h>

typedef struct plan_item {
    uint32_t tag;    /* index into device->tags */
    uint16_t offset; /* registers (or bits) from the request's start */
} plan_item;

typedef struct plan_request {
    uint32_t group;   /* poll group index */
    uint8_t unit_id;
    uint8_t fc;       /* 1 coils, 2 discrete inputs, 3 holding, 4 input registers */
    uint16_t address; /* protocol address of the first register or bit */
    uint16_t count;   /* registers or bits */
    uint8_t best_priority; /* numerically lowest priority among its tags */
    uint32_t first_item;   /* items[first_item .. first_item + n_items) */
    uint32_t n_items;
} plan_request;

typedef struct plan {
    plan_request *requests; /* grouped: a poll group's requests are contiguous */
    size_t n_requests;
    plan_item *items;
    size_t n_items;
    uint32_t *group_first; /* per poll group: first request index */
    uint32_t *group_count; /* per poll group: number of requests */
    size_t n_groups;
    uint64_t registers_read; /* sum of counts of register requests, gaps included */
} plan;

/* Builds the plan of device d. Returns 0 or -ENOMEM. */
int plan_build(const config_device *d, plan *out);
void plan_free(plan *p);

/* Function code that reads a register table (enum config_register). */
static inline uint8_t plan_fc_of(int reg)
{
    return (uint8_t)reg; /* the enum values are the function codes */
}

#endif

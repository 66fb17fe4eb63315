/*
 * config_internal.h — private to the config loader: the pieces config.c
 * calls into (devices and tags, cross-checks) and the name tables they share.
 * Not a public API.
 */
#ifndef SHMBUS_CONFIG_INTERNAL_H
#define SHMBUS_CONFIG_INTERNAL_H

#include "config.h"
#include "config_reader.h"

/* Reads the `devices` list into cfg->devices (config_devices.c). */
void config_read_devices(creader *r, yaml_node_t *node, config *cfg);

/* Cross-checks over the whole file once every field parsed: duplicate
 * names and ids, overlapping addresses, ids beyond the catalog
 * (config_validate.c). */
void config_validate(creader *r, config *cfg);

#endif

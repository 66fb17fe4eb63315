/*
 * sim_server.h — shmbus-sim's network side: Modbus TCP listeners, each
 * serving one device image, driven by poll loops (one per thread). Each
 * listener owns its libmodbus context and image; a thread owns its
 * listeners and their clients, so nothing is shared between threads.
 */
#ifndef SHMBUS_SIM_SERVER_H
#define SHMBUS_SIM_SERVER_H

#include "sim_image.h"

#include <signal.h>
#include <stdint.h>

typedef struct sim_listener {
    modbus_t *ctx; /* server context; modbus_set_socket() points it at a client */
    int fd;        /* listening socket */
    uint16_t port;
    sim_image image;
} sim_listener;

typedef struct sim_options {
    int64_t frozen_ms;    /* > 0: serve values at this instant forever */
    uint32_t delay_ms;    /* answer every request this late (slow-device tests) */
    volatile sig_atomic_t *stop;
} sim_options;

/* Opens a listener on bind_addr:port for device d. Returns 0 or a negative
 * errno code (message logged). */
int sim_listener_open(sim_listener *l, const char *bind_addr, uint16_t port,
                      const config_device *d);
void sim_listener_close(sim_listener *l);

/* Serves the listeners until *opts->stop. Returns 0, or -1 on a fatal poll
 * error. Run once per thread with disjoint listener sets. */
int sim_serve(sim_listener **listeners, size_t n, const sim_options *opts);

#endif

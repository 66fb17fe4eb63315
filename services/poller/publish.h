/*
 * publish.h — puts TagValue records into the ring. One claim per poll
 * response: all records of one request are claimed together, encoded in
 * place (shm_tag_value_encode into the slot) and committed together, and
 * they share the request's timestamp.
 *
 * A small pool of producers (one registry slot each) serves all device
 * threads: device i uses producer i % pool, under that producer's mutex
 * (a producer handle belongs to one thread at a time). A claim holds the
 * mutex for a few microseconds, so a pool of 4 keeps 100 device threads
 * from contending while using 4 registry slots instead of 100.
 */
#ifndef SHMBUS_POLLER_PUBLISH_H
#define SHMBUS_POLLER_PUBLISH_H

#include <shmbus/shm.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define PUBLISH_POOL_MAX 8
#define PUBLISH_FULL_WAIT_MS 20 /* how long a full ring (backpressure) is waited on */
#define PUBLISH_PAUSE_WAIT_MS 10000 /* how long a response is held while producers are paused */

typedef struct publisher {
    shm_segment *seg;
    size_t n;
    struct {
        pthread_mutex_t mu;
        shm_producer *producer;
    } pool[PUBLISH_POOL_MAX];
} publisher;

typedef struct publish_result {
    uint32_t published; /* records committed */
    uint32_t dropped;   /* records given up: ring full beyond the wait, or paused too long */
    int last_error;     /* SHM_EFULL or SHM_EPAUSED when something was dropped */
} publish_result;

/* Opens `n` producers (1..PUBLISH_POOL_MAX) named "poller". Returns 0 or a
 * libshm error code. */
int publisher_open(publisher *pub, shm_segment *seg, size_t n);
void publisher_close(publisher *pub);

/* Publishes vals[0..n) through pool slot `slot % pub->n`; each record's
 * sequence field is set to its ring sequence number. While producers are
 * paused it waits (up to PUBLISH_PAUSE_WAIT_MS) unless *stop is set. */
void publisher_put(publisher *pub, size_t slot, shm_tag_value *vals, size_t n,
                   const atomic_int *stop, publish_result *res);

/* Refreshes every producer's heartbeat (from the main thread). */
void publisher_heartbeat(publisher *pub);

#endif

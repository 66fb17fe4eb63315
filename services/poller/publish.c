/*
 * publish.c — claims, encodes and commits TagValue records (see publish.h).
 * Under backpressure a full ring is retried for PUBLISH_FULL_WAIT_MS, then
 * the records are dropped and counted by the caller: a poll response is
 * not kept for later, because a late reading is worth less than the next
 * one and holding it would stall the device's schedule.
 *
 * A pause is different: the controller pauses producers at critical
 * pressure while the ring still has room, and a response already on its
 * way when the pause lands has been read from the device. It is held
 * (the device thread polls nothing while paused anyway) and published on
 * resume, with the time it was read; only a pause longer than
 * PUBLISH_PAUSE_WAIT_MS, or the device stopping, drops it (counted).
 */
#include "publish.h"

#include <string.h>
#include <time.h>

int publisher_open(publisher *pub, shm_segment *seg, size_t n)
{
    memset(pub, 0, sizeof *pub);
    pub->seg = seg;
    if (n == 0)
        n = 1;
    if (n > PUBLISH_POOL_MAX)
        n = PUBLISH_POOL_MAX;
    for (size_t i = 0; i < n; i++) {
        int rc = shm_producer_open(seg, "poller", &pub->pool[i].producer);
        if (rc < 0) {
            publisher_close(pub);
            return rc;
        }
        pthread_mutex_init(&pub->pool[i].mu, NULL);
        pub->n = i + 1;
    }
    return 0;
}

void publisher_close(publisher *pub)
{
    for (size_t i = 0; i < pub->n; i++) {
        shm_producer_close(&pub->pool[i].producer);
        pthread_mutex_destroy(&pub->pool[i].mu);
    }
    pub->n = 0;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};
    nanosleep(&ts, NULL);
}

void publisher_put(publisher *pub, size_t slot, shm_tag_value *vals, size_t n,
                   const atomic_int *stop, publish_result *res)
{
    memset(res, 0, sizeof *res);
    if (n == 0 || pub->n == 0) {
        res->dropped = (uint32_t)n;
        return;
    }
    slot %= pub->n;
    shm_producer *p = pub->pool[slot].producer;
    size_t done = 0;
    int waited_ms = 0, paused_ms = 0;
    pthread_mutex_lock(&pub->pool[slot].mu);
    while (done < n) {
        uint32_t want = (uint32_t)(n - done < SHM_CLAIM_MAX ? n - done : SHM_CLAIM_MAX);
        shm_slots c;
        int got = shm_claim(p, want, &c);
        if (got == SHM_EPAUSED && paused_ms < PUBLISH_PAUSE_WAIT_MS &&
            !(stop && atomic_load_explicit(stop, memory_order_relaxed))) {
            pthread_mutex_unlock(&pub->pool[slot].mu);
            sleep_ms(1);
            paused_ms++;
            pthread_mutex_lock(&pub->pool[slot].mu);
            continue;
        }
        if (got == SHM_EFULL && waited_ms < PUBLISH_FULL_WAIT_MS) {
            /* Let consumers catch up, without holding the pool slot. */
            pthread_mutex_unlock(&pub->pool[slot].mu);
            sleep_ms(1);
            waited_ms++;
            pthread_mutex_lock(&pub->pool[slot].mu);
            continue;
        }
        if (got < 0) {
            res->last_error = got;
            res->dropped += (uint32_t)(n - done);
            break;
        }
        for (uint32_t i = 0; i < (uint32_t)got; i++) {
            shm_tag_value *v = &vals[done + i];
            v->sequence = c.first_seq + i;
            int len = shm_tag_value_encode(v, shm_slots_buf(&c, i), c.payload);
            /* Cannot fail: the poller refuses segments whose slot payload
             * is below SHM_TAG_VALUE_MAX (main.c); 0 would leave a pad. */
            shm_slots_set_len(&c, i, len > 0 ? (uint32_t)len : 0);
        }
        res->published += (uint32_t)shm_commit(p, &c);
        done += (size_t)got;
    }
    pthread_mutex_unlock(&pub->pool[slot].mu);
}

void publisher_heartbeat(publisher *pub)
{
    for (size_t i = 0; i < pub->n; i++) {
        pthread_mutex_lock(&pub->pool[i].mu);
        shm_producer_heartbeat(pub->pool[i].producer);
        pthread_mutex_unlock(&pub->pool[i].mu);
    }
}

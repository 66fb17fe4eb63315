/*
 * writer_sealer.c — the sealer thread: seals the chunks the main thread
 * closes (and those recovered at start-up) and applies retention, so that
 * neither a rewrite nor a deletion ever delays an acknowledgment.
 *
 * Ownership: the queue belongs to the mutex; everything else here belongs
 * to the thread. A seal that fails for lack of space is retried with
 * backoff (the .open file stays readable meanwhile); any other failure is
 * logged with the file's name and the chunk stays unsealed (still read by
 * queries, recovered again at the next start).
 *
 * Retention (chunk_retention.c) runs after each seal and every 10 s.
 */
#include "log.h"
#include "writer.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define QUEUE_MAX 256
#define RETENTION_EVERY_NS (10ll * 1000000000)
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 10000

struct sealer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char queue[QUEUE_MAX][64];
    unsigned qhead, qlen;
    bool stopping;
    int dirfd;
    writer_options opt;
    writer_counters *ctr;
    bool full_logged;
    chunk_seal_ctx *ctx; /* memory reused from seal to seal */
};

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void seal_one(struct sealer *s, const char *name)
{
    unsigned backoff = BACKOFF_MIN_MS;
    for (;;) {
        chunk_seal_report rep;
        int64_t t0 = writer_mono_ns();
        int rc = chunk_seal_with(s->ctx, s->dirfd, name, 0, &rep);
        if (rc == 0) {
            if (s->full_logged)
                log_info("space is back: sealing resumed");
            s->full_logged = false;
            counter_add(s->ctr->sealed, 1);
            log_info("sealed %s/%s: %llu points, %llu -> %llu bytes (%.2f bytes/point), %u -> %u "
                     "blocks, %s, %.0f ms",
                     s->opt.chunk_dir, rep.sealed_name, (unsigned long long)rep.points,
                     (unsigned long long)rep.bytes_before, (unsigned long long)rep.bytes_after,
                     rep.points ? (double)rep.bytes_after / (double)rep.points : 0.0,
                     rep.blocks_before, rep.blocks_after,
                     !rep.compacted ? "in place"
                     : rep.merged   ? "rewritten through a temporary file"
                                    : "rewritten",
                     (double)(writer_mono_ns() - t0) / 1e6);
            /* Give back what this thread's malloc arena holds free: memory
             * a seal freed stays resident otherwise. */
            malloc_trim(0);
            return;
        }
        if (rc != CHUNK_ENOSPC) {
            counter_add(s->ctr->errors, 1);
            log_error("seal %s/%s: %s (the chunk stays unsealed and readable)", s->opt.chunk_dir,
                      name, chunk_last_error());
            return;
        }
        if (!s->full_logged)
            log_error("seal %s/%s: %s; retrying with backoff", s->opt.chunk_dir, name,
                      chunk_last_error());
        s->full_logged = true;
        pthread_mutex_lock(&s->mu);
        bool stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stopping) {
            log_warn("seal %s/%s: no space at shutdown; left unsealed", s->opt.chunk_dir, name);
            return;
        }
        sleep_ms(backoff);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
}

static void on_deleted(void *ctx, const char *name, uint64_t bytes, int why)
{
    struct sealer *s = ctx;
    if (why < 0)
        log_warn("retention: remove %s/%s: %s", s->opt.chunk_dir, name, strerror(-why));
    else
        log_info("retention: removed %s/%s (%llu bytes, %s)", s->opt.chunk_dir, name,
                 (unsigned long long)bytes,
                 why == 1 ? "older than the age limit" : "over the byte budget");
}

static void run_retention(struct sealer *s)
{
    int n = chunk_retention(s->dirfd, s->opt.retention_age_s, s->opt.retention_bytes,
                            writer_real_ns(), on_deleted, s);
    if (n > 0)
        counter_add(s->ctr->retention_deleted, (uint64_t)n);
}

static void *sealer_main(void *arg)
{
    struct sealer *s = arg;
    int64_t last_retention = 0;
    for (;;) {
        char name[64];
        pthread_mutex_lock(&s->mu);
        while (s->qlen == 0 && !s->stopping) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_sec += 1;
            pthread_cond_timedwait(&s->cv, &s->mu, &dl);
            if (writer_mono_ns() - last_retention >= RETENTION_EVERY_NS)
                break;
        }
        bool have = s->qlen > 0;
        if (have) {
            memcpy(name, s->queue[s->qhead], sizeof name);
            s->qhead = (s->qhead + 1) % QUEUE_MAX;
            s->qlen--;
        }
        bool done = !have && s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (have)
            seal_one(s, name);
        if (have || writer_mono_ns() - last_retention >= RETENTION_EVERY_NS) {
            run_retention(s);
            last_retention = writer_mono_ns();
        }
        if (done)
            return NULL;
    }
}

int sealer_start(sealer **out, const writer_options *o, int dirfd, writer_counters *ctr)
{
    struct sealer *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->opt = *o;
    s->dirfd = dirfd;
    s->ctr = ctr;
    if (chunk_seal_ctx_new(&s->ctx, o->seal_memory) < 0) {
        free(s);
        return -ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    int rc = pthread_create(&s->thread, NULL, sealer_main, s);
    if (rc != 0) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        chunk_seal_ctx_free(&s->ctx);
        free(s);
        return -rc;
    }
    *out = s;
    return 0;
}

void sealer_enqueue(sealer *s, const char *name)
{
    pthread_mutex_lock(&s->mu);
    if (s->qlen < QUEUE_MAX) {
        snprintf(s->queue[(s->qhead + s->qlen) % QUEUE_MAX], sizeof s->queue[0], "%.63s", name);
        s->qlen++;
    } else {
        log_warn("sealer queue full: %s stays unsealed until the next start", name);
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void sealer_stop(sealer **sp)
{
    struct sealer *s = *sp;
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    chunk_seal_ctx_free(&s->ctx);
    free(s);
    *sp = NULL;
}

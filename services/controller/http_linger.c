/*
 * http_linger.c — lingering close (see http_linger.h for why).
 *
 * Each lingering connection is one struct lingerer with one aio, driven by
 * lingerer_cb: first the response write, then reads into a small buffer that
 * is thrown away, until the client closes (or any error), HTTP_LINGER_MAX_BYTES
 * were discarded, or HTTP_LINGER_TIMEOUT_MS have passed since the start
 * (each read's aio timeout is the time left). Then the connection is closed:
 * by then the client has stopped sending, so the close is a FIN, not a RST.
 * Past those limits it is closed with bytes unread, as nng would have.
 *
 * Locking: set->mtx guards the list, the count and `stopping`. The callback
 * decides whether to go on and issues the next read while holding it (start
 * does the same for the write), and http_linger_stop() sets `stopping` and
 * aborts every aio while holding it, so either the operation is issued first
 * and the abort cancels it, or the issuer sees `stopping` — nothing can
 * start after the stop. nng runs aio
 * callbacks on its task threads, never inside the call that starts or aborts
 * an operation, so holding the lock across those calls cannot deadlock.
 * No nng lock is taken under set->mtx but the aio's and the connection's
 * own: the handler's data destructor, which frees the set, runs under the
 * HTTP server's lock, so nng_http_hijack (which takes that lock) is called
 * outside set->mtx. A finished lingerer closes its connection, then leaves
 * the list (waking the stopper when it was the last) and never touches the
 * set again: its aio is freed by nng's reaper (nng_aio_reap; an aio cannot
 * free itself inside its own callback).
 */
#include "http_linger.h"

#include <nng/supplemental/util/platform.h>
#include <stdbool.h>
#include <stdlib.h>

struct lingerer {
    http_linger *set;
    struct lingerer *prev, *next; /* set->head list, under set->mtx */
    nng_http_conn *conn;
    nng_http_res *res;
    nng_aio *aio;
    nng_time deadline;
    size_t discarded;
    bool writing; /* the response write is in flight (else a read) */
    char buf[8192];
};

struct http_linger {
    nng_mtx *mtx;
    nng_cv *idle; /* woken when count drops to 0 */
    struct lingerer *head;
    unsigned count;
    bool stopping;
};

int http_linger_alloc(http_linger **out)
{
    http_linger *set = calloc(1, sizeof *set);
    int rv = set ? 0 : NNG_ENOMEM;
    if (rv == 0 && (rv = nng_mtx_alloc(&set->mtx)) == 0 && (rv = nng_cv_alloc(&set->idle, set->mtx)) != 0)
        nng_mtx_free(set->mtx);
    if (rv != 0) {
        free(set);
        return -rv;
    }
    *out = set;
    return 0;
}

static void unlink_locked(http_linger *set, struct lingerer *g)
{
    if (g->prev)
        g->prev->next = g->next;
    else
        set->head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    if (--set->count == 0)
        nng_cv_wake(set->idle);
}

/* Closes the connection before leaving the list, so that a stopper that
 * sees the list empty knows every connection is closed. Never touches the
 * set after leaving it. */
static void lingerer_finish(struct lingerer *g)
{
    http_linger *set = g->set;
    nng_aio *aio = g->aio;
    nng_http_conn_close(g->conn); /* closes and frees it */
    nng_http_res_free(g->res);
    nng_mtx_lock(set->mtx);
    unlink_locked(set, g);
    nng_mtx_unlock(set->mtx);
    free(g);
    nng_aio_reap(aio);
}

static void lingerer_cb(void *arg)
{
    struct lingerer *g = arg;
    http_linger *set = g->set;
    int rv = nng_aio_result(g->aio);
    if (rv == 0 && !g->writing)
        g->discarded += nng_aio_count(g->aio);

    nng_mtx_lock(set->mtx);
    nng_time now = nng_clock();
    if (rv == 0 && !set->stopping && g->discarded < HTTP_LINGER_MAX_BYTES && now < g->deadline) {
        nng_iov iov = {.iov_buf = g->buf, .iov_len = sizeof g->buf};
        g->writing = false;
        nng_aio_set_iov(g->aio, 1, &iov); /* one element: cannot fail */
        nng_aio_set_timeout(g->aio, (nng_duration)(g->deadline - now));
        nng_http_conn_read(g->conn, g->aio);
        nng_mtx_unlock(set->mtx);
        return;
    }
    nng_mtx_unlock(set->mtx);
    lingerer_finish(g); /* client gone, limit reached, error or stop */
}

int http_linger_start(http_linger *set, nng_http_conn *conn, nng_http_res *res)
{
    struct lingerer *g = calloc(1, sizeof *g);
    if (!g)
        return -NNG_ENOMEM;
    int rv = nng_aio_alloc(&g->aio, lingerer_cb, g);
    if (rv != 0) {
        free(g);
        return -rv;
    }
    g->set = set;
    g->conn = conn;
    g->res = res;
    g->writing = true;
    g->deadline = nng_clock() + HTTP_LINGER_TIMEOUT_MS;

    /* Take a place in the list first: hijacking is for good. */
    nng_mtx_lock(set->mtx);
    if (set->stopping)
        rv = NNG_ECLOSED;
    else if (set->count >= HTTP_LINGER_MAX_CONNS)
        rv = NNG_EBUSY;
    if (rv == 0) {
        g->next = set->head;
        if (set->head)
            set->head->prev = g;
        set->head = g;
        set->count++;
    }
    nng_mtx_unlock(set->mtx);
    /* From here on nng's server forgets conn and its request. Not under
     * set->mtx: nng_http_hijack takes the server's lock, and nng calls the
     * handler's data destructor (which frees this set) under that lock. */
    if (rv == 0 && (rv = nng_http_hijack(conn)) != 0) {
        nng_mtx_lock(set->mtx);
        unlink_locked(set, g);
        nng_mtx_unlock(set->mtx);
    }
    if (rv != 0) {
        nng_aio_free(g->aio); /* never started: no callback can run */
        free(g);
        return -rv;
    }

    nng_mtx_lock(set->mtx);
    if (set->stopping) { /* stopped while we hijacked: its abort missed us */
        nng_mtx_unlock(set->mtx);
        lingerer_finish(g);
        return 0;
    }
    nng_aio_set_timeout(g->aio, HTTP_LINGER_TIMEOUT_MS);
    nng_http_conn_write_res(conn, res, g->aio);
    nng_mtx_unlock(set->mtx);
    return 0;
}

void http_linger_stop(http_linger *set)
{
    nng_mtx_lock(set->mtx);
    set->stopping = true;
    for (struct lingerer *g = set->head; g; g = g->next)
        nng_aio_abort(g->aio, NNG_ECLOSED); /* its callback sees stopping either way */
    while (set->count > 0)
        nng_cv_wait(set->idle);
    nng_mtx_unlock(set->mtx);
}

void http_linger_free(http_linger **setp)
{
    http_linger *set = *setp;
    if (!set)
        return;
    http_linger_stop(set);
    nng_cv_free(set->idle);
    nng_mtx_free(set->mtx);
    free(set);
    *setp = NULL;
}

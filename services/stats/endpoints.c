/*
 * endpoints.c — nng REP and PUB sockets of the stats service (see
 * endpoints.h). All calls come from the service's one thread.
 */
#include "endpoints.h"

#include <errno.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void set_err(char *err, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
}

static int listen_ipc(nng_socket s, const char *path, char *err, size_t err_len)
{
    char url[ENDPOINT_PATH_MAX + 8];
    snprintf(url, sizeof url, "ipc://%s", path);
    /* The socket file is born 0660: no window where others could connect. */
    mode_t old = umask(S_IXUSR | S_IXGRP | S_IRWXO);
    int rv = nng_listen(s, url, NULL, 0);
    umask(old);
    if (rv != 0) {
        set_err(err, err_len, "listen %s: %s", url, nng_strerror(rv));
        return -1;
    }
    if (chmod(path, 0660) != 0) {
        set_err(err, err_len, "chmod 0660 %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

int endpoints_open(endpoints *e, const char *run_dir, const char *segment, uint32_t shard_k,
                   uint32_t shard_n, size_t recv_max, char *err, size_t err_len)
{
    memset(e, 0, sizeof *e);
    e->recv_max = recv_max;
    char suffix[16] = "";
    if (shard_n > 1)
        snprintf(suffix, sizeof suffix, "-%u", shard_k);
    int n1 = snprintf(e->rep_path, sizeof e->rep_path, "%s/%s.stats%s", run_dir, segment, suffix);
    int n2 =
        snprintf(e->pub_path, sizeof e->pub_path, "%s/%s.stats-pub%s", run_dir, segment, suffix);
    if (n1 < 0 || n2 < 0 || (size_t)n1 >= sizeof e->rep_path || (size_t)n2 >= sizeof e->pub_path) {
        set_err(err, err_len, "socket path under '%s' is longer than %d bytes", run_dir,
                ENDPOINT_PATH_MAX - 1);
        return -1;
    }
    if (mkdir(run_dir, 0770) != 0 && errno != EEXIST) {
        set_err(err, err_len, "create run directory %s: %s", run_dir, strerror(errno));
        return -1;
    }
    int rv = nng_rep0_open(&e->rep);
    if (rv != 0) {
        set_err(err, err_len, "open REP socket: %s", nng_strerror(rv));
        goto fail;
    }
    e->rep_open = 1;
    nng_socket_set_size(e->rep, NNG_OPT_RECVMAXSZ, recv_max);
    if (listen_ipc(e->rep, e->rep_path, err, err_len))
        goto fail;
    rv = nng_pub0_open(&e->pub);
    if (rv != 0) {
        set_err(err, err_len, "open PUB socket: %s", nng_strerror(rv));
        goto fail;
    }
    e->pub_open = 1;
    if (listen_ipc(e->pub, e->pub_path, err, err_len))
        goto fail;
    return 0;
fail:
    endpoints_close(e);
    return -1;
}

void endpoints_close(endpoints *e)
{
    if (e->pub_open)
        nng_close(e->pub);
    if (e->rep_open)
        nng_close(e->rep);
    e->pub_open = e->rep_open = 0;
}

int endpoints_recv(endpoints *e, int timeout_ms, nng_msg **msg)
{
    int flags = 0;
    if (timeout_ms <= 0)
        flags = NNG_FLAG_NONBLOCK;
    else
        nng_socket_set_ms(e->rep, NNG_OPT_RECVTIMEO, timeout_ms);
    int rv = nng_recvmsg(e->rep, msg, flags);
    if (rv == 0)
        return 1;
    if (rv == NNG_EAGAIN || rv == NNG_ETIMEDOUT)
        return 0;
    return -1;
}

int endpoints_reply(endpoints *e, const char *text, size_t len)
{
    return nng_send(e->rep, (void *)text, len, 0);
}

int endpoints_publish(endpoints *e, const char *text, size_t len)
{
    return nng_send(e->pub, (void *)text, len, NNG_FLAG_NONBLOCK);
}

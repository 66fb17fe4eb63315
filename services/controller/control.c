/*
 * control.c — the REP socket and the thread that serves it. One request at a
 * time (REP is strictly request/reply); each is answered by control_handle().
 * nng's receive limit is set above CTL_REQUEST_MAX so that an oversize request
 * still reaches us and gets an error answer; beyond CONTROL_RECV_MAX nng
 * drops the connection instead of buffering it.
 */
#include "control.h"

#include "ipc.h"
#include "log.h"

#include <nng/protocol/reqrep0/rep.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_RECV_MAX (1024 * 1024)

static void *serve(void *arg)
{
    controller *c = arg;
    for (;;) {
        nng_msg *msg;
        int rv = nng_recvmsg(c->rep, &msg, 0);
        if (rv == NNG_ECLOSED)
            break;
        if (rv != 0) {
            log_warn("control: receive: %s", nng_strerror(rv));
            continue;
        }
        char *answer = control_handle(c, nng_msg_body(msg), nng_msg_len(msg));
        const char *text = answer ? answer : "{\"error\":\"out of memory\"}";
        nng_msg_clear(msg); /* reuse the message: it carries the REP routing header */
        if (nng_msg_append(msg, text, strlen(text)) != 0 || nng_sendmsg(c->rep, msg, 0) != 0)
            nng_msg_free(msg);
        free(answer);
    }
    return NULL;
}

int control_start(controller *c)
{
    int rv = nng_rep0_open(&c->rep);
    if (rv != 0)
        return rv;
    c->rep_open = true;
    if ((rv = nng_socket_set_size(c->rep, NNG_OPT_RECVMAXSZ, CONTROL_RECV_MAX)) != 0 ||
        (rv = ctl_ipc_listen(c->rep, c->control_url)) != 0) {
        nng_close(c->rep);
        c->rep_open = false;
        return rv;
    }
    if (pthread_create(&c->control_thread, NULL, serve, c) != 0) {
        nng_close(c->rep);
        c->rep_open = false;
        return NNG_ENOMEM;
    }
    c->control_running = true;
    return 0;
}

void control_stop(controller *c)
{
    if (c->rep_open) {
        nng_close(c->rep);
        c->rep_open = false;
    }
    if (c->control_running) {
        pthread_join(c->control_thread, NULL);
        c->control_running = false;
    }
}

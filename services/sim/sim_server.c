/*
 * sim_server.c — poll loop of shmbus-sim (see sim_server.h). A request for
 * a unit id the device has no tags for gets no answer at all, as a dead
 * slave behind a gateway would behave; a read outside the unit's tables
 * gets libmodbus's ILLEGAL DATA ADDRESS exception.
 */
#include "sim_server.h"

#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 4096

int sim_listener_open(sim_listener *l, const char *bind_addr, uint16_t port,
                      const config_device *d)
{
    memset(l, 0, sizeof *l);
    l->fd = -1;
    l->port = port;
    int rc = sim_image_build(d, &l->image);
    if (rc < 0)
        return rc;
    l->ctx = modbus_new_tcp(bind_addr, port);
    if (!l->ctx) {
        rc = -errno;
        log_error("device %s: cannot create a Modbus context: %s", d->name,
                  modbus_strerror(errno));
        goto fail;
    }
    /* A client that stalls mid-frame must not hold the thread for long. */
    modbus_set_indication_timeout(l->ctx, 1, 0);
    modbus_set_byte_timeout(l->ctx, 0, 200000);
    l->fd = modbus_tcp_listen(l->ctx, 64);
    if (l->fd < 0) {
        rc = -errno;
        log_error("device %s: cannot listen on %s:%u: %s", d->name, bind_addr, port,
                  modbus_strerror(errno));
        goto fail;
    }
    return 0;
fail:
    sim_listener_close(l);
    return rc < 0 ? rc : -EIO;
}

void sim_listener_close(sim_listener *l)
{
    if (l->fd >= 0)
        close(l->fd);
    l->fd = -1;
    if (l->ctx) {
        modbus_set_socket(l->ctx, -1);
        modbus_free(l->ctx);
    }
    l->ctx = NULL;
    sim_image_free(&l->image);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answers one request from a client of l; returns -1 when the client is
 * gone or sent garbage (the connection is then closed). */
static int serve_request(sim_listener *l, int fd, const sim_options *opts)
{
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    modbus_set_socket(l->ctx, fd);
    int rc = modbus_receive(l->ctx, query);
    if (rc <= 0)
        return rc < 0 ? -1 : 0;
    int header = modbus_get_header_length(l->ctx);
    if (rc < header + 1)
        return 0;
    sim_unit *u = sim_image_unit(&l->image, query[header - 1]);
    if (!u)
        return 0; /* no such slave: stay silent */
    int fc = query[header];
    if (fc >= 1 && fc <= 4 && rc >= header + 5) {
        unsigned addr = (unsigned)(query[header + 1] << 8 | query[header + 2]);
        unsigned count = (unsigned)(query[header + 3] << 8 | query[header + 4]);
        sim_unit_refresh(u, fc, addr, count, opts->frozen_ms > 0 ? opts->frozen_ms : now_ms());
    }
    if (opts->delay_ms) {
        struct timespec d = {.tv_sec = opts->delay_ms / 1000,
                             .tv_nsec = (long)(opts->delay_ms % 1000) * 1000000};
        nanosleep(&d, NULL);
    }
    return modbus_reply(l->ctx, query, rc, u->map) < 0 ? -1 : 0;
}

int sim_serve(sim_listener **listeners, size_t n, const sim_options *opts)
{
    size_t cap = n + MAX_CLIENTS;
    struct pollfd *fds = calloc(cap, sizeof *fds);
    sim_listener **owner = calloc(cap, sizeof *owner);
    if (!fds || !owner) {
        free(fds);
        free(owner);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        fds[i] = (struct pollfd){.fd = listeners[i]->fd, .events = POLLIN};
        owner[i] = listeners[i];
    }
    size_t nfds = n;
    int status = 0;
    while (!*opts->stop) {
        int ready = poll(fds, nfds, 200);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready < 0) {
            log_error("poll: %s", strerror(errno));
            status = -1;
            break;
        }
        for (size_t i = 0; i < nfds && ready > 0; i++) {
            if (!fds[i].revents)
                continue;
            ready--;
            if (i < n) {
                int c = accept(fds[i].fd, NULL, NULL);
                if (c < 0)
                    continue;
                if (nfds == cap) {
                    close(c);
                    continue;
                }
                fds[nfds] = (struct pollfd){.fd = c, .events = POLLIN};
                owner[nfds++] = owner[i];
                continue;
            }
            if (serve_request(owner[i], fds[i].fd, opts) < 0 ||
                (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL))) {
                close(fds[i].fd);
                fds[i] = fds[nfds - 1];
                owner[i] = owner[nfds - 1];
                nfds--;
                i--; /* look at the entry moved here */
            }
        }
    }
    for (size_t i = n; i < nfds; i++)
        close(fds[i].fd);
    free(fds);
    free(owner);
    return status;
}

/*
 * link_rtu_tcp.c — RTU over TCP: Modbus RTU frames (unit id + PDU + CRC-16)
 * on a plain TCP socket, as serial-to-Ethernet gateways forward them.
 * libmodbus cannot do this, so the framing is ours (rtu_frame.c).
 *
 * There is no transaction id to tell a late answer from the current one, so
 * the socket is drained before every request (a non-blocking read, usually
 * finding nothing), and after an error for a short grace period too. A
 * frame is accepted only when its CRC, unit, function and length all match
 * the request.
 */
#include "link.h"
#include "rtu_frame.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FLUSH_GRACE_MS 50

typedef struct link_rtu_tcp {
    mb_link base;
    int fd;
} link_rtu_tcp;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rt_close(mb_link *l)
{
    link_rtu_tcp *r = (link_rtu_tcp *)l;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    l->connected = 0;
}

/* Connects one address with a timeout; returns the socket or -errno. */
static int connect_addr(const struct addrinfo *ai, int timeout_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc < 0 && errno != EINPROGRESS) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (rc < 0) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        rc = poll(&p, 1, timeout_ms);
        int err = 0;
        socklen_t len = sizeof err;
        if (rc == 0)
            err = ETIMEDOUT;
        else if (rc < 0)
            err = errno;
        else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            close(fd);
            return -err;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int rt_connect(mb_link *l)
{
    link_rtu_tcp *r = (link_rtu_tcp *)l;
    rt_close(l);
    char port[8];
    snprintf(port, sizeof port, "%u", l->device->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int g = getaddrinfo(l->device->host, port, &hints, &res);
    if (g != 0) {
        snprintf(l->error, sizeof l->error, "resolve %s: %s", l->device->host, gai_strerror(g));
        return -EHOSTUNREACH;
    }
    int rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        rc = connect_addr(ai, (int)l->device->response_timeout_ms);
        if (rc >= 0)
            break;
    }
    freeaddrinfo(res);
    if (rc < 0) {
        snprintf(l->error, sizeof l->error, "connect %s:%u: %s", l->device->host,
                 l->device->port, strerror(-rc));
        return rc;
    }
    r->fd = rc;
    l->connected = 1;
    return 0;
}

/* Reads exactly n bytes before deadline_ms (monotonic). Returns LINK_OK,
 * LINK_TIMEOUT or LINK_CLOSED. */
static int read_exact(link_rtu_tcp *r, uint8_t *buf, size_t n, int64_t deadline_ms)
{
    size_t got = 0;
    while (got < n) {
        int wait = (int)(deadline_ms - mono_ms());
        if (wait < 0)
            return LINK_TIMEOUT;
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        int rc = poll(&p, 1, wait);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc == 0)
            return LINK_TIMEOUT;
        ssize_t k = recv(r->fd, buf + got, n - got, MSG_DONTWAIT);
        if (k > 0) {
            got += (size_t)k;
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        snprintf(r->base.error, sizeof r->base.error, "%s",
                 k == 0 ? "connection closed by the device" : strerror(errno));
        return LINK_CLOSED;
    }
    return LINK_OK;
}

/* Discards pending bytes; waits up to grace_ms for more to arrive. Returns
 * -1 when the connection turned out closed. */
static int drain(link_rtu_tcp *r, int grace_ms)
{
    uint8_t junk[512];
    int64_t until = mono_ms() + grace_ms;
    for (;;) {
        ssize_t k = recv(r->fd, junk, sizeof junk, MSG_DONTWAIT);
        if (k > 0)
            continue;
        if (k == 0)
            return -1;
        if (errno != EAGAIN && errno != EINTR)
            return -1;
        int wait = (int)(until - mono_ms());
        if (wait <= 0)
            return 0;
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        if (poll(&p, 1, wait) <= 0)
            return 0;
    }
}

static int rt_read(mb_link *l, uint8_t unit, uint8_t fc, uint16_t addr, uint16_t count,
                   uint16_t *regs, uint8_t *bits, uint8_t *exception)
{
    link_rtu_tcp *r = (link_rtu_tcp *)l;
    if (!l->connected)
        return LINK_CLOSED;
    if (drain(r, 0) < 0) {
        snprintf(l->error, sizeof l->error, "connection closed by the device");
        rt_close(l);
        return LINK_CLOSED;
    }
    uint8_t req[RTU_REQUEST_LEN];
    rtu_build_read(unit, fc, addr, count, req);
    size_t sent = 0;
    while (sent < sizeof req) {
        ssize_t k = send(r->fd, req + sent, sizeof req - sent, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = r->fd, .events = POLLOUT};
            poll(&p, 1, (int)l->device->response_timeout_ms);
            continue;
        }
        if (k <= 0) {
            snprintf(l->error, sizeof l->error, "send: %s", strerror(errno));
            rt_close(l);
            return LINK_CLOSED;
        }
        sent += (size_t)k;
    }
    uint8_t frame[RTU_MAX_FRAME + 8];
    int64_t start = mono_ms();
    int rc = read_exact(r, frame, 3, start + l->device->response_timeout_ms);
    if (rc == LINK_OK) {
        size_t len = rtu_response_len(frame);
        uint32_t byte_ms = l->device->byte_timeout_ms ? l->device->byte_timeout_ms
                                                      : l->device->response_timeout_ms;
        if (len > sizeof frame)
            len = sizeof frame; /* cannot happen: a byte count is at most 255 */
        rc = read_exact(r, frame + 3, len - 3, mono_ms() + byte_ms);
        if (rc == LINK_OK) {
            int status = rtu_parse_read(frame, len, unit, fc, count, regs, bits, exception);
            if (status == RTU_OK)
                return LINK_OK;
            if (status == RTU_EXCEPTION)
                return LINK_EXCEPTION;
            snprintf(l->error, sizeof l->error, "%s", rtu_strerror(status));
            return LINK_BAD_FRAME;
        }
    }
    if (rc == LINK_TIMEOUT)
        snprintf(l->error, sizeof l->error, "no complete answer within the timeout");
    if (rc == LINK_CLOSED)
        rt_close(l);
    return rc;
}

static void rt_flush(mb_link *l)
{
    link_rtu_tcp *r = (link_rtu_tcp *)l;
    if (l->connected && drain(r, FLUSH_GRACE_MS) < 0)
        rt_close(l);
}

static void rt_destroy(mb_link *l)
{
    free(l);
}

static const mb_link_ops rtu_tcp_ops = {
    .connect = rt_connect, .close = rt_close, .read = rt_read, .flush = rt_flush,
    .destroy = rt_destroy};

mb_link *link_rtu_tcp_new(const config_device *d)
{
    link_rtu_tcp *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->base.ops = &rtu_tcp_ops;
    r->base.device = d;
    r->fd = -1;
    return &r->base;
}

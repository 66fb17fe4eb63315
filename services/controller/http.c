/*
 * http.c — routing HTTP requests to the views and /metrics.
 *
 * One nng handler takes every path and every method ("/" as a tree, method
 * NULL) and routes by itself, because nng's own matching would answer
 * "/metrics/" like "/metrics", and would read request bodies up to 1 MiB
 * before any handler sees the request. Bodies are never read here (no
 * endpoint takes one): the handler refuses oversize ones from their
 * Content-Length and closes any connection that sent a body, so the unread
 * bytes can never be taken for the next request. Headers larger than nng's
 * 8 KiB request buffer are refused by nng itself (the connection is closed).
 *
 * Handlers run on nng's threads; they read the controller's view under its
 * lock (views.c, metrics.c).
 */
#include "http.h"

#include "log.h"
#include "metrics.h"
#include "strbuf.h"
#include "views.h"

#include <errno.h>
#include <nng/supplemental/http/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_server {
    nng_http_server *srv;
};

enum route { R_BUFFER, R_MEMBERS, R_PRESSURE, R_HEALTH, R_METRICS, R_NONE };

static const struct {
    const char *path;
    enum route route;
} routes[] = {
    {"/api/buffer/status", R_BUFFER}, {"/api/members", R_MEMBERS}, {"/api/pressure", R_PRESSURE},
    {"/healthz", R_HEALTH},           {"/metrics", R_METRICS},
};

int http_url_from_addr(const char *addr, char *url, size_t len)
{
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    if (!colon || colon == addr || !colon[1])
        return -1;
    if (addr[0] == '[' && colon[-1] != ']')
        return -1;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end || errno || port < 1 || port > 65535)
        return -1;
    int n = snprintf(url, len, "http://%.*s:%ld", (int)(colon - addr), addr, port);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static enum route find_route(const char *uri)
{
    size_t n = strcspn(uri, "?#");
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strlen(routes[i].path) == n && strncmp(uri, routes[i].path, n) == 0)
            return routes[i].route;
    return R_NONE;
}

/* nng 1.5 knows no reason phrase for some codes (413 reads "Unknown HTTP
 * Status"), so every status we send carries its own. */
static const char *reason(uint16_t status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Internal Server Error";
    }
}

/* Hands a response to nng. body is copied. */
static void respond(nng_aio *aio, uint16_t status, const char *type, const char *body, size_t len,
                    bool close_conn)
{
    nng_http_res *res;
    if (nng_http_res_alloc(&res) != 0) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    if (nng_http_res_set_status(res, status) != 0 ||
        nng_http_res_set_reason(res, reason(status)) != 0 ||
        nng_http_res_set_header(res, "Content-Type", type) != 0 ||
        nng_http_res_set_header(res, "Cache-Control", "no-store") != 0 ||
        (status == 405 && nng_http_res_set_header(res, "Allow", "GET, HEAD") != 0) ||
        (close_conn && nng_http_res_set_header(res, "Connection", "close") != 0) ||
        nng_http_res_copy_data(res, body, len) != 0) {
        nng_http_res_free(res);
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void respond_json(nng_aio *aio, uint16_t status, json_t *doc, bool close_conn)
{
    char *text = doc ? json_dumps(doc, CTL_JSON_FLAGS) : NULL;
    json_decref(doc);
    if (!text) {
        const char *oom = "{\"error\":\"out of memory\"}";
        respond(aio, 500, "application/json", oom, strlen(oom), true);
        return;
    }
    size_t n = strlen(text);
    char *line = realloc(text, n + 2); /* a trailing newline reads better in a terminal */
    if (line) {
        line[n++] = '\n';
        line[n] = '\0';
        text = line;
    }
    respond(aio, status, "application/json", text, n, close_conn);
    free(text);
}

static void respond_error(nng_aio *aio, uint16_t status, const char *msg, bool close_conn)
{
    respond_json(aio, status, json_pack("{s:s}", "error", msg), close_conn);
}

static void serve_metrics(controller *c, nng_aio *aio, bool close_conn)
{
    strbuf b = {0};
    if (metrics_render(c, &b) != 0 || !b.data) {
        strbuf_free(&b);
        respond_error(aio, 500, "out of memory", true);
        return;
    }
    respond(aio, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, close_conn);
    strbuf_free(&b);
}

static void handle(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    controller *c = nng_http_handler_get_data(h);
    const char *method = nng_http_req_get_method(req);
    const char *uri = nng_http_req_get_uri(req);
    const char *cl = nng_http_req_get_header(req, "Content-Length");
    const char *te = nng_http_req_get_header(req, "Transfer-Encoding");

    bool has_body = te != NULL;
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end || errno || cl[0] == '-') {
            respond_error(aio, 400, "bad Content-Length", true);
            return;
        }
        if (n > CTL_REQUEST_MAX) {
            respond_error(aio, 413, "request body too large", true);
            return;
        }
        has_body |= n > 0;
    }
    if (te) {
        respond_error(aio, 411, "chunked request bodies are not accepted", true);
        return;
    }
    enum route r = find_route(uri);
    if (r == R_NONE) {
        respond_error(aio, 404, "not found", has_body);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        respond_error(aio, 405, "method not allowed", has_body);
        return;
    }
    bool healthy = true;
    switch (r) {
    case R_BUFFER:
        respond_json(aio, 200, view_buffer(c), has_body);
        break;
    case R_MEMBERS:
        respond_json(aio, 200, view_members(c), has_body);
        break;
    case R_PRESSURE:
        respond_json(aio, 200, view_pressure(c), has_body);
        break;
    case R_HEALTH: {
        json_t *doc = view_health(c, &healthy);
        respond_json(aio, healthy ? 200 : 503, doc, has_body);
        break;
    }
    case R_METRICS:
        serve_metrics(c, aio, has_body);
        break;
    default:
        respond_error(aio, 404, "not found", has_body);
        break;
    }
}

int http_start(controller *c, const char *addr)
{
    char url_text[CTL_ADDR_MAX + 16];
    if (http_url_from_addr(addr, url_text, sizeof url_text) != 0) {
        log_error("controller.http: '%s' is not host:port", addr);
        return NNG_EADDRINVAL;
    }
    struct http_server *hs = calloc(1, sizeof *hs);
    nng_url *url = NULL;
    nng_http_handler *h = NULL;
    int rv = hs ? 0 : NNG_ENOMEM;
    if (rv == 0)
        rv = nng_url_parse(&url, url_text);
    if (rv == 0)
        rv = nng_http_server_hold(&hs->srv, url);
    if (rv != 0)
        goto fail;
    if ((rv = nng_http_handler_alloc(&h, "/", handle)) != 0 ||
        (rv = nng_http_handler_set_method(h, NULL)) != 0 ||
        (rv = nng_http_handler_set_tree(h)) != 0 ||
        (rv = nng_http_handler_collect_body(h, false, 0)) != 0 ||
        (rv = nng_http_handler_set_data(h, c, NULL)) != 0 ||
        (rv = nng_http_server_add_handler(hs->srv, h)) != 0) {
        if (h)
            nng_http_handler_free(h);
        goto fail;
    }
    if ((rv = nng_http_server_start(hs->srv)) != 0)
        goto fail;
    nng_url_free(url);
    c->http = hs;
    log_info("http: serving %s", url_text);
    return 0;
fail:
    log_error("http: cannot serve %s: %s", url_text, nng_strerror(rv));
    if (hs && hs->srv)
        nng_http_server_release(hs->srv);
    if (url)
        nng_url_free(url);
    free(hs);
    return rv;
}

void http_stop(controller *c)
{
    if (!c->http)
        return;
    nng_http_server_stop(c->http->srv);
    nng_http_server_release(c->http->srv);
    free(c->http);
    c->http = NULL;
}

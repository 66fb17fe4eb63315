/*
 * http.c — routing HTTP requests to the views and /metrics.
 *
 * One nng handler takes every path and every method ("/" as a tree, method
 * NULL) and routes by itself, because nng's own matching would answer
 * "/metrics/" like "/metrics", and would read request bodies up to 1 MiB
 * before any handler sees the request. Bodies are never read as requests (no
 * endpoint takes one): the handler refuses oversize ones from their
 * Content-Length, and a connection whose request sent or announced a body
 * (Content-Length > 0, a malformed Content-Length, Transfer-Encoding) is
 * answered with "Connection: close", so the unread bytes can never be taken
 * for the next request. Such an answer goes through http_linger.c: it writes
 * the response itself and reads and discards what the client still sends
 * before closing (bounded in bytes, time and connections), because closing
 * with unread bytes makes Linux reset the connection, and a client still
 * uploading would then lose the answer. Headers larger than nng's 8 KiB
 * request buffer are refused by nng itself (the connection is closed).
 *
 * Handlers run on nng's threads; they read the controller's view under its
 * lock (views.c, metrics.c). The handler's data (struct http_ctx: the
 * controller and the linger set) is freed by nng when it drops the handler,
 * after the last callback, so a handler still running while http_stop()
 * stops the server finds the linger set stopped, never freed.
 */
#include "http.h"

#include "http_linger.h"
#include "log.h"
#include "metrics.h"
#include "strbuf.h"
#include "views.h"

#include <errno.h>
#include <nng/supplemental/http/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_ctx { /* the handler's data */
    controller *c;
    http_linger *linger;
};

struct http_server {
    nng_http_server *srv;
    http_linger *linger; /* owned by the handler's http_ctx */
};

/* How a response ends its connection. */
enum ending {
    KEEP_OPEN,
    CLOSE,  /* "Connection: close", nng closes at once */
    LINGER, /* "Connection: close", the request sent a body: http_linger.c */
};

static enum ending closing(enum ending e)
{
    return e == KEEP_OPEN ? CLOSE : e;
}

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

/* A response; body is copied. head_only: no body, but the Content-Length
 * of one (nng prunes bodies of HEAD answers itself; a lingering answer is
 * written by us). Returns NULL when out of memory. */
static nng_http_res *build_res(uint16_t status, const char *type, const char *body, size_t len,
                               bool close_conn, bool head_only)
{
    nng_http_res *res;
    char length[24];
    snprintf(length, sizeof length, "%zu", len);
    if (nng_http_res_alloc(&res) != 0)
        return NULL;
    if (nng_http_res_set_status(res, status) != 0 ||
        nng_http_res_set_reason(res, reason(status)) != 0 ||
        nng_http_res_set_header(res, "Content-Type", type) != 0 ||
        nng_http_res_set_header(res, "Cache-Control", "no-store") != 0 ||
        (status == 405 && nng_http_res_set_header(res, "Allow", "GET, HEAD") != 0) ||
        (close_conn && nng_http_res_set_header(res, "Connection", "close") != 0) ||
        (head_only ? nng_http_res_set_header(res, "Content-Length", length)
                   : nng_http_res_copy_data(res, body, len)) != 0) {
        nng_http_res_free(res);
        return NULL;
    }
    return res;
}

/* Answers the handler's aio. With LINGER the connection is handed to
 * http_linger.c when it has room (then the request is ours to free and nng
 * gets no response); otherwise nng writes the response and closes. */
static void respond(nng_aio *aio, uint16_t status, const char *type, const char *body, size_t len,
                    enum ending ending)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    struct http_ctx *ctx = nng_http_handler_get_data(h);
    bool linger = ending == LINGER;
    bool head = strcmp(nng_http_req_get_method(req), "HEAD") == 0;
    nng_http_res *res = build_res(status, type, body, len, ending != KEEP_OPEN, linger && head);
    if (!res) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    if (linger && http_linger_start(ctx->linger, nng_aio_get_input(aio, 2), res) == 0) {
        nng_http_req_free(req);
        nng_aio_set_output(aio, 0, NULL);
        nng_aio_finish(aio, 0);
        return;
    }
    if (linger && head) { /* refused: nng answers, and prunes the body itself */
        nng_http_res_free(res);
        if (!(res = build_res(status, type, body, len, true, false))) {
            nng_aio_finish(aio, NNG_ENOMEM);
            return;
        }
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

static void respond_json(nng_aio *aio, uint16_t status, json_t *doc, enum ending ending)
{
    char *text = doc ? json_dumps(doc, CTL_JSON_FLAGS) : NULL;
    json_decref(doc);
    if (!text) {
        const char *oom = "{\"error\":\"out of memory\"}";
        respond(aio, 500, "application/json", oom, strlen(oom), closing(ending));
        return;
    }
    size_t n = strlen(text);
    char *line = realloc(text, n + 2); /* a trailing newline reads better in a terminal */
    if (line) {
        line[n++] = '\n';
        line[n] = '\0';
        text = line;
    }
    respond(aio, status, "application/json", text, n, ending);
    free(text);
}

static void respond_error(nng_aio *aio, uint16_t status, const char *msg, enum ending ending)
{
    respond_json(aio, status, json_pack("{s:s}", "error", msg), ending);
}

static void serve_metrics(controller *c, nng_aio *aio, enum ending ending)
{
    strbuf b = {0};
    if (metrics_render(c, &b) != 0 || !b.data) {
        strbuf_free(&b);
        respond_error(aio, 500, "out of memory", closing(ending));
        return;
    }
    respond(aio, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, ending);
    strbuf_free(&b);
}

static void handle(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    controller *c = ((struct http_ctx *)nng_http_handler_get_data(h))->c;
    const char *method = nng_http_req_get_method(req);
    const char *uri = nng_http_req_get_uri(req);
    const char *cl = nng_http_req_get_header(req, "Content-Length");
    const char *te = nng_http_req_get_header(req, "Transfer-Encoding");

    /* Each respond*() below is the last use of req: a lingering answer frees it. */
    bool has_body = te != NULL;
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end == cl || *end || errno || cl[0] == '-') {
            respond_error(aio, 400, "bad Content-Length", LINGER);
            return;
        }
        if (n > CTL_REQUEST_MAX) {
            respond_error(aio, 413, "request body too large", LINGER);
            return;
        }
        has_body |= n > 0;
    }
    if (te) {
        respond_error(aio, 411, "chunked request bodies are not accepted", LINGER);
        return;
    }
    enum ending ending = has_body ? LINGER : KEEP_OPEN;
    enum route r = find_route(uri);
    if (r == R_NONE) {
        respond_error(aio, 404, "not found", ending);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        respond_error(aio, 405, "method not allowed", ending);
        return;
    }
    bool healthy = true;
    switch (r) {
    case R_BUFFER:
        respond_json(aio, 200, view_buffer(c), ending);
        break;
    case R_MEMBERS:
        respond_json(aio, 200, view_members(c), ending);
        break;
    case R_PRESSURE:
        respond_json(aio, 200, view_pressure(c), ending);
        break;
    case R_HEALTH: {
        json_t *doc = view_health(c, &healthy);
        respond_json(aio, healthy ? 200 : 503, doc, ending);
        break;
    }
    case R_METRICS:
        serve_metrics(c, aio, ending);
        break;
    default:
        respond_error(aio, 404, "not found", ending);
        break;
    }
}

/* The handler's data destructor: nng calls it once it has dropped the
 * handler, after its last callback. */
static void http_ctx_free(void *arg)
{
    struct http_ctx *ctx = arg;
    http_linger_free(&ctx->linger);
    free(ctx);
}

int http_start(controller *c, const char *addr)
{
    char url_text[CTL_ADDR_MAX + 16];
    if (http_url_from_addr(addr, url_text, sizeof url_text) != 0) {
        log_error("controller.http: '%s' is not host:port", addr);
        return NNG_EADDRINVAL;
    }
    struct http_server *hs = calloc(1, sizeof *hs);
    struct http_ctx *ctx = calloc(1, sizeof *ctx); /* the handler's once set_data took it */
    nng_url *url = NULL;
    nng_http_handler *h = NULL;
    int rv = hs && ctx ? 0 : NNG_ENOMEM;
    if (rv == 0)
        rv = -http_linger_alloc(&ctx->linger);
    if (rv == 0)
        rv = nng_url_parse(&url, url_text);
    if (rv == 0)
        rv = nng_http_server_hold(&hs->srv, url);
    if (rv != 0)
        goto fail;
    ctx->c = c;
    hs->linger = ctx->linger;
    if ((rv = nng_http_handler_alloc(&h, "/", handle)) != 0 ||
        (rv = nng_http_handler_set_method(h, NULL)) != 0 ||
        (rv = nng_http_handler_set_tree(h)) != 0 ||
        (rv = nng_http_handler_collect_body(h, false, 0)) != 0)
        goto fail_handler;
    if ((rv = nng_http_handler_set_data(h, ctx, http_ctx_free)) != 0)
        goto fail_handler;
    ctx = NULL; /* the handler's now */
    if ((rv = nng_http_server_add_handler(hs->srv, h)) != 0)
        goto fail_handler;
    h = NULL; /* the server's now */
    if ((rv = nng_http_server_start(hs->srv)) != 0)
        goto fail;
    nng_url_free(url);
    c->http = hs;
    log_info("http: serving %s", url_text);
    return 0;
fail_handler:
    if (h)
        nng_http_handler_free(h); /* frees ctx when set_data took it */
fail:
    log_error("http: cannot serve %s: %s", url_text, nng_strerror(rv));
    if (hs && hs->srv)
        nng_http_server_release(hs->srv);
    if (url)
        nng_url_free(url);
    if (ctx)
        http_ctx_free(ctx);
    free(hs);
    return rv;
}

void http_stop(controller *c)
{
    if (!c->http)
        return;
    /* Stop accepting and drop nng's connections, then end the lingering
     * ones (which nng no longer knows). The linger set itself stays until
     * nng drops the handler (http_ctx_free). */
    nng_http_server_stop(c->http->srv);
    http_linger_stop(c->http->linger);
    nng_http_server_release(c->http->srv);
    free(c->http);
    c->http = NULL;
}

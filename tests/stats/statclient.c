/*
 * statclient.c — nng requests and /proc memory readings for the stats
 * service tests (see statclient.h).
 */
#include "statclient.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *statclient_ask(const char *url, const void *req, size_t len)
{
    nng_socket s;
    if (nng_req0_open(&s) != 0)
        return NULL;
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
    json_t *j = NULL;
    if (nng_dial(s, url, NULL, NNG_FLAG_NONBLOCK) == 0 && nng_send(s, (void *)req, len, 0) == 0) {
        char *buf = NULL;
        size_t n = 0;
        if (nng_recv(s, &buf, &n, NNG_FLAG_ALLOC) == 0) {
            j = json_loadb(buf, n, 0, NULL);
            if (!j)
                fprintf(stderr, "reply is not JSON: %.*s\n", (int)n, buf);
            nng_free(buf, n);
        }
    }
    nng_close(s);
    return j;
}

long statclient_own_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long anon = -1, file = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "RssAnon:", 8) == 0)
            anon = atol(line + 8);
        else if (strncmp(line, "RssFile:", 8) == 0)
            file = atol(line + 8);
    }
    fclose(f);
    return anon < 0 || file < 0 ? -1 : anon + file;
}

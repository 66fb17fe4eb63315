/*
 * http_linger.h — lingering close for the controller's HTTP server: a
 * response that ends a connection whose request sent (or announced) a body
 * is written by us, and the connection is then read and discarded until the
 * client closes it, a byte cap or a deadline, before it is closed. Closing a
 * socket with unread bytes makes Linux send a RST, and a client still
 * uploading then gets EPIPE/ECONNRESET instead of our answer (Apache's and
 * nginx's lingering_close solve the same problem).
 *
 * Ownership: http_linger_start() takes the connection over from nng's server
 * (nng_http_hijack) and owns it and the response from then on. The set is
 * safe to use from any thread; http_linger_stop() ends every lingering
 * connection and waits until all of them are closed.
 */
#ifndef SHMBUS_CTL_HTTP_LINGER_H
#define SHMBUS_CTL_HTTP_LINGER_H

#include <stddef.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#define HTTP_LINGER_MAX_CONNS 16                 /* lingering at once; more close at once */
#define HTTP_LINGER_MAX_BYTES (16u * 1024 * 1024) /* discarded per connection at most */
#define HTTP_LINGER_TIMEOUT_MS 2000               /* per connection, response write included */

typedef struct http_linger http_linger;

/* Returns 0 or a negative nng error code (-NNG_ENOMEM). */
int http_linger_alloc(http_linger **out);

/* Hijacks conn (a connection of nng's HTTP server, from a handler's aio,
 * input 2), writes res on it, then drains it and closes it. Returns 0 when it
 * took conn and res: the handler must then free the request itself and
 * finish its aio with 0 and no response. Returns -NNG_EBUSY (too many
 * connections lingering), -NNG_ECLOSED (stopped) or -NNG_ENOMEM when it took
 * nothing: the handler answers as usual and nng closes the connection. */
int http_linger_start(http_linger *set, nng_http_conn *conn, nng_http_res *res);

/* Ends every lingering connection and waits until each is closed and its
 * callback done; later starts are refused. Idempotent. */
void http_linger_stop(http_linger *set);

/* Stops (as above) and frees the set; clears *setp. NULL is fine. */
void http_linger_free(http_linger **setp);

#endif

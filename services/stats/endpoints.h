/*
 * endpoints.h — the stats service's nng sockets: REP for queries at
 * ipc://<run_dir>/<segment>.stats[-K] and PUB for summaries at
 * ipc://<run_dir>/<segment>.stats-pub[-K] (-K only when sharded). The socket
 * files are created under umask 0117 and chmod'ed to 0660: owner and group
 * (the shmbus group) only.
 */
#ifndef SHMBUS_STATS_ENDPOINTS_H
#define SHMBUS_STATS_ENDPOINTS_H

#include <nng/nng.h>
#include <stddef.h>
#include <stdint.h>

#define ENDPOINT_PATH_MAX 108 /* sun_path */

typedef struct endpoints {
    nng_socket rep, pub;
    int rep_open, pub_open;
    char rep_path[ENDPOINT_PATH_MAX], pub_path[ENDPOINT_PATH_MAX];
    size_t recv_max; /* nng drops larger messages; the protocol answers up to its own cap */
} endpoints;

/* Opens and listens on both sockets; creates run_dir (0770) if missing.
 * shard_n > 1 adds the -K suffix. Returns 0 or -1 with the reason in err. */
int endpoints_open(endpoints *e, const char *run_dir, const char *segment, uint32_t shard_k,
                   uint32_t shard_n, size_t recv_max, char *err, size_t err_len);
void endpoints_close(endpoints *e);

/* Receives one request, waiting up to timeout_ms (0: do not wait). Returns
 * 1 with *msg set (free with nng_msg_free), 0 when none came, or -1. */
int endpoints_recv(endpoints *e, int timeout_ms, nng_msg **msg);

/* Sends the reply to the request last received. Returns 0 or an nng code. */
int endpoints_reply(endpoints *e, const char *text, size_t len);

/* Publishes one message (never blocks). Returns 0 or an nng code. */
int endpoints_publish(endpoints *e, const char *text, size_t len);

#endif

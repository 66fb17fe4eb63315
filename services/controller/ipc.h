/*
 * ipc.h — listening on an nng ipc:// address with restrictive permissions.
 */
#ifndef SHMBUS_CTL_IPC_H
#define SHMBUS_CTL_IPC_H

#include <nng/nng.h>

#define CTL_IPC_MODE 0660 /* owner and group (the shmbus group) only */

/* Listens on url ("ipc:///run/shmbus/x.control") with the socket file
 * created mode CTL_IPC_MODE: set through nng's ipc:permissions before the
 * listener starts, with the umask tightened while it binds, and checked
 * afterwards. A stale socket file left by a killed controller is replaced
 * (nng removes it when nothing answers on it). Returns 0 or an nng error. */
int ctl_ipc_listen(nng_socket s, const char *url);

#endif

/*
 * ipc.c — ipc:// listeners with restrictive socket-file permissions.
 * nng sets the mode with fchmod after bind; the umask closes the window
 * between bind and that call. The umask is process-wide, which is safe here
 * because listeners are created at start-up before other threads create files.
 */
#include "ipc.h"

#include "log.h"

#include <string.h>
#include <sys/stat.h>

int ctl_ipc_listen(nng_socket s, const char *url)
{
    nng_listener l;
    int rv = nng_listener_create(&l, s, url);
    if (rv != 0)
        return rv;
    rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, CTL_IPC_MODE);
    if (rv != 0)
        goto fail;
    mode_t old = umask(0117);
    rv = nng_listener_start(l, 0);
    umask(old);
    if (rv != 0)
        goto fail;
    const char *path = strncmp(url, "ipc://", 6) == 0 ? url + 6 : NULL;
    struct stat st;
    if (path && stat(path, &st) == 0 && (st.st_mode & 07777) != CTL_IPC_MODE) {
        if (chmod(path, CTL_IPC_MODE) != 0)
            log_warn("%s: cannot set mode %o", path, CTL_IPC_MODE);
    }
    return 0;
fail:
    nng_listener_close(l);
    return rv;
}

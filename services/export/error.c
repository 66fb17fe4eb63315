/*
 * error.c — names of the export's own error codes and -errno values. SHM_E*
 * codes overlap the errno range; they are named with shm_strerror() where
 * they arise, never passed here.
 */
#include "export.h"

#include <string.h>

const char *export_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case EXPORT_EDOWN: return "target unavailable";
    case EXPORT_EREJECT: return "target refused the data or its setup";
    case EXPORT_ETIMEOUT: return "no confirmation in time";
    case EXPORT_ENOMEM: return "out of memory";
    case EXPORT_EIO: return "local file error";
    case EXPORT_ECORRUPT: return "spool data failed its checksum";
    default:
        return err < 0 && err > -4096 ? strerror(-err) : "unknown error";
    }
}

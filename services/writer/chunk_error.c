/*
 * chunk_error.c — CHUNK_E* codes, their texts, and the per-thread diagnostic
 * that names the file and offset of the last failure (as libshm keeps its
 * own in shm_last_error()).
 */
#include "chunk_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512] = "no error";

const char *chunk_strerror(int err)
{
    switch (err) {
    case CHUNK_OK:
        return "ok";
#define CHUNK__ERR_CASE(name, value, text)                                                  \
    case name:                                                                             \
        return text;
        CHUNK_ERRORS(CHUNK__ERR_CASE)
#undef CHUNK__ERR_CASE
    default:
        return "unknown error";
    }
}

const char *chunk_last_error(void)
{
    return last_error;
}

int chunk_errno_code(int errnum)
{
    switch (errnum) {
    case ENOSPC:
    case EDQUOT:
        return CHUNK_ENOSPC;
    case EACCES:
    case EPERM:
    case EROFS:
        return CHUNK_EPERM;
    case ENOENT:
        return CHUNK_ENOENT;
    case ENOMEM:
        return CHUNK_ENOMEM;
    case EEXIST:
        return CHUNK_EEXIST;
    default:
        return CHUNK_EIO;
    }
}

int chunk__fail(int err, const char *fmt, ...)
{
    /* Formatted aside first: callers may pass chunk_last_error() itself. */
    char text[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    memcpy(last_error, text, sizeof text);
    return err;
}

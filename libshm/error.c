/*
 * error.c — error codes and the per-thread diagnostic.
 *
 * Functions return SHM_E* codes; the text of the last failure, with the
 * details a person needs ("segment /shmbus.plant: layout version 3, this
 * build reads 1"), is kept per thread and returned by shm_last_error(), as
 * Varnish keeps the last diagnostic for VSM_Error().
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char last_error[512] = "no error";

const char *shm_strerror(int err)
{
    switch (err) {
    case SHM_OK:
        return "ok";
#define SHM__ERR_CASE(name, value, text)                                                    \
    case name:                                                                             \
        return text;
        SHM_ERRORS(SHM__ERR_CASE)
#undef SHM__ERR_CASE
    default:
        return "unknown error";
    }
}

const char *shm_last_error(void)
{
    return last_error;
}

int shm__fail(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return err;
}

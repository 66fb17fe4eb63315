/*
 * record_names.c — names of the record enums, as the schemas spell them
 * (and as `flatc --json` prints them), for logs, shmstat and JSON output.
 */
#include "record_internal.h"

const char *shm_quality_name(int quality)
{
    static const char *const names[] = {
        [SHM_Q_GOOD] = "GOOD",
        [SHM_Q_BAD] = "BAD",
        [SHM_Q_STALE] = "STALE",
        [SHM_Q_COMM_FAIL] = "COMM_FAIL",
        [SHM_Q_CONFIG_ERROR] = "CONFIG_ERROR",
        [SHM_Q_DEVICE_EXCEPTION] = "DEVICE_EXCEPTION",
        [SHM_Q_DECODE_ERROR] = "DECODE_ERROR",
    };
    if (quality < 0 || (size_t)quality >= sizeof names / sizeof names[0])
        return "UNKNOWN"; /* a value appended by a newer schema */
    return names[quality];
}

const char *shm_data_type_name(int data_type)
{
    static const char *const names[] = {
        [SHM_DT_BOOL] = "BOOL",       [SHM_DT_BIT] = "BIT",       [SHM_DT_INT16] = "INT16",
        [SHM_DT_UINT16] = "UINT16",   [SHM_DT_INT32] = "INT32",   [SHM_DT_UINT32] = "UINT32",
        [SHM_DT_INT64] = "INT64",     [SHM_DT_UINT64] = "UINT64", [SHM_DT_FLOAT32] = "FLOAT32",
        [SHM_DT_FLOAT64] = "FLOAT64", [SHM_DT_STRING] = "STRING",
    };
    if (data_type < 0 || (size_t)data_type >= sizeof names / sizeof names[0])
        return "UNKNOWN";
    return names[data_type];
}

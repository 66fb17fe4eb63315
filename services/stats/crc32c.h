/*
 * crc32c.h — CRC-32C (Castagnoli), the checksum of stats snapshots. Table
 * driven, slicing by 8; incremental: crc32c(crc32c(0, a), b) == crc32c(0, ab).
 */
#ifndef SHMBUS_STATS_CRC32C_H
#define SHMBUS_STATS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t stats_crc32c(uint32_t crc, const void *data, size_t len);

#endif

/*
 * crc32c.c — CRC-32C (Castagnoli), the checksum of spool blocks. A plain
 * byte-wise table: the spool writes kilobytes per batch, so speed does not
 * matter here, and the code stays obviously right (check value of
 * "123456789" is 0xE3069283, tested in tests/export).
 */
#include "export.h"

static uint32_t table[256];
static int table_ready;

static void build_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1; /* reflected polynomial */
        table[i] = c;
    }
    table_ready = 1;
}

uint32_t export_crc32c(uint32_t crc, const void *data, size_t len)
{
    if (!table_ready)
        build_table();
    const uint8_t *p = data;
    crc = ~crc;
    while (len--)
        crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/*
 * writer_main.c — shmbus-writer: persists the records of consumer group
 * `writer` into compressed, checksummed chunk files, acknowledging a batch
 * only once it is durable. See README.md for the contract and the failure
 * modes; writer_loop.c holds the loop.
 */
#include "log.h"
#include "writer.h"

#include <malloc.h>

int main(int argc, char **argv)
{
    log_init("writer");
    /* Keep freed memory in the process: the builder and the sealer reuse the
     * same few megabytes all the time, and on virtual machines every page
     * fault on fresh memory is expensive. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    writer_options o;
    int rc = writer_options_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    return writer_run(&o);
}

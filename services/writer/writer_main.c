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
    /* Memory that is reused (write buffers, the builders' columns, the
     * sealer's buffers) is kept by its owner, not by malloc: glibc's own
     * thresholds are fixed low, so what is freed goes back to the system
     * and the writer's resident memory stays what its plan says (README
     * "Memory"). Left to itself glibc raises them after the first large
     * free and then keeps megabytes of freed heap. */
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    mallopt(M_TRIM_THRESHOLD, 1 << 20);
    writer_options o;
    int rc = writer_options_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    return writer_run(&o);
}

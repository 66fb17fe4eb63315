/*
 * writer_main.c — shmbus-writer: persists the records of consumer group
 * `writer` into compressed, checksummed chunk files, acknowledging a batch
 * only once it is durable. See README.md for the contract and the failure
 * modes; writer_loop.c holds the loop.
 */
#include "log.h"
#include "writer.h"

int main(int argc, char **argv)
{
    log_init("writer");
    writer_options o;
    int rc = writer_options_parse(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    return writer_run(&o);
}

/*  presence-broker: the single writer of presence state. Thin main: parse
    the command line and config, run the server until SIGINT/SIGTERM. */
#include <malloc.h>
#include <stdlib.h>

#include "broker_server.h"
#include "pres_config.h"
#include "pres_log.h"
#include "pres_sched.h"

int
main(int argc, char **argv)
{
    pres_config_t cfg;
    int rc = pres_config_main(&cfg, argc, argv, "presence-broker",
                              "the presence broker: events in, changes out, "
                              "queries, state in LMDB");
    if (rc != 0)
        return rc > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    //  Before any thread starts, so that they all inherit it; refused, the
    //  broker runs on at normal priority (docs/broker.md).
    pres_sched_realtime(cfg.sched_priority);
    //  libzmq's I/O thread allocates receive buffers that this thread
    //  frees; without padding glibc trims the heap after every batch and
    //  the next one page-faults it back (docs/profiles/broker-ingest.md:
    //  +15-25 % events per CPU-second). Costs some tens of MiB of RSS.
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    //  One arena for every thread: glibc never trims the top of a thread
    //  arena below M_TRIM_THRESHOLD, so the I/O thread's burst buffers
    //  (~13 MiB after 100k logins) stayed resident; in the main arena the
    //  idle malloc_trim (broker_server) gives them back.
    mallopt(M_ARENA_MAX, 1);
    broker_server_t *server = broker_server_new(&cfg);
    if (!server)
        return EXIT_FAILURE;
    //  The padding after startup: calloc clears memory taken from a
    //  padded top, which made the startup tables resident.
    mallopt(M_TOP_PAD, 64 << 20);
    rc = broker_server_run(server);
    broker_server_destroy(&server);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}

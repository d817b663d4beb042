/*  presence-broker: the single writer of presence state. Thin main: parse
    the command line and config, run the server until SIGINT/SIGTERM. */
#include <stdlib.h>

#include "broker_server.h"
#include "pres_config.h"
#include "pres_log.h"

int
main(int argc, char **argv)
{
    pres_config_t cfg;
    int rc = pres_config_main(&cfg, argc, argv, "presence-broker",
                              "the presence broker: events in, changes out, "
                              "queries, state in LMDB");
    if (rc != 0)
        return rc > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    broker_server_t *server = broker_server_new(&cfg);
    if (!server)
        return EXIT_FAILURE;
    rc = broker_server_run(server);
    broker_server_destroy(&server);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}

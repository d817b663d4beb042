/*  presence-sweeper: expires sessions whose heartbeats stopped, within 1 s
    of their deadline, by answering the broker's due notices. Thin main:
    config, the server, its loop, teardown; the logic lives in
    sweeper_server and sweeper_due. */
#include <stdlib.h>

#include "pres_config.h"
#include "pres_leader.h"
#include "pres_log.h"
#include "sweeper_server.h"

int
main(int argc, char **argv)
{
    pres_config_t cfg;
    int rc = pres_config_main(&cfg, argc, argv, "presence-sweeper",
                              "Expire presence sessions at their deadline.");
    if (rc != 0)
        return rc > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    if (pres_leader_resolve(&cfg, 3 * cfg.failover_ttl * 1000) != 0)
        return EXIT_FAILURE;
    sweeper_server_t *server = sweeper_server_new(&cfg);
    if (!server)
        return EXIT_FAILURE;
    rc = sweeper_server_run(server);
    sweeper_server_destroy(&server);
    pres_log_info("stopped");
    return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/*  presence-gateway: the HTTP API of the presence service (docs/protocol.md
    section 3). Thin main: config, logging, the gateway object, wait, teardown.
    */
#include <czmq.h>
#include <malloc.h>
#include <stdlib.h>

#include "gateway.h"
#include "pres_config.h"
#include "pres_leader.h"
#include "pres_log.h"

int
main(int argc, char **argv)
{
    pres_config_t cfg;
    int rc = pres_config_main(&cfg, argc, argv, "presence-gateway",
                              "HTTP gateway: login, heartbeat, logout, "
                              "queries, admin and live events.");
    if (rc != 0)
        return rc > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    if (pres_config_make_dirs(&cfg) != 0 ||
        pres_leader_resolve(&cfg, 3 * cfg.failover_ttl * 1000) != 0)
        return EXIT_FAILURE;
    //  czmq installs the SIGINT/SIGTERM handler that sets zsys_interrupted.
    zsys_init();
    gateway_t *gw = gateway_new(&cfg);
    if (!gw)
        return EXIT_FAILURE;
    //  Keep the heap: without padding glibc trims and re-faults it on the
    //  request path (docs/profiles/gateway-heartbeat.md, ~4 %). Set after
    //  startup: calloc clears memory taken from a padded top, so the
    //  startup tables would all be resident (+8 MiB idle RSS).
    mallopt(M_TOP_PAD, 16 << 20);
    pres_log_info("ready");
    while (!zsys_interrupted)
        zclock_sleep(100);
    pres_log_info("shutting down");
    gateway_destroy(&gw);
    return EXIT_SUCCESS;
}

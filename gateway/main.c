/*  presence-gateway: the HTTP API of the presence service (docs/protocol.md
    section 3). Thin main: config, logging, the gateway object, wait, teardown.
    */
#include <czmq.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "gateway.h"
#include "pres_config.h"
#include "pres_leader.h"
#include "pres_log.h"

#define S_IDLE_MS     2000  //  quiet time before the heap is trimmed
#define S_IDLE_CPU_US 2000  //  CPU the process may use and still be quiet

//  CPU time used by the process so far, us.
static int64_t
s_cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return 0;
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
           ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
}

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
    //  One arena: glibc never trims the top of a thread arena below
    //  M_TRIM_THRESHOLD, so the burst of changes the bus thread received
    //  (ZeroMQ's I/O thread allocates them) stayed resident: 3 MiB after
    //  100k logins, 30 MiB after 1M. In the main arena the idle trim below
    //  gives it back.
    mallopt(M_ARENA_MAX, 1);
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
    //  Give freed heap back once the process has been quiet (almost no
    //  CPU) for S_IDLE_MS; again after the next busy period.
    int64_t cpu = s_cpu_us(), quiet_ms = 0;
    bool trimmed = true;
    while (!zsys_interrupted) {
        zclock_sleep(100);
        int64_t now = s_cpu_us();
        if (now - cpu > S_IDLE_CPU_US) {
            quiet_ms = 0;
            trimmed = false;
        } else if ((quiet_ms += 100) >= S_IDLE_MS && !trimmed) {
            malloc_trim(0);
            trimmed = true;
        }
        cpu = now;
    }
    pres_log_info("shutting down");
    gateway_destroy(&gw);
    return EXIT_SUCCESS;
}

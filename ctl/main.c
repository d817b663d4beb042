/*  presencectl: the command-line client of presence (docs/protocol.md section
    5). Thin main: parse the command line, load the config, run the command;
    parsing, commands, output and the watch loop live in ctl_*.c. */
#include <czmq.h>
#include <stdlib.h>

#include "ctl_args.h"
#include "ctl_cmd.h"
#include "ctl_watch.h"
#include "pres_config.h"
#include "pres_leader.h"
#include "pres_log.h"

int
main(int argc, char **argv)
{
    ctl_args_t args;
    int rc = ctl_args_parse(&args, argc, argv, stdout, stderr);
    if (rc != 0)
        return rc == 1 ? CTL_EXIT_OK : rc;
    pres_log_init("presencectl", args.verbose);
    pres_config_t cfg;
    pres_config_defaults(&cfg);
    if (pres_config_load(&cfg, args.config) != 0)
        return CTL_EXIT_USAGE;
    //  Under fail-over the broker's endpoints come from etcd.
    if (args.cmd != CTL_CMD_TOKEN && args.cmd != CTL_CMD_KEYGEN &&
        pres_leader_resolve(&cfg, 2 * cfg.failover_ttl * 1000) != 0)
        return CTL_EXIT_UNREACHABLE;
    if (args.cmd == CTL_CMD_WATCH)
        rc = ctl_watch_run(&args, &cfg, stdout, stderr);
    else
        rc = ctl_cmd_run(&args, &cfg, stdout, stderr);
    fflush(stdout);
    return rc;
}

/*  ctl_cmd: presencectl's one-shot commands: get, list, stats and account
    (broker queries; list --all pages through several), publish (one bus
    event), token and keygen (local, no broker). Printed as text or --json,
    mapped to the exit codes of ctl_args.h. watch lives in ctl_watch.h. */
#ifndef CTL_CMD_H_INCLUDED
#define CTL_CMD_H_INCLUDED

#include <stdio.h>

#include "ctl_args.h"
#include "pres_config.h"

//  Run args->cmd (not watch) with cfg. Results go to out, messages for
//  people to err. Returns a CTL_EXIT_* code.
int ctl_cmd_run(const ctl_args_t *args, const pres_config_t *cfg, FILE *out,
                FILE *err);

//  Print why the broker did not answer (to err) and return
//  CTL_EXIT_UNREACHABLE. Shared with the watch loop.
int ctl_cmd_unreachable(const pres_config_t *cfg, const char *endpoint,
                        int timeout_ms, FILE *err);

#endif

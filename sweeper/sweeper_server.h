/*  sweeper_server: the sweeper's sockets and loop. A SUB to the broker's
    changes endpoint subscribed to "deadline." only, and a pres_pub_t to
    its events endpoint: each due notice (sweeper_due) becomes one
    `expire`. Nothing is kept per session: the broker keeps the deadlines
    and notifies a due session again every ~1 s while it is live, so a
    lost notice, a lost expire or a sweeper that was down heals within
    about a second, and memory does not grow with the live sessions.

    Readiness: once the broker takes our events and has answered one
    `stats` query (asked without blocking the loop, again with a backoff
    while the broker is away), the line "ready: ..." is logged, once.
    While the broker is not attached to our publisher, the one expire
    that could not go is held and the notices behind it wait in the SUB
    (bounded by bus_hwm; the broker re-notifies what is dropped). */
#ifndef SWEEPER_SERVER_H_INCLUDED
#define SWEEPER_SERVER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "pres_config.h"

typedef struct sweeper_server sweeper_server_t;

//  Counters, also printed in the summary line (every minute and at the
//  stop). notices = expires + ignored + the one held, if any.
typedef struct {
    uint64_t notices;  //  due notices received (well-formed)
    uint64_t expires;  //  expire events sent
    uint64_t ignored;  //  notices with deadline 0 (nothing sent)
    uint64_t bad;      //  frames on the stream that were not notices
} sweeper_server_stats_t;

//  Open the sockets (cfg is copied; the sockets apply its endpoints and
//  CURVE settings through pres_bus). src of the expires is
//  "sweeper-<host>-<pid>". NULL after logging. Single-threaded: one
//  server per thread.
sweeper_server_t *sweeper_server_new(const pres_config_t *cfg);
void sweeper_server_destroy(sweeper_server_t **self_p);

//  Run until zsys_interrupted (SIGINT/SIGTERM), then log the summary.
//  Returns 0, or -1 after logging a fatal error.
int sweeper_server_run(sweeper_server_t *self);

//  True once "ready:" was logged.
bool sweeper_server_ready(const sweeper_server_t *self);

void sweeper_server_stats(const sweeper_server_t *self,
                          sweeper_server_stats_t *stats);

#endif

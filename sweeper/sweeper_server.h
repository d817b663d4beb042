/*  sweeper_server: the sweeper's sockets and loop. SUB to the broker's
    changes (all topics) first, then a `snapshot` query; the clone keeps
    every live session's deadline; at a deadline an `expire` goes out on a
    pres_pub_t. One that no change or deadline notice answered is sent
    again when a later one was answered first (it was lost); after ~1 s
    with no answer at all, one goes again as a probe (sweeper_tick_fire).
    Survives broker restarts: re-snapshots on gaps, on seq going backwards
    and on a head it never reached (periodic `stats`, asked without
    blocking), and holds due expires while the broker is away. */
#ifndef SWEEPER_SERVER_H_INCLUDED
#define SWEEPER_SERVER_H_INCLUDED

#include <stdint.h>

#include "pres_config.h"

typedef struct sweeper_server sweeper_server_t;

//  Counters, also printed in the summary line (every minute, and at -v on
//  each resync).
typedef struct {
    uint64_t tracked;    //  sessions in the deadline table now
    uint64_t expires;    //  expire events sent (re-sends included)
    uint64_t resyncs;    //  snapshots taken after the first
    uint64_t snapshots;  //  snapshots loaded
    uint64_t changes;    //  changes applied
    uint64_t notices;    //  deadline notices received
    uint64_t bad;        //  frames refused on the changes stream
    uint64_t seq;        //  last change seq held
} sweeper_server_stats_t;

//  Open the sockets (cfg is copied). src of the expires is
//  "sweeper-<host>-<pid>". NULL after logging.
sweeper_server_t *sweeper_server_new(const pres_config_t *cfg);
void sweeper_server_destroy(sweeper_server_t **self_p);

//  Run until zsys_interrupted (SIGINT/SIGTERM). Returns 0, or -1 after
//  logging a fatal error.
int sweeper_server_run(sweeper_server_t *self);

void sweeper_server_stats(const sweeper_server_t *self,
                          sweeper_server_stats_t *stats);

#endif

/*  ctl_watch: `presencectl watch`, a Clone client (zguide ch5) that
    prints changes: SUB to "presence." first, then a `snapshot`, skip
    changes the snapshot holds, and on a gap say so and take a new
    snapshot. */
#ifndef CTL_WATCH_H_INCLUDED
#define CTL_WATCH_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ctl_args.h"
#include "pres_config.h"

//  The seq bookkeeping, apart so it can be tested alone.
typedef struct {
    uint64_t last;  //  last seq held (snapshot or printed)
    bool fresh;     //  nothing printed since the snapshot
} ctl_watch_seq_t;

typedef enum {
    CTL_WATCH_PRINT = 0,  //  next in order: print it
    CTL_WATCH_DROP,       //  at or below the snapshot: already held
    CTL_WATCH_GAP         //  missing changes (or seq went back): resync
} ctl_watch_verdict_t;

//  Start over from a snapshot at seq.
void ctl_watch_seq_reset(ctl_watch_seq_t *st, uint64_t seq);

//  Classify a change's seq and advance st when it is printed.
ctl_watch_verdict_t ctl_watch_seq_check(ctl_watch_seq_t *st, uint64_t seq);

//  Run the watch until interrupted or args->count changes were printed.
//  Returns a CTL_EXIT_* code (CTL_EXIT_UNREACHABLE if the first snapshot
//  gets no answer).
int ctl_watch_run(const ctl_args_t *args, const pres_config_t *cfg, FILE *out,
                  FILE *err);

#endif

/*  sweeper_clone: the sweeper's copy of the broker's live sessions, kept
    the Clone way (zguide ch5): load a `snapshot` reply, then apply the
    changes stream in seq order, drop what the snapshot already holds, and
    ask for a new snapshot on a gap, on seq going backwards or when a
    change disagrees with what we hold. No sockets here: the caller feeds
    frames, so the state machine is tested alone. */
#ifndef SWEEPER_CLONE_H_INCLUDED
#define SWEEPER_CLONE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sweeper_tick.h"

typedef enum {
    SWEEPER_CLONE_APPLIED = 0,  //  change or deadline notice applied
    SWEEPER_CLONE_DROPPED,      //  seq at or below the snapshot: held already
    SWEEPER_CLONE_IGNORED,      //  no snapshot loaded yet: change ignored
    SWEEPER_CLONE_RESYNC,       //  take a new snapshot (see _why)
    SWEEPER_CLONE_BAD           //  frame does not decode (counted, skipped)
} sweeper_clone_result_t;

typedef struct sweeper_clone sweeper_clone_t;

//  tick is borrowed and must outlive the clone. NULL after logging.
sweeper_clone_t *sweeper_clone_new(sweeper_tick_t *tick);
void sweeper_clone_destroy(sweeper_clone_t **self_p);

//  Load a `snapshot` reply ({ok:true, seq, users:[{user, ..., live:
//  [{session, state, deadline}]}]}; other keys are skipped): the tick
//  table is replaced by the snapshot's live sessions and the clone is in
//  sync at the snapshot's seq. Returns 0, or -1 if the reply is malformed
//  (logged; the clone stays out of sync; the table may hold old and new).
int sweeper_clone_load(sweeper_clone_t *self, const void *buf, size_t len);

//  Load one page of a paged snapshot (`snapshot {cursor, limit}`), so that
//  expiry goes on between pages: a snapshot of 1M sessions is never one
//  reply. The table held before stays, and its sessions keep firing, until
//  the last page: then every session no page set is dropped (a resync
//  never stops expiry). Each page sets its sessions and copies its `next`
//  cursor into next (cap bytes, "" on the last page). After the last page the
//  clone is in sync at the FIRST page's seq, and the queued changes after it
//  are replayed: each sets or removes the sessions it names, so every session
//  changed while the pages were taken ends as its last change says, and every
//  other one as its page says. Until the replay passes the last page's seq, a
//  change's session count is not checked (a later page may already hold a
//  session the change does not count). Returns 0, or -1 if the page is
//  malformed or its seq is below the previous page's (a broker restarted:
//  logged; the next page call starts over).
int sweeper_clone_load_page(sweeper_clone_t *self, const void *buf, size_t len,
                            char *next, size_t cap);

//  Feed one message from the changes subscriber: topic "presence.<user>"
//  (a change) or "deadline.<user>" (a deadline notice; applied whatever
//  the sync state, since it carries no seq). `now` (ms) serves notices.
sweeper_clone_result_t sweeper_clone_recv(sweeper_clone_t *self,
                                          const char *topic, size_t topic_len,
                                          const void *buf, size_t len,
                                          uint64_t now);

//  The broker's head seq, from a periodic `stats`: a head below ours means
//  the broker went back in time; a head above ours that we still have not
//  reached at the next check means changes were lost without a later one
//  to show the gap. Returns true (and drops sync) when a resync is needed.
bool sweeper_clone_check_head(sweeper_clone_t *self, uint64_t head);

//  The same for a `stats` answered while we went on reading changes:
//  asked_seq is our seq when the query was sent (the broker had published
//  it, so its head is not below it unless it went back in time); a head
//  above our seq now is still expected by the next check. The caller drops
//  an answer if a snapshot was loaded or sync lost since it asked.
bool sweeper_clone_check_head_at(sweeper_clone_t *self, uint64_t head,
                                 uint64_t asked_seq);

//  Forget sync (e.g. the snapshot query failed); why is a static string.
void sweeper_clone_desync(sweeper_clone_t *self, const char *why);

bool sweeper_clone_synced(const sweeper_clone_t *self);

//  Seq of the last change held (snapshot or applied).
uint64_t sweeper_clone_seq(const sweeper_clone_t *self);

//  Why the last RESYNC or desync happened (static string, "" if none).
const char *sweeper_clone_why(const sweeper_clone_t *self);

//  Counters since creation.
typedef struct {
    uint64_t changes;    //  changes applied
    uint64_t dropped;    //  changes at or below a snapshot
    uint64_t notices;    //  deadline notices received
    uint64_t bad;        //  frames that did not decode
    uint64_t snapshots;  //  snapshots loaded
} sweeper_clone_stats_t;

void sweeper_clone_stats(const sweeper_clone_t *self,
                         sweeper_clone_stats_t *stats);

#endif

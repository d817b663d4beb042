/*  broker_repl: the leader streams every batch it applies to one standby
    broker, which applies the same batch to the same state and
    acknowledges it once committed (docs/ha.md). The broker's rules are a
    deterministic function of (state, batch clock, events), so shipping
    the inputs of each batch keeps the standby's state equal to the
    leader's, including the lazily flushed last_seen. A standby that
    attaches, or that sees a gap or a seq that disagrees, gets a snapshot
    of the leader's LMDB first (this also discards a deposed leader's
    uncommitted tail).

    Leader: ROUTER bound on repl_endpoint. Standby: DEALER connected to
    the leader's. Messages are [kind, header(32 bytes: term, batch, clock,
    seq after), payload]; the standby answers [kind, batch, seq]. Single
    threaded: the broker's loop owns both ends. */
#ifndef BROKER_REPL_H_INCLUDED
#define BROKER_REPL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker_state.h"
#include "pres_config.h"

typedef struct broker_repl broker_repl_t;

//  ---- leader

//  Bind cfg->repl_endpoint. term stamps every message. NULL after logging.
broker_repl_t *broker_repl_leader_new(const pres_config_t *cfg, int64_t term);

//  Add one received event (its two frames, as received, decoded or not)
//  to the batch being built. 0 or -1 (out of memory).
int broker_repl_add_event(broker_repl_t *self, const void *topic, size_t tlen,
                          const void *body, size_t blen);

//  Make the batch being built an account command instead. 0 or -1.
int broker_repl_add_account(broker_repl_t *self, const char *user, int status,
                            const char *reason, const char *by);

//  The batch was committed with clock now_ms: send it to the standby, and
//  when `wait` (sync replication and the batch publishes something) wait
//  up to bus_timeout_ms for its acknowledgement. A standby that does not
//  answer in time is detached (it must resync). Returns 0, or -1 when the
//  snapshot for a new standby failed.
int broker_repl_leader_commit(broker_repl_t *self, broker_state_t *state,
                              uint64_t now_ms, bool wait);

//  Sync replication without stalling the loop: keep the committed batch's
//  outbox (copied from state, which is then cleared) until the standby
//  acknowledges the batch just sent by broker_repl_leader_commit (called
//  with wait = false). Call only while a standby is attached. 0 or -1.
int broker_repl_hold(broker_repl_t *self, broker_state_t *state);

//  Publish, in order, every held message whose batch the standby has
//  acknowledged; when the oldest has waited bus_timeout_ms, detach the
//  standby and publish everything held. publish gets topic and body.
typedef void(broker_repl_publish_fn)(const void *topic, size_t tlen,
                                     const void *body, size_t blen, void *arg);
void broker_repl_release(broker_repl_t *self, broker_repl_publish_fn *publish,
                         void *arg);

//  Monotonic ms when the oldest held batch times out, or 0 if none held.
int64_t broker_repl_hold_deadline(const broker_repl_t *self);

//  Serve standby messages (hello: send a snapshot; acks). Call when the
//  socket is readable and between batches. 0 or -1 (snapshot failed).
int broker_repl_leader_serve(broker_repl_t *self, broker_state_t *state);

//  ---- standby

//  Connect to the leader's repl endpoint and say hello. NULL after logging.
broker_repl_t *broker_repl_standby_new(const pres_config_t *cfg,
                                       const char *leader_repl);

#define BROKER_REPL_IDLE     1  //  nothing was waiting
#define BROKER_REPL_SNAPSHOT 2  //  a snapshot is in snapshot_path

//  Handle what the leader sent: apply batches to state and acknowledge
//  them. Returns 0, BROKER_REPL_IDLE, BROKER_REPL_SNAPSHOT (the caller
//  installs the file at broker_repl_snapshot_path, reloads its state and
//  calls broker_repl_standby_loaded), or -1 (store failure: stop).
int broker_repl_standby_step(broker_repl_t *self, broker_state_t *state);

const char *broker_repl_snapshot_path(const broker_repl_t *self);

//  The snapshot is installed and state reloaded from it: acknowledge.
void broker_repl_standby_loaded(broker_repl_t *self, broker_state_t *state);

//  True once this standby holds every batch it was sent since a snapshot.
bool broker_repl_standby_synced(const broker_repl_t *self);

//  ---- both

void broker_repl_destroy(broker_repl_t **self_p);

//  The socket to poll for input.
void *broker_repl_socket(broker_repl_t *self);

//  Changes not yet acknowledged by the standby (leader), or known to be
//  missing (standby). For stats.ha.lag.
uint64_t broker_repl_lag(const broker_repl_t *self,
                         const broker_state_t *state);

//  True when a standby is attached (leader).
bool broker_repl_attached(const broker_repl_t *self);

#endif

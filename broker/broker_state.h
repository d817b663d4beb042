/*  broker_state: the presence rules. Applies events and account commands
    to the resident set (broker_live) in batches, sequences the changes,
    writes each batch to LMDB in one transaction (broker_store) and hands
    back the changes to publish only after the commit is durable; hands
    out due notices for sessions past their deadline (broker_state_due).
    Owns the counters of `stats` and the publisher table.
    Single-threaded. */
#ifndef BROKER_STATE_H_INCLUDED
#define BROKER_STATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "broker_live.h"
#include "broker_pubs.h"
#include "broker_store.h"
#include "pres_config.h"
#include "pres_msg.h"

typedef struct broker_state broker_state_t;

//  Presence-quality counters since the broker started (stats.quality).
#define BROKER_LATE_BUCKETS 11  //  timeout lateness histogram buckets
#define BROKER_REFUSE_COUNT 5   //  refusal reasons, "other" last
extern const char *const broker_refuse_names[BROKER_REFUSE_COUNT];
//  Upper bounds of the lateness buckets in ms (the last bucket is +Inf).
extern const uint64_t broker_late_bounds[BROKER_LATE_BUCKETS - 1];

typedef struct {
    uint64_t transitions[PRES_REASON_COUNT];      //  changes by reason
    uint64_t flaps_suppressed;                    //  heartbeats saved by grace
    uint64_t late[BROKER_LATE_BUCKETS];           //  timeout end - deadline
    uint64_t late_sum_ms;                         //  sum of those, ms
    uint64_t forced_offline[PRES_ACCOUNT_COUNT];  //  users sent offline
                                                  //  by account status
    uint64_t refused[BROKER_REFUSE_COUNT];        //  refused events by why
    uint64_t due_notices;                         //  due notices handed out
} broker_quality_t;

//  What `stats` reports under `ha` when fail-over is on (docs/ha.md).
typedef struct {
    bool on;               //  etcd_endpoints set: report `ha`
    bool leader;           //  role: leader (true) or standby
    uint64_t term;         //  the current leader's term (0 = none known)
    char leader_name[64];  //  its node_name, "" when none is known
    uint64_t lag;          //  changes the standby does not have yet
} broker_ha_stats_t;

//  Refused attempts to change an account outside the admin endpoint, since
//  the broker started (memory only; `stats.forbidden`).
typedef struct {
    uint64_t events;   //  `account` events on the events socket
    uint64_t queries;  //  `account` ops on the query socket
    uint64_t peers;    //  connections refused at the admin endpoint
} broker_forbidden_t;

//  Load the store's live sessions, counters and publisher table (cold
//  start reads only live sessions, never all users). store is borrowed and
//  must outlive the state. NULL after logging.
broker_state_t *broker_state_new(const pres_config_t *cfg,
                                 broker_store_t *store);
void broker_state_destroy(broker_state_t **self_p);

//  Start a batch with the broker's clock (ms since the epoch); one clock
//  read per batch.
void broker_state_begin(broker_state_t *self, uint64_t now_ms);

//  Apply one decoded event within the batch. Returns 0 if applied, 1 if
//  refused (counted: account not active, unknown user denied, and every
//  `account` event, whatever its src: accounts change only through
//  broker_state_account, from the admin endpoint), -1 on an internal
//  error (store failure, out of memory: logged; the broker should stop).
//  A login beyond max_sessions_per_user ends the user's least recently
//  active session first (docs/broker.md says why).
int broker_state_apply(broker_state_t *self, const pres_event_t *ev);

//  Count a frame that did not decode (refused and malformed).
void broker_state_malformed(broker_state_t *self);

//  Set a user's account status (an `account` request from the admin
//  endpoint) within the batch, creating the user if unknown. reason may be
//  NULL. by names who asked (the admin token's sub forwarded by the
//  gateway, or the admin peer's identity); borrowed. *seq gets the seq of
//  the change, or the current seq when nothing changed. The audit gets an
//  entry when the status or the reason changes (NULL or "" by records
//  "unknown"). 0 or -1.
int broker_state_account(broker_state_t *self, const char *user,
                         pres_account_t status, const char *reason,
                         const char *by, uint64_t *seq);

//  End the batch: write it in one txn and make it durable (fsync) if it
//  holds any change, then make its messages available in the outbox.
//  Returns 0; 1 when the write failed (disk full, I/O error: logged by the
//  store): the batch is dropped, the outbox left empty, memory reloaded
//  from the last durable state and the batch's events counted as refused,
//  so the caller carries on and publishes nothing; -1 when even that
//  reload failed (stop).
int broker_state_commit(broker_state_t *self);

//  With defer true, commit and flush write without fsync: the caller must
//  make every commit durable (broker_store_sync, e.g. on broker_durable's
//  thread; see broker_store_commits) before it publishes the outbox or
//  answers anything. Default false (each commit is synced).
void broker_state_defer_sync(broker_state_t *self, bool defer);
bool broker_state_deferring(const broker_state_t *self);

//  Write the last_seen of users whose heartbeats changed nothing, and the
//  publisher table, in one synced txn (the lazy-durability timer). 0 or -1
//  (nothing written; what was dirty stays dirty: retry later).
int broker_state_flush(broker_state_t *self);

//  Flush every lazily kept last_seen now, ignoring the coalescing slack,
//  so LMDB equals memory (before a replication snapshot). 0 or -1.
int broker_state_flush_all(broker_state_t *self);

//  The leader term stamped on every change from now on (0 = none).
void broker_state_set_term(broker_state_t *self, uint64_t term);

//  The clock of the current (or last) batch, ms since the epoch.
uint64_t broker_state_now(const broker_state_t *self);

//  Set / read what `stats` reports under `ha` (NULL when off).
void broker_state_set_ha(broker_state_t *self, const broker_ha_stats_t *ha);
const broker_ha_stats_t *broker_state_ha(const broker_state_t *self);

//  True if a flush would write anything.
bool broker_state_dirty(const broker_state_t *self);

//  Write the series point (online, away) of the minute holding now_ms
//  when it is not written yet: its own txn (synced, or by the caller
//  with defer_sync), at most once a minute.
//  Call between batches. 0 or -1.
int broker_state_point(broker_state_t *self, uint64_t now_ms);

//  The outbox of the last committed batch: count, and message i as topic +
//  msgpack body (borrowed, valid until the next begin). Clear after
//  publishing.
size_t broker_state_outbox_count(const broker_state_t *self);
void broker_state_outbox_get(const broker_state_t *self, size_t i,
                             const char **topic, size_t *topic_len,
                             const void **body, size_t *body_len);
void broker_state_outbox_clear(broker_state_t *self);

//  Sessions whose deadline (plus grace) has passed, found on the live
//  set's wheel without looking at the others: for each, fn gets a deadline
//  notice (topic "deadline.<user>", pres_deadline_t body: user, session,
//  its deadline) to publish, asking the sweeper for its `expire`; the
//  notice comes again every BROKER_DUE_AGAIN_MS while the session lives
//  (a notice or an expire was lost, or no sweeper listened). Sessions
//  that beat are filed again at their deadline, and a session entering
//  its grace is marked (memory only). No store access. Call on the
//  leader's loop, between batches. Returns the notices given to fn.
#define BROKER_DUE_AGAIN_MS 1000
typedef void(broker_state_notice_fn)(const void *topic, size_t tlen,
                                     const void *body, size_t blen, void *arg);
size_t broker_state_due(broker_state_t *self, uint64_t now_ms,
                        broker_state_notice_fn *fn, void *arg);

//  ms until broker_state_due may find one (at most horizon_ms).
uint64_t broker_state_due_wait(const broker_state_t *self, uint64_t now_ms,
                               uint64_t horizon_ms);

//  Read access for queries (borrowed).
broker_live_t *broker_state_live(broker_state_t *self);
broker_pubs_t *broker_state_pubs(broker_state_t *self);
broker_store_t *broker_state_store(broker_state_t *self);
const broker_meta_t *broker_state_meta(const broker_state_t *self);
broker_forbidden_t *broker_state_forbidden(broker_state_t *self);
uint64_t broker_state_timeout_ms(const broker_state_t *self);
uint64_t broker_state_grace_ms(const broker_state_t *self);
const broker_quality_t *broker_state_quality(const broker_state_t *self);

#endif

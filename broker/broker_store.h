/*  broker_store: the broker's LMDB environment (the only state on disk).
    DBIs: users, sessions, bystate (live index), pubs (publisher seq
    table), meta (global seq and counters), changes (the change log),
    history (transitions per user), audit (account changes per user),
    series (online/away per minute). One writer (the broker thread);
    writes are grouped by the caller into one transaction per batch, with
    MDB_MAP_FULL handled by growing the map and replaying the batch. See
    docs/broker.md for the record formats. Not thread-safe, except
    broker_store_sync and broker_store_syncs. */
#ifndef BROKER_STORE_H_INCLUDED
#define BROKER_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pres_msg.h"

//  Return code of lookups that found nothing (not an error).
#define BROKER_STORE_NOTFOUND 1

typedef struct {
    uint8_t account;                   //  pres_account_t
    uint8_t state;                     //  pres_state_t
    uint32_t nsessions;                //  live sessions
    uint64_t last_seen;                //  ms
    char reason[PRES_REASON_MAX + 1];  //  account reason, "" if none
} broker_user_rec_t;

typedef struct {
    uint64_t last_hb;                  //  ms of the last login/heartbeat
    uint64_t since;                    //  ms of the login (0: unknown)
    uint8_t state;                     //  PRES_ONLINE or PRES_AWAY
    char device[PRES_DEVICE_MAX + 1];  //  "" if none
} broker_session_rec_t;

//  One transition of a user (history), newest first per user.
typedef struct {
    uint64_t seq;    //  change seq
    uint64_t at;     //  ms
    uint8_t state;   //  pres_state_t
    uint8_t prev;    //  pres_state_t
    uint8_t reason;  //  pres_reason_t
} broker_hist_rec_t;

//  One account-status change (audit), newest first per user.
typedef struct {
    uint64_t at;                       //  ms
    uint8_t old;                       //  pres_account_t
    uint8_t status;                    //  pres_account_t (new)
    char by[PRES_ID_MAX + 1];          //  who made it
    char reason[PRES_REASON_MAX + 1];  //  "" if none
} broker_audit_rec_t;

//  The global seq and the O(1) counters of `stats`, one record.
typedef struct {
    uint64_t seq;                           //  last change seq used
    uint64_t users;                         //  users ever seen
    uint64_t online;                        //  users online
    uint64_t away;                          //  users away
    uint64_t accounts[PRES_ACCOUNT_COUNT];  //  users per account status
    uint64_t sessions;                      //  live sessions
    uint64_t applied;                       //  events applied
    uint64_t refused;                       //  events refused (all kinds)
    uint64_t lost;                          //  events missing from seqs
    uint64_t malformed;                     //  frames that did not decode
    uint64_t audits;                        //  audit entries ever written
} broker_meta_t;

//  History entries kept per user (older ones are trimmed as new come).
#define BROKER_HISTORY_KEEP 128
//  Series points kept (one per minute: 30 days).
#define BROKER_SERIES_KEEP 43200

typedef struct broker_store broker_store_t;

//  Open (create) the environment in dir with an initial map of map_bytes.
//  Clears stale reader slots. Returns NULL after logging.
broker_store_t *broker_store_new(const char *dir, size_t map_bytes);
void broker_store_destroy(broker_store_t **self_p);

//  Write a compacted copy of the environment (a consistent committed
//  state) to the file path, fsynced. 0 or -1 (logged). The copy can be
//  installed as <data_dir>/data.mdb while no store is open there.
int broker_store_copy(broker_store_t *self, const char *path);

//  Current map size in bytes (grows on MDB_MAP_FULL).
size_t broker_store_map_size(const broker_store_t *self);

//  Write transactions committed and fsyncs done since _new (for `stats`:
//  they show group commit at work).
uint64_t broker_store_commits(const broker_store_t *self);
uint64_t broker_store_syncs(const broker_store_t *self);
//  Records written (puts, replays after MDB_MAP_FULL included): the cost
//  of a batch that does not depend on the disk.
uint64_t broker_store_puts(const broker_store_t *self);

//  ---- reads. Lookups use the write txn while inside broker_store_write
//  (so they see the batch's own writes), else the read txn, which must be
//  open: begin it, do the lookups, end it (short: it pins pages).
int broker_store_read_begin(broker_store_t *self);
void broker_store_read_end(broker_store_t *self);

//  Returns 0, BROKER_STORE_NOTFOUND, or -1 (logged).
int broker_store_get_user(broker_store_t *self, const char *user, size_t len,
                          broker_user_rec_t *rec);
int broker_store_get_session(broker_store_t *self, const char *user,
                             const char *session, broker_session_rec_t *rec);
//  0 with meta zeroed when the store is new.
int broker_store_get_meta(broker_store_t *self, broker_meta_t *meta);

//  Iterators (inside a read txn). The callback returns 0 to go on, 1 to
//  stop, -1 to fail. They return 0 or -1.
typedef int(broker_store_session_fn)(const char *user, size_t ulen,
                                     const char *session, size_t slen,
                                     const broker_session_rec_t *rec,
                                     void *arg);
int broker_store_each_session(broker_store_t *self, broker_store_session_fn *fn,
                              void *arg);

typedef int(broker_store_pub_fn)(const char *src, size_t len, uint64_t last_seq,
                                 uint64_t lost, void *arg);
int broker_store_each_pub(broker_store_t *self, broker_store_pub_fn *fn,
                          void *arg);

typedef int(broker_store_user_fn)(const char *user, size_t len, void *arg);
//  Users in id order strictly after cursor ("" = from the start). With
//  by_state PRES_ONLINE or PRES_AWAY, only users in that state (live
//  index); with PRES_OFFLINE (or any other value), every user.
int broker_store_each_user(broker_store_t *self, bool by_state,
                           pres_state_t state, const char *cursor,
                           broker_store_user_fn *fn, void *arg);

//  Change log: the first (oldest) seq kept, or BROKER_STORE_NOTFOUND when
//  the log is empty. 0, NOTFOUND or -1.
int broker_store_first_change(broker_store_t *self, uint64_t *seq);

//  Change log: each change with seq >= from, in order (body = the change
//  as published, msgpack, borrowed from the txn). The callback returns 0
//  to go on, 1 to stop, -1 to fail. 0 or -1.
typedef int(broker_store_change_fn)(uint64_t seq, const void *body, size_t len,
                                    void *arg);
int broker_store_each_change(broker_store_t *self, uint64_t from,
                             broker_store_change_fn *fn, void *arg);

//  A user's history / audit entries, newest first. Callbacks as above.
typedef int(broker_store_hist_fn)(const broker_hist_rec_t *rec, void *arg);
int broker_store_each_history(broker_store_t *self, const char *user,
                              broker_store_hist_fn *fn, void *arg);
typedef int(broker_store_audit_fn)(const broker_audit_rec_t *rec, void *arg);
int broker_store_each_audit(broker_store_t *self, const char *user,
                            broker_store_audit_fn *fn, void *arg);

//  Series points (minute start in ms, online, away) with minute >= from,
//  oldest first.
typedef int(broker_store_point_fn)(uint64_t minute, uint64_t online,
                                   uint64_t away, void *arg);
int broker_store_each_point(broker_store_t *self, uint64_t from,
                            broker_store_point_fn *fn, void *arg);

//  ---- writes (only inside the fill callback of broker_store_write).
int broker_store_put_user(broker_store_t *self, const char *user, size_t len,
                          const broker_user_rec_t *rec);
int broker_store_put_session(broker_store_t *self, const char *user,
                             const char *session,
                             const broker_session_rec_t *rec);
int broker_store_del_session(broker_store_t *self, const char *user,
                             const char *session);
//  Move user in the live index from state `from` to `to` (offline = not
//  indexed).
int broker_store_set_state(broker_store_t *self, const char *user, size_t len,
                           pres_state_t from, pres_state_t to);
int broker_store_put_pub(broker_store_t *self, const char *src,
                         uint64_t last_seq, uint64_t lost);
int broker_store_del_pub(broker_store_t *self, const char *src);
int broker_store_put_meta(broker_store_t *self, const broker_meta_t *meta);
//  Append a change to the log (seq above every seq in it).
int broker_store_put_change(broker_store_t *self, uint64_t seq,
                            const void *body, size_t len);
//  Delete log entries with seq < below, oldest first, at most max of them.
int broker_store_trim_changes(broker_store_t *self, uint64_t below, size_t max);
//  Add a history entry and drop the user's entries beyond
//  BROKER_HISTORY_KEEP.
int broker_store_put_history(broker_store_t *self, const char *user,
                             const broker_hist_rec_t *rec);
//  Add audit entry number n (meta.audits) of user.
int broker_store_put_audit(broker_store_t *self, const char *user, uint64_t n,
                           const broker_audit_rec_t *rec);
//  Write the point of one minute (ms of its start) and drop points older
//  than BROKER_SERIES_KEEP minutes before it.
int broker_store_put_point(broker_store_t *self, uint64_t minute,
                           uint64_t online, uint64_t away);

//  Run one write txn: begin, fill(self, arg), commit, and if sync, flush
//  to disk (mdb_env_sync) before returning. On MDB_MAP_FULL (from a put
//  or the commit) the txn is aborted, the map doubled and fill called
//  again, so fill must be replayable (write from memory, no side
//  effects). Returns 0, or -1 (logged; nothing was written).
typedef int(broker_store_fill_fn)(broker_store_t *self, void *arg);
int broker_store_write(broker_store_t *self, bool sync,
                       broker_store_fill_fn *fill, void *arg);

//  Flush every committed txn to disk (mdb_env_sync, force). Safe from
//  another thread while the owner writes (the broker's sync thread,
//  broker_durable), as long as the store outlives the call. The env is
//  opened MDB_NOSYNC without WRITEMAP: a commit not yet synced may be
//  lost in a crash, never corrupts. 0 or -1 (logged).
int broker_store_sync(broker_store_t *self);

//  Give back the map's resident pages (madvise MADV_DONTNEED over the
//  mapped region): without WRITEMAP they are clean, read-only file pages,
//  read again from the page cache on the next access, so this only lowers
//  RSS. Call when idle (the broker does after 2 s without events): the
//  logins of a burst read much of the data file. Owner thread. 0, or -1
//  (logged; nothing changed).
int broker_store_release(broker_store_t *self);

#endif

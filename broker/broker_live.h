/*  broker_live: the broker's in-memory resident set. Users that are live
    (online/away) or touched by the current batch, and every live session,
    in two open-addressing hash tables (user id; user + session id) over
    index-addressed arrays (4-byte slots: at most 16,777,214 resident users
    and as many live sessions; an add beyond fails as out of memory). Ids
    are out of line, in an id arena. No allocation per lookup; the hot
    path of a heartbeat is one session lookup. Live sessions are also
    filed in a deadline wheel (broker_live_wheel_*): the broker finds the
    sessions that came due without looking at the others, and a heartbeat
    does not move its session in it. Single-threaded. */
#ifndef BROKER_LIVE_H_INCLUDED
#define BROKER_LIVE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pres_msg.h"

#define BROKER_LIVE_NONE UINT32_MAX

//  User flags (every bit of broker_user_t.flags has its home here).
#define BROKER_U_DIRTY   1  //  last_seen / session beats not yet in LMDB
#define BROKER_U_TOUCHED 2  //  on the batch's write list
#define BROKER_U_STORED  4  //  a record exists in LMDB
#define BROKER_U_WRITE   8  //  broker_state: write this batch

//  Session flags.
#define BROKER_S_NEW      1  //  not yet written to LMDB
#define BROKER_S_DIRTY    2  //  last_hb newer than in LMDB (lazy flush)
#define BROKER_S_FLUSHING 4  //  written by the flush txn being committed
#define BROKER_S_WRITE                                                         \
    8                      //  durable change (state, beat of a change):
                           //  written by the batch's txn
#define BROKER_S_GRACE 16  //  timed out, kept for `grace` (memory only)

//  Ids live out of line in the set's id arena (pres_ids): an entry holds
//  a 4-byte reference; broker_live_id() gives the NUL-terminated bytes.
typedef struct {
    uint32_t id;           //  user id (broker_live_id), NUL-terminated
    uint8_t len;           //  id length; 0 = free entry
    uint8_t account;       //  pres_account_t
    uint8_t state;         //  pres_state_t, aggregated over sessions
    uint8_t stored_state;  //  state as last written to LMDB
    uint8_t flags;         //  BROKER_U_*
    uint32_t nsessions;    //  live sessions
    uint32_t first;        //  first session (index) or NONE; free list
                           //  link of free entries
    uint32_t hash;         //  of id
    uint64_t last_seen;    //  ms, broker clock
    char *reason;          //  account reason (heap) or NULL
} broker_user_t;

typedef struct {
    uint32_t id;          //  session id (broker_live_id)
    uint8_t len;          //  id length; 0 = free entry
    uint8_t state;        //  PRES_ONLINE or PRES_AWAY
    uint8_t flags;        //  BROKER_S_*
    uint32_t user;        //  owning user (index)
    uint32_t next;        //  next session of the user, or NONE
    uint32_t prev;        //  previous session of the user, or NONE
    uint32_t hash;        //  of user id + session id
    uint32_t wnext;       //  next session in its wheel slot, or NONE
    uint32_t wprev;       //  previous one, or BROKER_WHEEL_HEAD | slot
    uint64_t last_hb;     //  ms of the last login/heartbeat
    uint64_t durable_hb;  //  last_hb known to be in LMDB (a lower
                          //  bound: 0 when unknown)
    uint64_t since;       //  ms of the login that started it
    char *device;         //  device label (heap) or NULL
} broker_session_t;

typedef struct broker_live broker_live_t;

broker_live_t *broker_live_new(void);
void broker_live_destroy(broker_live_t **self_p);

//  The bytes of an entry's id (user->id or session->id), NUL-terminated.
//  Borrowed: valid while the entry is resident (never moved by adds).
const char *broker_live_id(const broker_live_t *self, uint32_t id);

//  Find a user; BROKER_LIVE_NONE if not resident.
uint32_t broker_live_user_find(broker_live_t *self, const char *id, size_t len);

//  Add a user that is not resident (asserted): zeroed fields, state
//  offline, account active. Returns its index, or NONE when out of memory
//  (logged). Entry pointers from broker_live_user() may move.
uint32_t broker_live_user_add(broker_live_t *self, const char *id, size_t len);

//  Remove a resident user; it must have no sessions (asserted). Frees its
//  reason.
void broker_live_user_remove(broker_live_t *self, uint32_t u);

//  Entry of a resident user. Borrowed; valid until the next add.
broker_user_t *broker_live_user(broker_live_t *self, uint32_t u);

//  Set (copy) or clear (NULL) a user's account reason. 0 or -1.
int broker_live_user_set_reason(broker_live_t *self, uint32_t u,
                                const char *reason);

//  Find a session of user u; NONE if not live.
uint32_t broker_live_session_find(broker_live_t *self, uint32_t u,
                                  const char *id, size_t len);

//  Add a live session (state online, flags NEW) to user u and bump its
//  nsessions. Returns the index, or NONE when out of memory (logged).
uint32_t broker_live_session_add(broker_live_t *self, uint32_t u,
                                 const char *id, size_t len);

//  Remove a session and decrement its user's nsessions.
void broker_live_session_remove(broker_live_t *self, uint32_t s);

//  Entry of a live session. Borrowed; valid until the next add.
broker_session_t *broker_live_session(broker_live_t *self, uint32_t s);

//  Set (copy) or clear (NULL or "") a session's device label. 0 or -1.
int broker_live_session_set_device(broker_live_t *self, uint32_t s,
                                   const char *device);

//  True if u is a resident user (for indexes kept across evictions).
bool broker_live_user_valid(const broker_live_t *self, uint32_t u);

//  Aggregate state of user u from its sessions: online if any session is
//  online, else away if any is live, else offline.
pres_state_t broker_live_user_state(broker_live_t *self, uint32_t u);

size_t broker_live_user_count(const broker_live_t *self);
size_t broker_live_session_count(const broker_live_t *self);

//  Iterate resident users: start with NONE, returns the next index or NONE
//  at the end. Do not add or remove while iterating.
uint32_t broker_live_user_next(const broker_live_t *self, uint32_t u);

//  ---- the deadline wheel
//  Slots of BROKER_WHEEL_SLOT_MS over BROKER_WHEEL_SLOTS (131 s): a
//  session filed at a time beyond that lands in a slot that comes round
//  earlier, and is filed again when it does (one look per lap). Every live
//  session is filed exactly once; session_add files a new one to come due
//  at the next take (its filer sets the real time then), and
//  session_remove takes it out.
#define BROKER_WHEEL_SLOT_MS 16
#define BROKER_WHEEL_SLOTS   8192
#define BROKER_WHEEL_HEAD    0x80000000u  //  wprev of a slot's first session

//  (Re)file session s to come due at at_ms (ms since the epoch, the clock
//  of last_hb). A time in a slot already taken files it in the next slot.
void broker_live_wheel_file(broker_live_t *self, uint32_t s, uint64_t at_ms);

//  Take out every session of the slots that ended by now_ms and return the
//  first one, chained by wnext (NONE if none). The caller must file each
//  taken session again (read its wnext first): a taken session is in no
//  slot. Slots are taken once; a clock that went back restarts the wheel
//  at now_ms (sessions wait at most one lap).
uint32_t broker_live_wheel_take(broker_live_t *self, uint64_t now_ms);

//  ms until the next slot holding a session ends, looking at most
//  horizon_ms ahead: 0 if one has ended already, horizon_ms if none.
uint64_t broker_live_wheel_wait(const broker_live_t *self, uint64_t now_ms,
                                uint64_t horizon_ms);

//  Hash of bytes (FNV-1a 32), exposed for the publisher table and tests.
uint32_t broker_live_hash(const char *s, size_t len, uint32_t seed);

#endif

/*  sweeper_tick: every live session's deadline, in memory. A binary
    min-heap ordered by the time each session is next due (its deadline, or
    the time to look again at an unanswered expire) plus a hash (user, session)
    -> heap slot and a per-user list, so every update is O(log n) and a
    timer tick touches only the sessions that are due. Compact: no
    allocation per session (entries in one array, keys in an id arena),
    ~100 B per session. */
#ifndef SWEEPER_TICK_H_INCLUDED
#define SWEEPER_TICK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sweeper_tick sweeper_tick_t;

//  Create an empty table. NULL after logging (out of memory).
sweeper_tick_t *sweeper_tick_new(void);

//  Destroy the table and every entry. NULL-safe; nulls *self_p.
void sweeper_tick_destroy(sweeper_tick_t **self_p);

//  Insert or update the session (user, session) with deadline (ms since
//  the epoch, broker clock). It becomes due at the deadline; any pending
//  re-send is forgotten. user and session are valid ids (pres_id_valid):
//  the caller checks. Returns 0, or -1 after logging (out of memory).
int sweeper_tick_set(sweeper_tick_t *self, const char *user,
                     const char *session, uint64_t deadline);

//  Remove one session. true if it was there.
bool sweeper_tick_remove(sweeper_tick_t *self, const char *user,
                         const char *session);

//  Remove every session of user. Returns how many were removed.
size_t sweeper_tick_remove_user(sweeper_tick_t *self, const char *user);

//  Remove everything.
void sweeper_tick_clear(sweeper_tick_t *self);

//  Reloading without forgetting: after sweeper_tick_mark every entry is
//  stale until set again (it stays due and fires as before, so expiry goes
//  on during a resync); sweeper_tick_sweep removes the stale ones and
//  returns how many (O(entries)).
void sweeper_tick_mark(sweeper_tick_t *self);
size_t sweeper_tick_sweep(sweeper_tick_t *self);

//  Number of sessions tracked, in all or for one user.
size_t sweeper_tick_size(const sweeper_tick_t *self);
size_t sweeper_tick_user_sessions(const sweeper_tick_t *self, const char *user);

//  The deadline of a session, or 0 if it is not tracked.
uint64_t sweeper_tick_deadline(const sweeper_tick_t *self, const char *user,
                               const char *session);

//  The time (ms) the earliest entry is due, or 0 when empty.
uint64_t sweeper_tick_next_due(const sweeper_tick_t *self);

//  An answer from the broker about a session we asked to expire (a
//  deadline notice): deadline 0 means the broker does not know the session
//  (removed here); otherwise it is still live and becomes due at its new
//  deadline, or at now + skew_ms if that deadline is not after now (the
//  broker's clock is behind ours: ask again shortly, do not spin). Unknown
//  sessions are ignored (the notice may be older than what we know).
//  Returns true if the table changed.
bool sweeper_tick_notice(sweeper_tick_t *self, const char *user,
                         const char *session, uint64_t deadline, uint64_t now,
                         uint64_t skew_ms);

//  Called for a due session: publish its expire. Return 0 if sent, -1 if
//  it could not be sent now (the caller should stop and try later).
typedef int(sweeper_tick_fire_fn)(void *arg, const char *user,
                                  const char *session, uint64_t deadline);

//  Call fire for every entry due at or before now, earliest first, at most
//  max entries (0 = no limit). An entry whose fire returned 0 is marked
//  sent and is looked at again at now + retry_ms, unless an answer (a
//  change or a deadline notice naming it) comes first. The broker answers
//  one connection in order, so an unanswered expire is sent again when
//  an expire sent after it was answered already (it was lost). Otherwise,
//  while answers come, it waits retry_ms past the last one (it is in the
//  pipe). When none came for retry_ms, one unanswered expire goes again
//  as a probe (at most one per retry_ms) and the others wait: if the
//  probe is answered before the expires sent ahead of it and nothing
//  follows for retry_ms, those are lost and go again; if they are
//  answered, the broker was slow and nothing else is sent. Stops at the
//  first fire that returns -1, leaving that entry due. Returns how many
//  were sent (probes and re-sends included).
size_t sweeper_tick_fire(sweeper_tick_t *self, uint64_t now, uint64_t retry_ms,
                         size_t max, sweeper_tick_fire_fn *fire, void *arg);

//  Date the answers received since the last call (sweeper_tick_set,
//  _remove, _remove_user or _notice of a sent entry) at now (ms): call it
//  after reading a burst of changes and notices.
void sweeper_tick_heard(sweeper_tick_t *self, uint64_t now);

//  Self-check of the heap and index invariants (tests). true if sound.
bool sweeper_tick_check(const sweeper_tick_t *self);

#endif

/*  gateway_bus: the gateway's one thread on the changes stream. It feeds
    the account cache and the SSE ring, wakes logins waiting for their
    change, polls the broker's `stats` every second (health and the seq
    head), seeds the account cache from `list` queries, and does the
    periodic chores (SSE keepalives, revocation compaction). */
#ifndef GATEWAY_BUS_H_INCLUDED
#define GATEWAY_BUS_H_INCLUDED

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "gateway_accounts.h"
#include "gateway_auth.h"
#include "gateway_metrics.h"
#include "gateway_sse.h"
#include "pres_config.h"
#include "pres_msg.h"

typedef struct gw_bus gw_bus_t;

//  Start the thread: it subscribes to changes before returning, so a
//  login published after gw_bus_new can be matched. Objects are borrowed
//  and must outlive the bus. NULL after logging.
gw_bus_t *gw_bus_new(const pres_config_t *cfg, gw_accounts_t *accounts,
                     gw_sse_t *sse, gw_auth_t *auth, gw_metrics_t *metrics);
void gw_bus_destroy(gw_bus_t **self_p);

//  A login waiting for its change: on the waiting thread's stack
//  (gw_bus_wait_begin/end), or owned by gateway_login (gw_bus_wait_async).
typedef struct gw_waiter {
    char user[PRES_ID_MAX + 1];
    char session[PRES_ID_MAX + 1];
    bool done;                                     //  the change arrived
    pres_change_t change;                          //  the change, when done
    pthread_cond_t cond;                           //  blocking waiters only
    void (*fire)(struct gw_waiter *w, void *arg);  //  async waiters only
    void *arg;
    struct gw_waiter *next;
} gw_waiter_t;

//  Register w for (user, session) BEFORE publishing the login.
void gw_bus_wait_begin(gw_bus_t *self, gw_waiter_t *w, const char *user,
                       const char *session);
//  Wait up to timeout_ms for the change, then unregister w. 0 if it
//  arrived (w->change filled), -1 on timeout.
int gw_bus_wait_end(gw_bus_t *self, gw_waiter_t *w, int timeout_ms);

//  Register w for (user, session) without blocking: when the change
//  arrives, the bus thread fills w->change, unregisters w and calls
//  fire(w, arg) with the bus's waiter lock held (fire may only queue and
//  wake; it must not call back into the bus). w stays the caller's.
void gw_bus_wait_async(gw_bus_t *self, gw_waiter_t *w, const char *user,
                       const char *session, void (*fire)(gw_waiter_t *, void *),
                       void *arg);
//  Unregister an async waiter. True if it was still waiting (it will not
//  fire now), false if it has fired already.
bool gw_bus_wait_cancel(gw_bus_t *self, gw_waiter_t *w);

//  Broker health as of the last `stats` poll (at most ~1 s old), false
//  too from a gw_bus_broker_lost until a poll succeeds again. Any thread.
bool gw_bus_broker_ok(gw_bus_t *self);

//  A query of an HTTP worker waited bus_timeout_ms for nothing: the broker
//  counts as away from now (requests that need it fail fast) and the bus
//  thread probes it with `stats` at once. Any thread.
void gw_bus_broker_lost(gw_bus_t *self);

//  True while the broker is known to be away: a `stats` poll failed or a
//  query timed out, and no poll has succeeded since. *since_ms (wall
//  clock, ms since the epoch) is when it was first missed and *why says
//  how (a static string); either may be NULL. False at start, before the
//  first poll has answered either way. Any thread.
bool gw_bus_broker_away(gw_bus_t *self, int64_t *since_ms, const char **why);

//  Something looked wrong (a login got no change) but the broker may be
//  up: the bus thread polls `stats` at once, which marks it away if it
//  does not answer. Any thread.
void gw_bus_broker_probe(gw_bus_t *self);

//  A change as the JSON of SSE `data:` (NUL-terminated in buf). Returns its
//  length, or -1 if it does not fit cap. Any thread.
int gw_bus_change_json(const pres_change_t *ch, char *buf, size_t cap);

#endif

/*  itfake: a scripted broker for the tests that drive a client (the
    sweeper, presencectl watch) through cases a real broker makes hard to
    hit. It binds the broker's endpoints from a config: the query ROUTER,
    the changes XPUB (so it can tell when a subscriber has joined) and the
    events SUB, and builds the replies and changes the clients expect. */
#ifndef ITFAKE_H_INCLUDED
#define ITFAKE_H_INCLUDED

#include "itutil.h"

typedef struct it_fake it_fake_t;

//  Bind the three endpoints of cfg. Aborts the test on failure.
it_fake_t *it_fake_new(const pres_config_t *cfg);
void it_fake_destroy(it_fake_t **self_p);

//  The events SUB (subscribed to everything), for reading what clients
//  publish.
zsock_t *it_fake_events(it_fake_t *self);

//  Wait until a subscription reaches the changes XPUB (changes published
//  before would be lost to the slow joiner). true if one did.
bool it_fake_wait_subscriber(it_fake_t *self, int timeout_ms);

//  Wait until a subscription to exactly prefix reaches the changes XPUB;
//  any other subscription seen first is printed and makes it return
//  false (so a client that subscribes to more than it should is caught).
bool it_fake_wait_subscription(it_fake_t *self, const char *prefix,
                               int timeout_ms);

//  The next query request within timeout_ms: decodes it into *q (aborts
//  if it does not decode) and returns the routing identity to reply to
//  (the caller passes it to a reply function), or NULL on timeout.
zframe_t *it_fake_request(it_fake_t *self, pres_query_t *q, int timeout_ms);

//  Reply {ok: true, seq, users: [...]} to *id (consumed): a `stats` head,
//  or a `snapshot` with at most one live user (user NULL: none) holding
//  one online session with that deadline.
void it_fake_reply(it_fake_t *self, zframe_t **id, uint64_t seq,
                   const char *user, const char *session, uint64_t deadline);

//  Reply {ok: false, error} to *id (consumed).
void it_fake_error(it_fake_t *self, zframe_t **id, const char *error);

//  Publish a change or a deadline notice as the broker would.
void it_fake_change(it_fake_t *self, const pres_change_t *ch);
void it_fake_notice(it_fake_t *self, const char *user, const char *session,
                    uint64_t deadline);
//  Publish nframes raw frames on the changes XPUB (malformed input).
void it_fake_raw(it_fake_t *self, int nframes, const void *const *data,
                 const size_t *sizes);

#endif

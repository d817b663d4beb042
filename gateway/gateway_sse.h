/*  gateway_sse: GET /v1/events. A ring buffer of the latest changes
    (preformatted SSE text, `id:` = change seq) filled by the bus thread,
    and one MHD callback response per client that replays from
    Last-Event-ID, follows the live tail, sends `event: resync` when the
    gap cannot be filled, and writes a `:keepalive` comment every
    sse_keepalive seconds so dead clients are noticed and freed. Clients
    with nothing to send are suspended (MHD_ALLOW_SUSPEND_RESUME). A stream
    lives only as long as its rights: it ends, and its connection closes,
    when its token's exp + jwt_leeway passes, when its token is revoked, or
    when its subject's account is not active; nothing is written after. */
#ifndef GATEWAY_SSE_H_INCLUDED
#define GATEWAY_SSE_H_INCLUDED

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway_accounts.h"
#include "gateway_auth.h"
#include "pres_jwt.h"

#define GW_SSE_RING     4096  //  changes kept for Last-Event-ID replay
#define GW_SSE_TEXT_MAX 704   //  one formatted event, bytes

typedef struct gw_sse gw_sse_t;

//  auth and accounts are borrowed and must outlive the object; _new
//  installs the gw_auth on_revoke hook (revoked tokens end their streams
//  at once) and _destroy removes it. leeway_s = jwt_leeway.
gw_sse_t *gw_sse_new(int max_clients, int keepalive_s, int leeway_s,
                     gw_auth_t *auth, gw_accounts_t *accounts);
//  Call after gw_sse_shutdown and MHD_stop_daemon.
void gw_sse_destroy(gw_sse_t **self_p);

//  Bus thread: the broker's current seq, learnt from `stats`. Sets the
//  ring's head when nothing is known yet (changes will follow head+1).
void gw_sse_set_head(gw_sse_t *self, uint64_t seq);

//  Bus thread: append the change with this seq (json = the change as
//  JSON). A seq that is not head+1 empties the ring first (clients that
//  needed the gap get a resync). Wakes suspended clients.
void gw_sse_push(gw_sse_t *self, uint64_t seq, const char *json, size_t len);

//  Bus thread: changes up to seq were lost (a tail no later change
//  revealed). Clients that had not seen them get a resync; the ring goes
//  on from seq + 1.
void gw_sse_lost(gw_sse_t *self, uint64_t seq);

//  The head seq, false if not known yet.
bool gw_sse_head(gw_sse_t *self, uint64_t *seq);

//  A response for a new client on conn, resuming after last_event_id
//  (NULL or "" = start at the live tail), authorised by the verified
//  claims and the revocation id of its token (both copied). Before each
//  write the stream checks that claims->exp + leeway has not passed, that
//  the token is not revoked and that claims->sub's account is active;
//  otherwise it ends (Connection: close). NULL with *status set: 503 when
//  max_clients are connected or the head is unknown (broker never
//  reached), 400 for a Last-Event-ID that is not a number. Caller queues
//  it and destroys its reference.
struct MHD_Response *gw_sse_open(gw_sse_t *self, struct MHD_Connection *conn,
                                 const char *last_event_id,
                                 const pres_jwt_claims_t *claims,
                                 const gw_token_id_t *token, unsigned *status);

//  The oldest seq the ring holds; false when it holds none.
bool gw_sse_first(gw_sse_t *self, uint64_t *seq);

//  As gw_sse_open for a client whose Last-Event-ID is older than the ring:
//  backlog (heap, SSE text of the changes after it up to next - 1, read
//  from the broker's change log by the caller) is sent first, then the
//  ring from next. Takes backlog (freed, also on failure).
struct MHD_Response *
gw_sse_open_backlog(gw_sse_t *self, struct MHD_Connection *conn, char *backlog,
                    size_t len, uint64_t next, const pres_jwt_claims_t *claims,
                    const gw_token_id_t *token, unsigned *status);

//  Bus thread, every few hundred ms: end the streams whose rights are
//  gone (expired tokens above all), mark clients due a keepalive comment,
//  and wake them.
void gw_sse_tick(gw_sse_t *self, int64_t now_ms);

//  Before MHD_stop_daemon: every stream ends, suspended ones are resumed.
void gw_sse_shutdown(gw_sse_t *self);

int gw_sse_clients(gw_sse_t *self);

#endif

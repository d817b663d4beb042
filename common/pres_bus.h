/*  pres_bus: the ZeroMQ sockets every presence program opens, set up one
    way: high-water marks on purpose, frame caps on inbound sockets, CURVE
    on tcp://, and a publisher that never loses an event silently. */
#ifndef PRES_BUS_H_INCLUDED
#define PRES_BUS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>

#include "pres_config.h"
#include "pres_msg.h"

//  ZMQ_MAXMSGSIZE of the broker's events SUB and admin ROUTER: the codec's
//  frame cap plus a margin, so a larger frame never reaches memory (libzmq
//  drops the connection that sends it).
#define PRES_BUS_EVENT_MAXMSG (PRES_MSG_MAX + 512)

//  Apply CURVE to a socket when its endpoint is tcp:// (as server for
//  binds, with zap domain "presence": the broker's ZAP handler checks the
//  client keys; as client for connects, using
//  curve_secret_file and curve_server_public_file). ipc:// and inproc://
//  are left alone. Returns 0, or -1 after logging (missing cert, tcp
//  without CURVE and without bus_insecure_tcp).
int pres_bus_secure(zsock_t *sock, const pres_config_t *cfg,
                    const char *endpoint, bool server);

//  ---------------------------------------------------------------------
//  Publisher of events. An XPUB connected to the broker's SUB with
//  ZMQ_XPUB_NODROP: a full pipe gives EAGAIN instead of a silent drop. The
//  broker counts as attached once the socket monitor reports the
//  connection and the broker's subscription has arrived (a bound SUB sends
//  it when its owner next touches the socket); a disconnect detaches it.
//  So nothing is sent into the void; events queued when a broker dies are
//  counted as lost by the broker's per-src seq check. `seq` advances only when
//  a send succeeds, so any gap the broker sees is real loss. Not thread-safe:
//  one publisher per thread, each with its own src.
typedef struct pres_pub pres_pub_t;

//  A publisher id unique on the bus: "<role>-<host>-<pid>", plus "-<index>"
//  when index >= 0. The host name has non-id characters replaced by '_' and
//  is cut to 40 bytes, so the id is valid whatever the host is called. role
//  is a short id ("gateway", "sweeper", "presencectl"); cap >= PRES_ID_MAX+1.
void pres_src_id(char *out, size_t cap, const char *role, int index);

//  src must be a valid id, unique on the bus (see pres_src_id).
//  Returns NULL after logging.
pres_pub_t *pres_pub_new(const pres_config_t *cfg, const char *src);
void pres_pub_destroy(pres_pub_t **self_p);

//  Wait up to timeout_ms for the broker to be attached. true if it is.
bool pres_pub_wait(pres_pub_t *self, int timeout_ms);

//  True if the broker is attached right now (cheap; polls at most every
//  few ms for (un)subscription frames).
bool pres_pub_ready(pres_pub_t *self);

//  Publish ev: fills v, src, seq and (if 0) at. What is staged goes out
//  first. Waits at most timeout_ms for room (0 = do not wait). Returns 0,
//  or -1 with errno EAGAIN (broker absent or bus saturated for
//  timeout_ms: ev not sent) or EINVAL (ev invalid).
int pres_pub_send(pres_pub_t *self, pres_event_t *ev, int timeout_ms);

//  Batching, for a thread that publishes many small events: _post fills ev
//  as _send does and stages it, encoded, in the publisher; staged events
//  go out, in order, with the next _flush or _send, or when the stage is
//  full (PRES_PUB_STAGE_MAX events). Handing libzmq a burst at once
//  wakes its I/O thread once per burst instead of once per event
//  (docs/gateway.md, "The heartbeat hot path"). A staged event has its
//  seq: it is sent, late, even after a pause of the broker, or counted
//  as lost by the broker if the publisher is destroyed first. _post
//  waits at most timeout_ms for the broker, and for room when the stage
//  is full and the bus saturated; returns 0, or -1 with errno EAGAIN
//  (nothing staged) or EINVAL.
#define PRES_PUB_STAGE_MAX   32
#define PRES_PUB_STAGE_BYTES (4 * PRES_MSG_MAX)
int pres_pub_post(pres_pub_t *self, pres_event_t *ev, int timeout_ms);

//  Send what is staged, without waiting. Returns how many events stay
//  staged (broker absent or pipe full): 0 when all went out.
int pres_pub_flush(pres_pub_t *self);

//  Events staged and not yet sent.
int pres_pub_staged(const pres_pub_t *self);

const char *pres_pub_src(const pres_pub_t *self);
uint64_t pres_pub_seq(const pres_pub_t *self);  //  last seq sent

//  ---------------------------------------------------------------------
//  Subscriber of changes: SUB connected to changes_endpoint, subscribed to
//  `prefix` ("" for all), RCVHWM = bus_hwm, frame cap PRES_BUS_MAXMSG.
//  Caller owns the socket. NULL after logging.
zsock_t *pres_bus_sub_changes(const pres_config_t *cfg, const char *prefix);

//  Receive one message from a subscriber without waiting: its first frame
//  into topic and its last into body (frames between are dropped; body is
//  left as it was for a one-frame message). Both are initialised by the
//  caller, who closes them. Returns the number of frames, 0 when none was
//  queued (or a signal came).
int pres_bus_recv_message(void *sock, zmq_msg_t *topic, zmq_msg_t *body);

//  ---------------------------------------------------------------------
//  Query client (Lazy Pirate): a REQ socket to query_endpoint, recreated
//  after a timeout so one lost reply never wedges it. Not thread-safe.
typedef struct pres_qclient pres_qclient_t;

pres_qclient_t *pres_qclient_new(const pres_config_t *cfg);
//  The same client on admin_endpoint (account changes). The broker admits
//  it only if this process's user is in admin_peers (ipc://) or its CURVE
//  key is in curve_admin_dir (tcp://); otherwise calls time out.
pres_qclient_t *pres_qclient_new_admin(const pres_config_t *cfg);
void pres_qclient_destroy(pres_qclient_t **self_p);

//  Send one request and wait up to timeout_ms for its reply. Returns the
//  reply frame (caller owns it; zframe_destroy), or NULL with errno
//  ETIMEDOUT (logged at debug level only: the caller decides).
zframe_t *pres_qclient_call(pres_qclient_t *self, const void *req, size_t len,
                            int timeout_ms);

//  Encode q, call, and check the reply is a map with ok = true. Returns
//  the reply (caller owns), or NULL: errno ETIMEDOUT, or EPROTO with *error
//  (if not NULL) set to a heap copy of the broker's error (caller frees).
zframe_t *pres_qclient_query(pres_qclient_t *self, const pres_query_t *q,
                             int timeout_ms, char **error);

//  The same without blocking, one request in flight: send it, poll
//  pres_qclient_handle for ZMQ_POLLIN, then pres_qclient_recv; a caller
//  that gives up calls pres_qclient_abandon (the REQ socket is renewed,
//  Lazy Pirate). timeout_ms only dates an account change.
//  pres_qclient_send: 0, or -1 (errno ECONNREFUSED or ETIMEDOUT, or
//  EINVAL for a query that does not encode).
int pres_qclient_send(pres_qclient_t *self, const pres_query_t *q,
                      int timeout_ms);
//  The REQ socket to poll (libzmq handle), or NULL when none is open.
void *pres_qclient_handle(pres_qclient_t *self);
//  The reply if one is there: as pres_qclient_query's result, or NULL with
//  errno EAGAIN (nothing yet) or EPROTO (error as there).
zframe_t *pres_qclient_recv(pres_qclient_t *self, char **error);
void pres_qclient_abandon(pres_qclient_t *self);

//  Pipelined: any number of requests in flight on one DEALER socket to
//  query_endpoint, each with a caller's 64-bit tag that its reply comes
//  back with. Nothing is re-sent or timed out here: a reply that never
//  comes costs its caller a timeout, and a late one arrives with a tag
//  the caller no longer knows (and drops). Poll pres_qclient_handle.
pres_qclient_t *pres_qclient_new_pipelined(const pres_config_t *cfg);
//  Send q tagged. 0, or -1 with errno (EAGAIN: no broker connected or no
//  room; ECONNREFUSED: no socket; EINVAL: q does not encode).
int pres_qclient_post(pres_qclient_t *self, const pres_query_t *q, uint64_t tag,
                      int timeout_ms);
//  The next reply: as pres_qclient_query's result with *tag set, or NULL
//  with errno EPROTO (*tag set, *error as there) or EAGAIN (none waiting).
zframe_t *pres_qclient_take(pres_qclient_t *self, uint64_t *tag, char **error);

#endif

/*  gateway_conns: the open HTTP connections and how long each may take
    to deliver a request. A new connection must deliver its first request
    (headers and body) within header_timeout; a kept-alive one that is
    waiting must start its next request within idle_timeout, and deliver
    it within header_timeout of its request line. Time spent answering
    (an event stream, a login waiting for the broker) does not count. A
    periodic pass hands the connections past their deadline to a callback
    that closes them. No MHD and no clock: callers pass now_ms
    (monotonic). Thread-safe: the state calls of one connection come from
    the one thread serving it; the pass may run on any thread. */
#ifndef GATEWAY_CONNS_H_INCLUDED
#define GATEWAY_CONNS_H_INCLUDED

#include <stdint.h>

#include "gateway_addr.h"

typedef struct gw_conns gw_conns_t;
typedef struct gw_conn gw_conn_t;

//  Timeouts in ms (> 0). NULL after logging (no memory).
gw_conns_t *gw_conns_new(int64_t header_timeout_ms, int64_t idle_timeout_ms);
//  Frees the connections still registered.
void gw_conns_destroy(gw_conns_t **self_p);

//  Register a connection accepted at now_ms from peer, on socket fd.
//  NULL on allocation failure (logged).
gw_conn_t *gw_conns_open(gw_conns_t *self, const gw_addr_t *peer, int fd,
                         int64_t now_ms);

//  Unregister and free *c_p (NULL-safe). Once it returns, the pass no
//  longer sees the connection, so the socket may be closed after it.
void gw_conns_close(gw_conns_t *self, gw_conn_t **c_p);

//  The peer address given at open (borrowed).
const gw_addr_t *gw_conn_peer(const gw_conn_t *c);

//  A request line arrived (MHD's URI callback).
void gw_conn_request(gw_conns_t *self, gw_conn_t *c, int64_t now_ms);

//  The request is fully received: no deadline while it is answered.
void gw_conn_received(gw_conn_t *c);

//  The answer is done: the connection waits for its next request.
void gw_conn_idle(gw_conns_t *self, gw_conn_t *c, int64_t now_ms);

//  Call close_fd(arg, fd) for each connection past its deadline, once
//  per connection, under the registry lock (so fd is still open). Returns
//  how many.
int gw_conns_expire(gw_conns_t *self, int64_t now_ms,
                    void (*close_fd)(void *arg, int fd), void *arg);

//  Connections registered.
int gw_conns_count(gw_conns_t *self);

#endif

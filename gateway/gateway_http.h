/*  gateway_http: the libmicrohttpd daemon (epoll, a pool of http_threads
    workers, suspend/resume for SSE) and its callbacks. The access handler
    takes headers on the first call, the body on the intermediate ones
    and routes on the final one (gateway_routes). The connection policy
    is enforced here with gateway_limit and gateway_conns: an accept
    policy and a firm check at connection start cap connections per
    address, and a reaper thread closes connections whose request is not
    received within http_header_timeout (or whose keep-alive wait passes
    http_idle_timeout). */
#ifndef GATEWAY_HTTP_H_INCLUDED
#define GATEWAY_HTTP_H_INCLUDED

#include <sys/socket.h>

#include "gateway_req.h"
#include "gateway_workers.h"

typedef struct gw_http gw_http_t;

//  Listen on addr and serve with env (borrowed, with env->conns and
//  env->limit set) and workers (borrowed); both must outlive the daemon.
//  NULL after logging why.
gw_http_t *gw_http_start(const gw_env_t *env, gw_workers_t *workers,
                         const struct sockaddr_storage *addr);

//  Fuzz and test only: a daemon without listening socket, internal thread
//  or reaper (no header timeout). The caller hands it connected sockets
//  (MHD_add_connection on gw_http_daemon) and runs it (MHD_run) itself,
//  always from the same thread; handlers run on that thread.
gw_http_t *gw_http_start_external(const gw_env_t *env, gw_workers_t *workers);

//  The MHD daemon (for the external mode).
struct MHD_Daemon *gw_http_daemon(const gw_http_t *self);

//  Stop the reaper and the daemon (end SSE streams first: gw_sse_shutdown).
void gw_http_stop(gw_http_t **self_p);

//  The TCP port actually bound.
int gw_http_port(const gw_http_t *self);

#endif

/*  gateway: the presence gateway object (docs/protocol.md section 3). It
    owns the services (token checks, account cache, event streams, bus
    thread, metrics, limits), the worker pool and the HTTP daemon, and
    wires them together; docs/gateway.md maps the files. */
#ifndef GATEWAY_H_INCLUDED
#define GATEWAY_H_INCLUDED

#include "pres_config.h"

struct MHD_Daemon;

typedef struct gateway gateway_t;

//  Start the gateway on cfg->http_listen ("host:port", port 0 = any).
//  cfg is borrowed and must outlive the gateway; data_dir must exist.
//  NULL after logging why.
gateway_t *gateway_new(const pres_config_t *cfg);

//  Fuzz and test only: as gateway_new, but the HTTP daemon neither listens
//  nor runs a thread (http_listen is parsed, not bound): the caller hands
//  it connected sockets (MHD_add_connection on gateway_mhd) and runs it
//  (MHD_run) itself, always from the same thread. No header timeout.
gateway_t *gateway_new_external(const pres_config_t *cfg);

//  The gateway's MHD daemon (meant for the external mode).
struct MHD_Daemon *gateway_mhd(const gateway_t *self);

//  Stop: ends SSE streams, stops the daemon, the bus thread, frees all.
void gateway_destroy(gateway_t **self_p);

//  The TCP port actually bound.
int gateway_port(const gateway_t *self);

#endif

/*  gateway: the presence gateway object (docs/protocol.md section 3). It
    owns the services (token checks, account cache, event streams, bus
    thread, metrics, limits), the worker pool and the HTTP daemon, and
    wires them together; docs/gateway.md maps the files. */
#ifndef GATEWAY_H_INCLUDED
#define GATEWAY_H_INCLUDED

#include "pres_config.h"

typedef struct gateway gateway_t;

//  Start the gateway on cfg->http_listen ("host:port", port 0 = any).
//  cfg is borrowed and must outlive the gateway; data_dir must exist.
//  NULL after logging why.
gateway_t *gateway_new(const pres_config_t *cfg);

//  Stop: ends SSE streams, stops the daemon, the bus thread, frees all.
void gateway_destroy(gateway_t **self_p);

//  The TCP port actually bound.
int gateway_port(const gateway_t *self);

#endif

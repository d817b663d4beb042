/*  broker_auth: the broker's ZAP handler (ZeroMQ's authentication hook;
    one per process). It decides who may connect to which socket:
    - domain BROKER_AUTH_BUS (events, changes, queries on tcp://): CURVE
      client keys listed in curve_clients_dir ("*" = any key);
    - domain BROKER_AUTH_ADMIN (the admin endpoint): on ipc:// the peer's
      uid (SO_PEERCRED, which libzmq passes in the ZAP address as
      "…:uid:gid:pid") must be in admin_peers; on tcp:// its CURVE key
      must be in curve_admin_dir.
    An admitted admin peer carries its identity as the ZMQ "User-Id"
    property of every frame it sends ("unix:<user>" or "curve:<name>").
    Runs as a czmq actor (its own thread); the refusal counter is atomic. */
#ifndef BROKER_AUTH_H_INCLUDED
#define BROKER_AUTH_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "pres_config.h"

#define BROKER_AUTH_BUS   "presence"
#define BROKER_AUTH_ADMIN "presence-admin"

typedef struct broker_auth broker_auth_t;

//  Resolve admin_peers (names or uids; "" = the broker's own user), load
//  the certificate stores in use, start the handler. Must run before any
//  socket with a ZAP domain is bound. cfg is borrowed and must outlive
//  the handler. NULL after logging (unknown user name, missing dir).
broker_auth_t *broker_auth_new(const pres_config_t *cfg);

//  Stops the handler thread.
void broker_auth_destroy(broker_auth_t **self_p);

//  Connections refused at the admin endpoint since start (any thread).
uint64_t broker_auth_admin_refused(const broker_auth_t *self);

#endif

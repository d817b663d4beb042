/*  broker_ha: leader election through etcd (docs/ha.md). A thread that
    registers this broker's endpoints under <etcd_prefix>/members/<node>,
    campaigns for <etcd_prefix>/leader with a compare-and-create under a
    lease of failover_ttl seconds, renews the lease every ttl/3 and gives
    leadership up at a deadline shorter than the lease, measured from the
    last renewal etcd confirmed. The term is the leader key's create
    revision: etcd makes it grow with every election. The broker's loop
    reads the outcome with broker_ha_view; everything else is this
    module's thread. */
#ifndef BROKER_HA_H_INCLUDED
#define BROKER_HA_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "pres_config.h"

typedef enum {
    BROKER_HA_FOLLOWER,  //  no leadership: standby, or no leader known
    BROKER_HA_LEADER,    //  this broker holds the leader key
} broker_ha_role_t;

typedef struct {
    broker_ha_role_t role;
    int64_t term;                         //  current leader's term, 0 none
    char leader[64];                      //  its node_name, "" none
    char leader_repl[PRES_ENDPOINT_MAX];  //  its repl_endpoint
    int64_t valid_until;  //  leader: monotonic ms until which it may lead
} broker_ha_view_t;

typedef struct broker_ha broker_ha_t;

//  Start the election thread. cfg is borrowed (must outlive the object)
//  and must have etcd_endpoints set. NULL after logging.
broker_ha_t *broker_ha_new(const pres_config_t *cfg);

//  Stop the thread; a leader deletes its key and revokes its lease so a
//  standby takes over at once rather than after the lease.
void broker_ha_destroy(broker_ha_t **self_p);

//  A consistent copy of the election state. Thread-safe.
void broker_ha_view(broker_ha_t *self, broker_ha_view_t *view);

//  True while this broker is leader and its lease is certainly alive
//  (monotonic clock before valid_until). Thread-safe.
bool broker_ha_leading(broker_ha_t *self);

//  Tell the election whether this broker holds the latest committed state
//  (a standby that follows the leader): such a broker campaigns as soon
//  as the leader key is gone; one that is not waits a full failover_ttl
//  first so a ready standby wins (unless no other broker ever registered
//  under the prefix: a lone broker leads at once). Thread-safe.
void broker_ha_set_ready(broker_ha_t *self, bool ready);

//  Give leadership up now (the caller stopped leading, e.g. it could not
//  replicate): delete the key, revoke the lease. Thread-safe.
void broker_ha_resign(broker_ha_t *self);

#endif

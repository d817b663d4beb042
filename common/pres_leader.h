/*  pres_leader: how the gateway, the sweeper and presencectl find the
    broker under fail-over (docs/ha.md). With etcd_endpoints set, the
    endpoints come from etcd: events and changes go to every broker that
    registered under <etcd_prefix>/members/ (only the leader binds them, so
    ZeroMQ's reconnects find the new leader by themselves), queries and
    admin requests go to the leader named by <etcd_prefix>/leader, which a
   background thread re-reads every 250 ms. Without etcd nothing changes. */
#ifndef PRES_LEADER_H_INCLUDED
#define PRES_LEADER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "pres_config.h"

//  If cfg->etcd_endpoints is set: wait up to wait_ms for a leader, then
//  rewrite cfg's events_endpoint and changes_endpoint as comma lists of
//  every member's, and query_endpoint and admin_endpoint as the leader's,
//  and start the
//  watcher thread (once per process). 0, or -1 after logging (etcd
//  unreachable or no leader within wait_ms). Call from main before any
//  socket is made.
int pres_leader_resolve(pres_config_t *cfg, int wait_ms);

//  The current leader's query endpoint (admin = false) or admin endpoint
//  into out (cap bytes), and its term. false when fail-over is off or no
//  leader is known (use the config). Thread-safe.
bool pres_leader_endpoint(bool admin, char *out, size_t cap, int64_t *term);

#endif

/*  gateway_limit: how much one caller may take. Token buckets per token
    subject (authenticated requests) and per client address (everything
    else; IPv6 grouped by /64), and open connections per address, with
    trusted proxies exempt from the connection cap. Keys live in a fixed
    table under a keyed hash (SipHash-2-4, random key per process) and are
    compared in full, so two callers never share a bucket. No MHD and no
    clock: every call takes now_ms (monotonic), so tests drive time.
    Thread-safe (striped mutexes). */
#ifndef GATEWAY_LIMIT_H_INCLUDED
#define GATEWAY_LIMIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway_addr.h"

typedef struct gw_limit gw_limit_t;

typedef struct {
    double user_rate;   //  requests/s per token subject; 0 = no limit
    double user_burst;  //  bucket size per subject (>= 1)
    double addr_rate;   //  requests/s per client address; 0 = no limit
    double addr_burst;  //  bucket size per address (>= 1)
    int addr_conns;     //  open connections per address; 0 = no limit
    size_t capacity;    //  keys tracked at once (rounded up, at least 64)
    const gw_cidrs_t *trusted;  //  copied; exempt from addr_conns; may be NULL
    //  Tests only: replaces the keyed hash (NULL = SipHash), to force
    //  collisions.
    uint64_t (*hash)(const uint8_t *key, size_t len);
} gw_limit_config_t;

//  NULL after logging (no memory).
gw_limit_t *gw_limit_new(const gw_limit_config_t *cfg);
void gw_limit_destroy(gw_limit_t **self_p);

//  Take one request from the subject's bucket. True if allowed; false
//  when the bucket is empty (answer 429).
bool gw_limit_user(gw_limit_t *self, const char *sub, int64_t now_ms);

//  Take one request from the client address's bucket (unauthenticated
//  and failed-auth requests). True if allowed.
bool gw_limit_addr(gw_limit_t *self, const gw_addr_t *client, int64_t now_ms);

//  True if peer may open one more connection now (a check only, for the
//  accept policy).
bool gw_limit_conn_room(gw_limit_t *self, const gw_addr_t *peer);

//  Count a connection from peer. True if it is within the cap (counted;
//  call gw_limit_conn_close when it ends), false if over it (not counted:
//  close it). Trusted proxies and addr_conns = 0: always true.
bool gw_limit_conn_open(gw_limit_t *self, const gw_addr_t *peer,
                        int64_t now_ms);

//  A counted connection of peer ended.
void gw_limit_conn_close(gw_limit_t *self, const gw_addr_t *peer);

//  Open connections counted for peer (tests, metrics).
int gw_limit_conns(gw_limit_t *self, const gw_addr_t *peer);

//  True if peer is a trusted proxy.
bool gw_limit_trusted(const gw_limit_t *self, const gw_addr_t *peer);

//  The client a trusted peer forwards for (gw_addr_forwarded with the
//  trusted list); header NULL when the request carries none.
void gw_limit_client(const gw_limit_t *self, const gw_addr_t *peer,
                     gw_fwd_t kind, const char *header, gw_addr_t *client);

#endif

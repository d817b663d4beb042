/*  gateway_workers: the worker pool. Each HTTP worker thread owns its
    event publisher, query client, token cache and recycled request
    contexts (none of them thread-safe; the token cache, shared by all
    workers, is), claimed at the thread's first
    request: prebuilt at start for http_threads threads (their sockets
    connect meanwhile), made on demand for any further thread, up to
    GW_WORKERS_MAX. */
#ifndef GATEWAY_WORKERS_H_INCLUDED
#define GATEWAY_WORKERS_H_INCLUDED

#include "gateway_auth.h"
#include "gateway_req.h"
#include "pres_bus.h"
#include "pres_config.h"

#define GW_WORKERS_MAX 64  //  worker contexts (threads) at most

struct gw_worker {
    int index;                    //  0.. ; src suffix
    pres_pub_t *pub;              //  this thread's event publisher
    pres_qclient_t *query;        //  this thread's query client
    pres_qclient_t *admin;        //  admin endpoint client, made on first use
    gw_auth_cache_t *auth_cache;  //  verified tokens, shared (borrowed)
    gw_req_cache_t *reqs;         //  recycled request contexts
};

typedef struct gw_workers gw_workers_t;

//  Build `prebuilt` workers (publishers named by pres_src_id, role
//  "gateway"). cfg is borrowed. NULL after logging.
gw_workers_t *gw_workers_new(const pres_config_t *cfg, int prebuilt);
//  After the HTTP daemon has stopped.
void gw_workers_destroy(gw_workers_t **self_p);

//  The calling thread's worker, claimed on first use. NULL when every
//  worker is taken or one cannot be made (the request is dropped).
gw_worker_t *gw_workers_mine(gw_workers_t *self);

//  A request is done: recycled when the caller is its worker's thread,
//  freed otherwise. Nulls *req_p.
void gw_workers_release(gw_workers_t *self, gw_req_t **req_p);

#endif

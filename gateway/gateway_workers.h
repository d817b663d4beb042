/*  gateway_workers: the worker pool. Each HTTP worker thread owns a
    worker context: its query client and recycled request contexts
    (neither thread-safe), and the token cache shared by all (which is).
    A thread claims its context at its first request: prebuilt at start
    for http_threads threads (their sockets connect meanwhile), made on
    demand for any further thread, up to GW_WORKERS_MAX.

    Events are published through the prebuilt workers' publishers, each
    user's always through the same one (gw_workers_publish); heartbeats in
    bursts: staged in that publisher, which sends the stage when it is
    full, and the pool's flusher thread, awake while heartbeats come,
    sends every stage each GW_FLUSH_US; it sleeps on a condition variable
    once a pass finds nothing staged. A publisher is thus shared by every
    HTTP thread and the flusher, under its worker's pub_lock. */
#ifndef GATEWAY_WORKERS_H_INCLUDED
#define GATEWAY_WORKERS_H_INCLUDED

#include <pthread.h>

#include "gateway_auth.h"
#include "gateway_req.h"
#include "pres_bus.h"
#include "pres_config.h"

#define GW_WORKERS_MAX 64    //  worker contexts (threads) at most
#define GW_FLUSH_US    1000  //  a staged heartbeat waits at most about this

typedef struct gw_workers gw_workers_t;

struct gw_worker {
    int index;                    //  0.. ; src suffix
    gw_workers_t *pool;           //  the pool it belongs to
    pthread_mutex_t pub_lock;     //  guards pub (any HTTP thread, flusher)
    pres_pub_t *pub;              //  the events it carries (prebuilt only)
    pres_qclient_t *query;        //  this thread's query client
    pres_qclient_t *admin;        //  admin endpoint client, made on first use
    gw_auth_cache_t *auth_cache;  //  verified tokens, shared (borrowed)
    gw_req_cache_t *reqs;         //  recycled request contexts
};

//  Build `prebuilt` workers (publishers named by pres_src_id, role
//  "gateway"). cfg is borrowed. NULL after logging.
gw_workers_t *gw_workers_new(const pres_config_t *cfg, int prebuilt);
//  After the HTTP daemon has stopped.
void gw_workers_destroy(gw_workers_t **self_p);

//  The calling thread's worker, claimed on first use. NULL when every
//  worker is taken or one cannot be made (the request is dropped).
gw_worker_t *gw_workers_mine(gw_workers_t *self);

//  Publish ev; any thread. A user's events always go through the same
//  prebuilt worker's publisher (its carrier, by a hash of the user), so
//  they reach the broker in the order they were answered in, whichever
//  thread served them. A heartbeat is staged (pres_pub_post) and goes out
//  in a burst within about GW_FLUSH_US; any other event is sent at once,
//  behind what its carrier staged (pres_pub_send). timeout_ms and the
//  return: those of pres_pub_send.
int gw_workers_publish(gw_workers_t *self, pres_event_t *ev, int timeout_ms);

//  A request is done: recycled when the caller is its worker's thread,
//  freed otherwise. Nulls *req_p.
void gw_workers_release(gw_workers_t *self, gw_req_t **req_p);

#endif

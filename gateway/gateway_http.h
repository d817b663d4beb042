/*  gateway_http: the presence gateway object. Runs the libmicrohttpd
    daemon (epoll, a pool of cfg.http_threads workers, suspend/resume for
    SSE), enforces the limits (connections, per-IP connections and rate,
    idle timeout, header memory, 4 KiB bodies), routes requests, answers
    CORS, serves the embedded dashboard, /healthz and /metrics, and hands
    /v1 calls to gateway_api. Each worker thread owns its own event
    publisher, query client and token cache. */
#ifndef GATEWAY_HTTP_H_INCLUDED
#define GATEWAY_HTTP_H_INCLUDED

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway_accounts.h"
#include "gateway_auth.h"
#include "gateway_bus.h"
#include "gateway_metrics.h"
#include "gateway_sse.h"
#include "pres_bus.h"
#include "pres_config.h"
#include "pres_jwt.h"

#define GW_BODY_MAX 4096  //  request body cap, bytes (SPEC section 3)
#define GW_BULK_BODY_MAX                                                       \
    (80 * 1024)            //  POST /v1/users/batch: 1,000 ids of 64 bytes fit
#define GW_WORKERS_MAX 64  //  worker contexts (threads) at most

typedef struct gateway gateway_t;

//  Start the gateway on cfg->http_listen ("host:port", port 0 = any).
//  cfg is borrowed and must outlive the gateway; data_dir must exist.
//  NULL after logging why.
gateway_t *gateway_new(const pres_config_t *cfg);

//  Stop: ends SSE streams, stops the daemon, the bus thread, frees all.
void gateway_destroy(gateway_t **self_p);

//  The TCP port actually bound.
int gateway_port(const gateway_t *self);

//  ---------------------------------------------------------------------
//  Internal to gateway_*.c.

//  Per worker-thread resources (claimed by a thread at its first request).
typedef struct {
    int index;                    //  0.. ; src suffix
    pres_pub_t *pub;              //  this thread's event publisher
    pres_qclient_t *query;        //  this thread's query client
    pres_qclient_t *admin;        //  admin endpoint client, made on first use
    gw_auth_cache_t *auth_cache;  //  verified tokens
    struct gw_req *free_reqs;     //  recycled request contexts
    int nfree;
} gw_worker_t;

//  One request in flight (MHD's con_cls).
typedef struct gw_req {
    gateway_t *gw;
    gw_worker_t *worker;  //  owner, for recycling
    struct gw_req *next_free;
    gw_route_t route;
    bool too_big;         //  body over body_max
    size_t body_max;      //  GW_BODY_MAX, or GW_BULK_BODY_MAX (batch)
    char *bulk;           //  heap body of a batch request, or NULL
    size_t upload_total;  //  bytes offered by MHD
    size_t body_len;
    const char *origin;        //  allowed CORS origin to echo, or NULL
    int cors_index;            //  index of origin in the list, -1 = "*"
    pres_jwt_claims_t claims;  //  the caller, once authenticated
    const char *token;         //  bearer token (in MHD's header memory)
    size_t token_len;
    char body[GW_BODY_MAX + 1];  //  NUL-terminated; last (not zeroed)
} gw_req_t;

//  The request body (NUL-terminated): body, or bulk for a batch.
static inline const char *
gw_req_body(const gw_req_t *req)
{
    return req->bulk ? req->bulk : req->body;
}

struct gateway {
    const pres_config_t *cfg;
    struct MHD_Daemon *daemon;
    int port;
    gw_auth_t *auth;
    gw_accounts_t *accounts;
    gw_sse_t *sse;
    gw_bus_t *bus;
    void *ratelimit;  //  s_rl_t, NULL when rate_limit = 0
    pthread_mutex_t worker_lock;
    gw_worker_t *workers[GW_WORKERS_MAX];
    int nworkers;   //  created
    int nclaimed;   //  handed to threads
    char host[32];  //  for publisher src ids
    //  Shared prebuilt responses (MHD responses are refcounted).
    struct MHD_Response *r204;          //  empty 204, no CORS
    struct MHD_Response *r204_any;      //  with Access-Control-Allow-Origin: *
    struct MHD_Response **r204_origin;  //  one per listed origin
    char **origins;  //  cors_origins split; NULL when none/"*"
    int norigins;
    bool cors_any;  //  cors_origins = "*"
};

//  Send a JSON body with status (copied). Counts the request. Returns
//  MHD's result.
enum MHD_Result gw_http_json(gw_req_t *req, struct MHD_Connection *conn,
                             unsigned status, const char *json, size_t len);

//  Send {"error": msg} with status.
enum MHD_Result gw_http_error(gw_req_t *req, struct MHD_Connection *conn,
                              unsigned status, const char *msg);

//  Send 204 (shared response).
enum MHD_Result gw_http_no_content(gw_req_t *req, struct MHD_Connection *conn);

//  Queue resp (adding CORS headers), count, and drop our reference.
enum MHD_Result gw_http_send(gw_req_t *req, struct MHD_Connection *conn,
                             unsigned status, struct MHD_Response *resp);

#endif

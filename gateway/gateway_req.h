/*  gateway_req: the request/reply layer under the handlers. One gw_req_t
    per HTTP request (MHD's con_cls) holds the body (at most GW_BODY_MAX
    bytes; 413 beyond), the client address, the caller once
    authenticated and the route's path parameter. Replies: JSON, JSON
    errors, shared 204s, each with the CORS headers the request earned.
    gw_env_t is all a handler may use of the gateway. A request is served
    by one thread at a time; replies are queued on the final handler call
    (docs/libraries.md section 7), except the 413 for a declared oversize
    body. */
#ifndef GATEWAY_REQ_H_INCLUDED
#define GATEWAY_REQ_H_INCLUDED

#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "gateway_accounts.h"
#include "gateway_addr.h"
#include "gateway_auth.h"
#include "gateway_bus.h"
#include "gateway_conns.h"
#include "gateway_limit.h"
#include "gateway_metrics.h"
#include "gateway_sse.h"
#include "pres_config.h"
#include "pres_jwt.h"

#define GW_BODY_MAX 4096  //  request body cap, bytes (protocol.md 3)
#define GW_BULK_BODY_MAX                                                       \
    (80 * 1024)  //  POST /v1/users/batch: 1,000 ids of 64 bytes fit
#define GW_UPLOAD_ABORT (64 * 1024)  //  chunked bodies beyond this: drop

typedef struct gw_cors gw_cors_t;      //  allowed origins, shared 204s
typedef struct gw_worker gw_worker_t;  //  gateway_workers.h
struct gw_static;                      //  gateway_static.h

//  The gateway as handlers see it: borrowed services, alive for as long
//  as requests are served.
typedef struct {
    const pres_config_t *cfg;
    gw_auth_t *auth;
    gw_accounts_t *accounts;
    gw_sse_t *sse;
    gw_bus_t *bus;
    struct gw_login *login;  //  logins in flight (gateway_login.h)
    gw_metrics_t *metrics;
    gw_limit_t *limit;
    gw_conns_t *conns;
    gw_cors_t *cors;
    struct gw_static *statics;
    gw_fwd_t fwd;  //  the header trusted proxies write
} gw_env_t;

//  One request in flight.
typedef struct gw_req {
    const gw_env_t *gw;        //  services
    gw_worker_t *worker;       //  the serving thread's resources
    struct gw_req *next_free;  //  in a gw_req_cache_t
    gw_route_t route;          //  metrics label
    bool too_big;              //  body over body_max
    size_t body_max;           //  GW_BODY_MAX, or GW_BULK_BODY_MAX (batch)
    char *bulk;                //  heap body when body_max > GW_BODY_MAX
    size_t upload_total;       //  bytes offered by MHD
    size_t body_len;
    const char *origin;        //  allowed CORS origin to echo, or NULL
    int cors_index;            //  index of origin in the list, -1 = "*"
    gw_addr_t client;          //  the caller's address, for the limits
    pres_jwt_claims_t claims;  //  the caller, once authenticated
    const char *token;         //  bearer token (in MHD's header memory)
    size_t token_len;
    void *login;  //  a gateway_login job, one plain block: freed with req
    char param[PRES_ID_MAX + 1];  //  the route's {user} or {file}
    char body[GW_BODY_MAX + 1];   //  NUL-terminated; last (not zeroed)
} gw_req_t;

//  Recycled request contexts of one thread (not thread-safe).
typedef struct gw_req_cache gw_req_cache_t;
gw_req_cache_t *gw_req_cache_new(void);
void gw_req_cache_destroy(gw_req_cache_t **self_p);

//  A reset request for env, served by worker; from cache when it has
//  one. NULL when out of memory.
gw_req_t *gw_req_new(gw_req_cache_t *cache, const gw_env_t *env,
                     gw_worker_t *worker);
//  Back into cache (bounded), or freed when cache is NULL or full.
void gw_req_recycle(gw_req_cache_t *cache, gw_req_t **req_p);

//  First handler call: set req->client from the TCP peer, or from the
//  forwarding header when the peer is a trusted proxy; match Origin.
void gw_req_start(gw_req_t *req, struct MHD_Connection *conn,
                  const gw_addr_t *peer);

//  First handler call: the one route whose body may be larger
//  (POST /v1/users/batch) raises req->body_max to GW_BULK_BODY_MAX.
void gw_req_allow_bulk(gw_req_t *req, const char *url, const char *method);

//  The body, NUL-terminated (req->body, or the heap one of a bulk body).
const char *gw_req_body(const gw_req_t *req);

//  First handler call: true when Content-Length declares more than
//  req->body_max (or is not a number); req->too_big is then set.
bool gw_req_declares_too_big(gw_req_t *req, struct MHD_Connection *conn);

//  Intermediate calls: take *size bytes of body (setting *size to 0).
//  MHD_NO when a chunked body runs past GW_UPLOAD_ABORT (drop the link).
enum MHD_Result gw_req_upload(gw_req_t *req, const char *data, size_t *size);

//  ---------------------------------------------------------------------
//  Replies. Each queues one response, counts the request under
//  req->route with its status, and returns MHD's result.

//  Queue resp (adding CORS headers) and drop our reference.
enum MHD_Result gw_req_send(gw_req_t *req, struct MHD_Connection *conn,
                            unsigned status, struct MHD_Response *resp);
//  Queue a shared prebuilt response as it is.
enum MHD_Result gw_req_send_shared(gw_req_t *req, struct MHD_Connection *conn,
                                   unsigned status, struct MHD_Response *resp);
//  A JSON body (copied).
enum MHD_Result gw_req_json(gw_req_t *req, struct MHD_Connection *conn,
                            unsigned status, const char *json, size_t len);
//  {"error": msg}.
enum MHD_Result gw_req_error(gw_req_t *req, struct MHD_Connection *conn,
                             unsigned status, const char *msg);
//  Count the refusal `why`, then {"error": msg}.
enum MHD_Result gw_req_refuse(gw_req_t *req, struct MHD_Connection *conn,
                              gw_reject_t why, unsigned status,
                              const char *msg);
//  204 (shared).
enum MHD_Result gw_req_no_content(gw_req_t *req, struct MHD_Connection *conn);
//  405 with Allow.
enum MHD_Result gw_req_method_not_allowed(gw_req_t *req,
                                          struct MHD_Connection *conn,
                                          const char *allow);
//  413 (counted as too_big).
enum MHD_Result gw_req_too_big(gw_req_t *req, struct MHD_Connection *conn);

//  ---------------------------------------------------------------------
//  CORS: cors_origins split, and one shared 204 per allowed origin.
//  NULL after logging (no memory).
gw_cors_t *gw_cors_new(const char *cors_origins);
void gw_cors_destroy(gw_cors_t **self_p);

#endif

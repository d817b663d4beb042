/*  gateway_metrics: the gateway's counters and latency histograms, one
    object per gateway shared by every thread (relaxed atomics, no locks),
    and their rendering as Prometheus text for GET /metrics. */
#ifndef GATEWAY_METRICS_H_INCLUDED
#define GATEWAY_METRICS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

//  Routes, as counted and labelled.
typedef enum {
    GW_ROUTE_LOGIN = 0,
    GW_ROUTE_HEARTBEAT,
    GW_ROUTE_LOGOUT,
    GW_ROUTE_USER,   //  GET /v1/users/{user}
    GW_ROUTE_USERS,  //  GET /v1/users
    GW_ROUTE_STATS,
    GW_ROUTE_ACCOUNT,  //  PUT /v1/users/{user}/account
    GW_ROUTE_EVENTS,
    GW_ROUTE_STATIC,  //  /, /app.js, /app.css
    GW_ROUTE_HEALTHZ,
    GW_ROUTE_METRICS,
    GW_ROUTE_OPTIONS,  //  CORS preflight
    GW_ROUTE_BATCH,    //  POST /v1/users/batch
    GW_ROUTE_AUDIT,    //  GET /v1/users/{user}/audit
    GW_ROUTE_HISTORY,  //  GET /v1/users/{user}/history
    GW_ROUTE_SERIES,   //  GET /v1/stats/series
    GW_ROUTE_OTHER,    //  404s and early refusals
    GW_ROUTE_COUNT
} gw_route_t;

//  Why a request was refused (beyond its status).
typedef enum {
    GW_REJ_RATE_LIMITED = 0,
    GW_REJ_TOO_BIG,
    GW_REJ_NO_TOKEN,
    GW_REJ_BAD_TOKEN,  //  any pres_jwt_verify failure
    GW_REJ_EXPIRED,
    GW_REJ_REVOKED,
    GW_REJ_NOT_ADMIN,
    GW_REJ_ACCOUNT,  //  non-active account at login/heartbeat
    GW_REJ_BAD_REQUEST,
    GW_REJ_BUS_BUSY,        //  publisher EAGAIN
    GW_REJ_BROKER_TIMEOUT,  //  query or login wait timed out
    GW_REJ_SSE_FULL,
    GW_REJ_RATE_LIMITED_ADDR,  //  per-address bucket empty (no valid token)
    GW_REJ_CONN_PER_ADDR,      //  connection refused: address at its cap
    GW_REJ_HEADER_TIMEOUT,     //  request not received within the timeout
    GW_REJ_COUNT
} gw_reject_t;

typedef enum {
    GW_LAT_PUBLISH = 0,  //  pres_pub_send
    GW_LAT_QUERY,        //  broker query round trip
    GW_LAT_LOGIN,        //  login publish -> matching change
    GW_LAT_COUNT
} gw_latency_t;

typedef struct gw_metrics gw_metrics_t;

const char *gw_route_name(gw_route_t r);

//  All counters at zero. NULL on allocation failure (logged).
gw_metrics_t *gw_metrics_new(void);
void gw_metrics_destroy(gw_metrics_t **self_p);

//  Count one request with its final status code. Any thread.
void gw_metrics_request(gw_metrics_t *self, gw_route_t route, unsigned status);
//  Count one refusal.
void gw_metrics_reject(gw_metrics_t *self, gw_reject_t why);
//  Count one event published (pres_ev_type_t value 1..5).
void gw_metrics_published(gw_metrics_t *self, int ev_type);
//  Record one latency sample, in microseconds.
void gw_metrics_latency(gw_metrics_t *self, gw_latency_t which, int64_t usec);
//  Changes seen on the bus, and gaps in their seq.
void gw_metrics_change(gw_metrics_t *self, uint64_t gap);

//  Current count of requests of a route with a status (tests).
uint64_t gw_metrics_requests(gw_metrics_t *self, gw_route_t route,
                             unsigned status);
uint64_t gw_metrics_rejects(gw_metrics_t *self, gw_reject_t why);

//  Render everything, with the gauges given (open event streams, open
//  connections, logins in flight), as Prometheus text exposition format
//  0.0.4. Returns a heap string the caller frees (*len its length), or
//  NULL.
char *gw_metrics_render(gw_metrics_t *self, int sse_clients, int connections,
                        int logins, size_t *len);

//  The broker's fail-over state from its stats (docs/ha.md): leader term
//  and standby lag in changes. Rendered only once a term is known.
void gw_metrics_ha(gw_metrics_t *self, uint64_t term, uint64_t lag);

#endif

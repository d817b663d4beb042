/*  gateway_metrics: the gateway's counters and latency histograms, shared
    by every worker thread (relaxed atomics, no locks), and their rendering
    as Prometheus text for GET /metrics. */
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
    GW_REJ_COUNT
} gw_reject_t;

typedef enum {
    GW_LAT_PUBLISH = 0,  //  pres_pub_send
    GW_LAT_QUERY,        //  broker query round trip
    GW_LAT_LOGIN,        //  login publish -> matching change
    GW_LAT_COUNT
} gw_latency_t;

const char *gw_route_name(gw_route_t r);

//  Count one request with its final status code.
void gw_metrics_request(gw_route_t route, unsigned status);
//  Count one refusal.
void gw_metrics_reject(gw_reject_t why);
//  Count one event published (pres_ev_type_t value 1..5).
void gw_metrics_published(int ev_type);
//  Record one latency sample, in microseconds.
void gw_metrics_latency(gw_latency_t which, int64_t usec);
//  SSE client gauge.
void gw_metrics_sse_clients(int delta);
//  Changes seen on the bus, and gaps in their seq.
void gw_metrics_change(uint64_t gap);

//  Current count of requests of a route with a status (tests).
uint64_t gw_metrics_requests(gw_route_t route, unsigned status);
uint64_t gw_metrics_rejects(gw_reject_t why);

//  Render everything as Prometheus text exposition format 0.0.4. Returns
//  a heap string the caller frees (*len its length), or NULL.
char *gw_metrics_render(size_t *len);

#endif

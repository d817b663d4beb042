/*  gateway_ops: the endpoints outside /v1 that are not files: /healthz
    and /metrics for operators, and the CORS preflight (OPTIONS) for
    browsers. Handlers in the shape of gateway_routes. */
#ifndef GATEWAY_OPS_H_INCLUDED
#define GATEWAY_OPS_H_INCLUDED

#include <microhttpd.h>

#include "gateway_req.h"

//  GET /healthz: 200, or 503 with the reason the broker is down
//  (unreachable since when, see gw_bus_broker_away).
enum MHD_Result gw_ops_healthz(gw_req_t *req, struct MHD_Connection *conn);
//  GET /metrics: Prometheus text.
enum MHD_Result gw_ops_metrics(gw_req_t *req, struct MHD_Connection *conn);
//  OPTIONS on any path: 204 with Allow, and the CORS grants for an
//  allowed Origin.
enum MHD_Result gw_ops_preflight(gw_req_t *req, struct MHD_Connection *conn);

#endif

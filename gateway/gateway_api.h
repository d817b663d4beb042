/*  gateway_api: the /v1 handlers of docs/protocol.md section 3, in the
    shape of gateway_routes' table. Called on the final handler call (the
    body is complete), with the caller authenticated (req->claims) and, for
    admin routes, checked to be an admin. Each handler queues exactly one
    response, except gw_api_login, which suspends the connection and
    leaves the response to gw_api_login_done. */
#ifndef GATEWAY_API_H_INCLUDED
#define GATEWAY_API_H_INCLUDED

#include <microhttpd.h>

#include "gateway_req.h"

enum MHD_Result gw_api_login(gw_req_t *req, struct MHD_Connection *conn);
//  The resumed call of a login (req->login set): queue its answer.
enum MHD_Result gw_api_login_done(gw_req_t *req, struct MHD_Connection *conn);
enum MHD_Result gw_api_heartbeat(gw_req_t *req, struct MHD_Connection *conn);
enum MHD_Result gw_api_logout(gw_req_t *req, struct MHD_Connection *conn);
//  GET /v1/users/{user} (req->param)
enum MHD_Result gw_api_user(gw_req_t *req, struct MHD_Connection *conn);
//  GET /v1/users (admin)
enum MHD_Result gw_api_users(gw_req_t *req, struct MHD_Connection *conn);
//  GET /v1/stats (admin)
enum MHD_Result gw_api_stats(gw_req_t *req, struct MHD_Connection *conn);
//  PUT /v1/users/{user}/account (admin; req->param)
enum MHD_Result gw_api_account(gw_req_t *req, struct MHD_Connection *conn);
//  POST /v1/users/batch {"users": [...]} (any user): get_many
enum MHD_Result gw_api_batch(gw_req_t *req, struct MHD_Connection *conn);
//  GET /v1/users/{user}/audit (admin; req->param)
enum MHD_Result gw_api_audit(gw_req_t *req, struct MHD_Connection *conn);
//  GET /v1/users/{user}/history (any user; req->param)
enum MHD_Result gw_api_history(gw_req_t *req, struct MHD_Connection *conn);
//  GET /v1/stats/series?minutes=N (admin)
enum MHD_Result gw_api_series(gw_req_t *req, struct MHD_Connection *conn);
//  GET /v1/events (admin)
enum MHD_Result gw_api_events(gw_req_t *req, struct MHD_Connection *conn);

#endif

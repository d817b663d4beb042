/*  gateway_routes: the table, a segment-by-segment matcher, and the
    checks of gateway_routes.h in order. */
#include "gateway_routes.h"

#include <stdio.h>
#include <string.h>

#include "gateway_api.h"
#include "gateway_ops.h"
#include "gateway_static.h"
#include "gateway_workers.h"
#include "pres_log.h"

static const gw_route_def_t s_routes[] = {
    {"POST", "/v1/login", GW_ROLE_USER, GW_ROUTE_LOGIN, gw_api_login},
    {"POST", "/v1/heartbeat", GW_ROLE_USER, GW_ROUTE_HEARTBEAT,
     gw_api_heartbeat},
    {"POST", "/v1/logout", GW_ROLE_USER, GW_ROUTE_LOGOUT, gw_api_logout},
    {"GET", "/v1/users", GW_ROLE_ADMIN, GW_ROUTE_USERS, gw_api_users},
    {"GET", "/v1/stats", GW_ROLE_ADMIN, GW_ROUTE_STATS, gw_api_stats},
    {"GET", "/v1/events", GW_ROLE_ADMIN, GW_ROUTE_EVENTS, gw_api_events},
    {"GET", "/v1/stats/series", GW_ROLE_ADMIN, GW_ROUTE_SERIES, gw_api_series},
    //  Before {user}: GET /v1/users/batch still names the user "batch".
    {"POST", "/v1/users/batch", GW_ROLE_USER, GW_ROUTE_BATCH, gw_api_batch},
    {"GET", "/v1/users/{user}", GW_ROLE_USER, GW_ROUTE_USER, gw_api_user},
    {"GET", "/v1/users/{user}/audit", GW_ROLE_ADMIN, GW_ROUTE_AUDIT,
     gw_api_audit},
    {"GET", "/v1/users/{user}/history", GW_ROLE_USER, GW_ROUTE_HISTORY,
     gw_api_history},
    {"PUT", "/v1/users/{user}/account", GW_ROLE_ADMIN, GW_ROUTE_ACCOUNT,
     gw_api_account},
    {"GET", "/healthz", GW_ROLE_ANYONE, GW_ROUTE_HEALTHZ, gw_ops_healthz},
    {"GET", "/metrics", GW_ROLE_ANYONE, GW_ROUTE_METRICS, gw_ops_metrics},
    {"GET", "/{file}", GW_ROLE_ANYONE, GW_ROUTE_STATIC, gw_static_serve},
};

#define S_NROUTES (sizeof s_routes / sizeof s_routes[0])

typedef enum {
    S_NO_MATCH = 0,
    S_MATCH,
    S_LONG_PARAM  //  the path fits but {user} is longer than an id
} s_match_t;

//  Match url against pattern, one '/'-separated segment at a time; a
//  {param} takes a whole segment into req->param.
static s_match_t
s_match(gw_req_t *req, const char *pattern, const char *url)
{
    const char *p = pattern, *u = url;
    while (*p) {
        if (*p != '{') {
            if (*p != *u)
                return S_NO_MATCH;
            p++;
            u++;
            continue;
        }
        bool file = strncmp(p, "{file}", 6) == 0;
        size_t len = strcspn(u, "/");
        if (len >= sizeof req->param)
            return file ? S_NO_MATCH : S_LONG_PARAM;
        memcpy(req->param, u, len);
        req->param[len] = '\0';
        if (file && gw_static_find(req->gw->statics, req->param) < 0)
            return S_NO_MATCH;
        p = strchr(p, '}') + 1;
        u += len;
    }
    return *u ? S_NO_MATCH : S_MATCH;
}

static bool
s_method_ok(const gw_route_def_t *r, const char *method)
{
    if (strcmp(r->method, method) == 0)
        return true;
    return strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0;
}

//  Charge the client address; false after queueing 429 when spent.
static bool
s_addr_ok(gw_req_t *req, struct MHD_Connection *conn, enum MHD_Result *rc)
{
    if (gw_limit_addr(req->gw->limit, &req->client, pres_mono_ms()))
        return true;
    *rc = gw_req_refuse(req, conn, GW_REJ_RATE_LIMITED_ADDR, 429,
                        "rate limit exceeded");
    return false;
}

//  Steps 5 to 7. 0, or -1 after queueing the refusal in *rc.
static int
s_authorize(gw_req_t *req, struct MHD_Connection *conn, gw_role_t role,
            enum MHD_Result *rc)
{
    const char *header =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    gw_reject_t reject;
    const char *why = NULL;
    int64_t now_s = pres_now_ms() / 1000;
    if (gw_auth_check(req->gw->auth, req->worker->auth_cache, header, now_s,
                      &req->claims, &req->token, &req->token_len, &reject,
                      &why) != 0) {
        if (!s_addr_ok(req, conn, rc))
            return -1;
        char msg[96];
        snprintf(msg, sizeof msg, "unauthorized: %s", why);
        *rc = gw_req_refuse(req, conn, reject, 401, msg);
        return -1;
    }
    if (!gw_limit_user(req->gw->limit, req->claims.sub, pres_mono_ms())) {
        *rc = gw_req_refuse(req, conn, GW_REJ_RATE_LIMITED, 429,
                            "rate limit exceeded");
        return -1;
    }
    if (role == GW_ROLE_ADMIN && !req->claims.admin) {
        *rc = gw_req_refuse(req, conn, GW_REJ_NOT_ADMIN, 403,
                            "admin role required");
        return -1;
    }
    return 0;
}

enum MHD_Result
gw_routes_dispatch(gw_req_t *req, struct MHD_Connection *conn, const char *url,
                   const char *method)
{
    enum MHD_Result rc = MHD_NO;
    if (strcmp(method, "OPTIONS") == 0) {
        req->route = GW_ROUTE_OPTIONS;
        return s_addr_ok(req, conn, &rc) ? gw_ops_preflight(req, conn) : rc;
    }
    if (req->too_big)
        return s_addr_ok(req, conn, &rc) ? gw_req_too_big(req, conn) : rc;
    const gw_route_def_t *found = NULL, *path_only = NULL;
    for (size_t i = 0; i < S_NROUTES && !found; i++) {
        const gw_route_def_t *r = &s_routes[i];
        s_match_t m = s_match(req, r->pattern, url);
        if (m == S_LONG_PARAM) {
            req->route = r->id;
            return s_addr_ok(req, conn, &rc)
                       ? gw_req_error(req, conn, 400, "invalid user id")
                       : rc;
        }
        if (m == S_MATCH && s_method_ok(r, method))
            found = r;
        else if (m == S_MATCH && !path_only)
            path_only = r;
    }
    if (!found) {
        if (!s_addr_ok(req, conn, &rc))
            return rc;
        if (!path_only)
            return gw_req_error(req, conn, 404, "not found");
        req->route = path_only->id;
        bool get = strcmp(path_only->method, "GET") == 0;
        return gw_req_method_not_allowed(req, conn,
                                         get ? "GET, HEAD" : path_only->method);
    }
    req->route = found->id;
    if (found->role == GW_ROLE_ANYONE) {
        if (!s_addr_ok(req, conn, &rc))
            return rc;
    } else if (s_authorize(req, conn, found->role, &rc) != 0)
        return rc;
    return found->handler(req, conn);
}

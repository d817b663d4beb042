/*  gateway_routes: the route table ({method, path pattern, role,
    handler}) and the one order every request is checked in:
      1. OPTIONS: the CORS preflight;
      2. a body over 4096 bytes (80 KiB for POST /v1/users/batch): 413;
      3. the route: 404 for no path, 405 (with Allow) for a wrong method,
         400 for a {user} longer than an id can be; no token needed;
      4. role `anyone`: the client address's rate limit (429), the handler;
      5. otherwise the token: invalid or absent gives 401, counted against
         the client address's rate limit (429 when it is spent);
      6. the token subject's rate limit (429);
      7. role `admin`: 403 unless the token carries role admin;
      8. the handler, which validates the body.
    Steps 1 to 3 are also charged to the client address. Called on the
    final handler call, with the body complete. */
#ifndef GATEWAY_ROUTES_H_INCLUDED
#define GATEWAY_ROUTES_H_INCLUDED

#include <microhttpd.h>

#include "gateway_req.h"

typedef enum {
    GW_ROLE_ANYONE = 0,  //  no token
    GW_ROLE_USER,        //  any valid token
    GW_ROLE_ADMIN        //  a valid token with role admin
} gw_role_t;

typedef enum MHD_Result (*gw_handler_t)(gw_req_t *req,
                                        struct MHD_Connection *conn);

typedef struct {
    const char *method;   //  "GET" (HEAD too), "POST" or "PUT"
    const char *pattern;  //  "/v1/users/{user}"; {user}, {file} = one segment
    gw_role_t role;
    gw_route_t id;  //  metrics label
    gw_handler_t handler;
} gw_route_def_t;

//  Route and run req (url without the query string, method as sent).
enum MHD_Result gw_routes_dispatch(gw_req_t *req, struct MHD_Connection *conn,
                                   const char *url, const char *method);

#endif

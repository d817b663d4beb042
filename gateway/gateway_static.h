/*  gateway_static: the embedded dashboard files (gateway_web.h) served
    as prebuilt shared responses: ETag, Cache-Control: no-cache, 304 on a
    matching If-None-Match, and a strict CSP on the HTML page. */
#ifndef GATEWAY_STATIC_H_INCLUDED
#define GATEWAY_STATIC_H_INCLUDED

#include <microhttpd.h>

#include "gateway_req.h"

typedef struct gw_static gw_static_t;

//  Build the responses. NULL after logging (no memory).
gw_static_t *gw_static_new(void);
//  After the HTTP daemon has stopped.
void gw_static_destroy(gw_static_t **self_p);

//  Index of the file a path segment names ("" = index.html), or -1.
int gw_static_find(const gw_static_t *self, const char *name);

//  GET /{file}: the file named by req->param.
enum MHD_Result gw_static_serve(gw_req_t *req, struct MHD_Connection *conn);

#endif

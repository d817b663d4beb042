/*  gateway_ops: health, metrics and CORS preflight answers. */
#include "gateway_ops.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result
gw_ops_healthz(gw_req_t *req, struct MHD_Connection *conn)
{
    bool ok = gw_bus_broker_ok(req->gw->bus);
    const char *json = ok ? "{\"gateway\":\"ok\",\"broker\":\"ok\"}"
                          : "{\"gateway\":\"ok\",\"broker\":\"down\"}";
    return gw_req_json(req, conn, ok ? 200 : 503, json, strlen(json));
}

enum MHD_Result
gw_ops_metrics(gw_req_t *req, struct MHD_Connection *conn)
{
    size_t len = 0;
    char *text =
        gw_metrics_render(req->gw->metrics, gw_sse_clients(req->gw->sse),
                          gw_conns_count(req->gw->conns), &len);
    if (!text)
        return gw_req_error(req, conn, 503, "out of memory");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type",
                            "text/plain; version=0.0.4; charset=utf-8");
    return gw_req_send(req, conn, 200, resp);
}

enum MHD_Result
gw_ops_preflight(gw_req_t *req, struct MHD_Connection *conn)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Allow", "GET, HEAD, POST, PUT, OPTIONS");
    if (req->origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                "GET, POST, PUT, OPTIONS");
        MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                "Authorization, Content-Type, "
                                "Last-Event-ID");
        MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    }
    return gw_req_send(req, conn, 204, resp);
}

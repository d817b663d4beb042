/*  gateway_ops: health, metrics (the gateway's, then the broker's
    presence-quality metrics) and CORS preflight answers. */
#include "gateway_ops.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway_login.h"
#include "gateway_quality.h"
#include "gateway_workers.h"
#include "pres_log.h"

enum MHD_Result
gw_ops_healthz(gw_req_t *req, struct MHD_Connection *conn)
{
    bool ok = gw_bus_broker_ok(req->gw->bus);
    int64_t since = 0;
    const char *why = NULL;
    char json[256];
    int n;
    if (ok)
        n = snprintf(json, sizeof json,
                     "{\"gateway\":\"ok\",\"broker\":\"ok\"}");
    else if (gw_bus_broker_away(req->gw->bus, &since, &why))
        n = snprintf(json, sizeof json,
                     "{\"gateway\":\"ok\",\"broker\":\"down\","
                     "\"reason\":\"broker unreachable: %s\","
                     "\"since\":%" PRId64 ",\"for_ms\":%" PRId64 "}",
                     why, since, pres_now_ms() - since);
    else  //  no poll has answered yet
        n = snprintf(json, sizeof json,
                     "{\"gateway\":\"ok\",\"broker\":\"down\","
                     "\"reason\":\"broker not polled yet\"}");
    return gw_req_json(req, conn, ok ? 200 : 503, json, (size_t)n);
}

//  Append the broker's presence-quality metrics (a `stats` query, short
//  timeout; left out when the broker does not answer) to text. Returns
//  the new text (text is consumed), or NULL when out of memory.
static char *
s_broker_metrics(gw_req_t *req, char *text, size_t *len)
{
    pres_query_t q;
    memset(&q, 0, sizeof q);
    q.op = PRES_Q_STATS;
    int timeout =
        req->gw->cfg->bus_timeout_ms < 500 ? req->gw->cfg->bus_timeout_ms : 500;
    if (gw_bus_broker_away(req->gw->bus, NULL, NULL))
        return text;  //  fail fast: the gateway's own metrics only
    zframe_t *reply = pres_qclient_query(req->worker->query, &q, timeout, NULL);
    if (!reply)
        return text;
    char *all = NULL;
    size_t all_len = 0;
    FILE *out = open_memstream(&all, &all_len);
    if (out) {
        fwrite(text, 1, *len, out);
        gw_quality_render(zframe_data(reply), zframe_size(reply), out);
        if (fclose(out) != 0) {
            free(all);
            all = NULL;
        }
    }
    zframe_destroy(&reply);
    free(text);
    *len = all_len;
    return all;
}

enum MHD_Result
gw_ops_metrics(gw_req_t *req, struct MHD_Connection *conn)
{
    size_t len = 0;
    char *text =
        gw_metrics_render(req->gw->metrics, gw_sse_clients(req->gw->sse),
                          gw_conns_count(req->gw->conns),
                          gw_login_in_flight(req->gw->login), &len);
    if (!text)
        return gw_req_error(req, conn, 503, "out of memory");
    text = s_broker_metrics(req, text, &len);
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

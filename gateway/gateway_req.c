/*  gateway_req: request contexts (recycled per thread), body collection
    with the 413 rule, the client address behind trusted proxies, CORS,
    and the reply helpers every handler uses. */
#include "gateway_req.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "pres_log.h"

#define S_FREE_REQS_MAX 256   //  recycled request contexts a thread
#define S_FWD_MAX       1024  //  forwarding header bytes read

struct gw_req_cache {
    gw_req_t *head;
    int count;
};

struct gw_cors {
    bool any;                           //  cors_origins = "*"
    char **origins;                     //  allowed origins, exact
    int norigins;                       //
    struct MHD_Response *r204;          //  empty 204, no CORS
    struct MHD_Response *r204_any;      //  with Access-Control-Allow-Origin: *
    struct MHD_Response **r204_origin;  //  one per listed origin
};

gw_req_cache_t *
gw_req_cache_new(void)
{
    return calloc(1, sizeof(gw_req_cache_t));
}

void
gw_req_cache_destroy(gw_req_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_req_cache_t *self = *self_p;
    while (self->head) {
        gw_req_t *r = self->head;
        self->head = r->next_free;
        free(r);
    }
    free(self);
    *self_p = NULL;
}

gw_req_t *
gw_req_new(gw_req_cache_t *cache, const gw_env_t *env, gw_worker_t *worker)
{
    gw_req_t *r = cache ? cache->head : NULL;
    if (r) {
        cache->head = r->next_free;
        cache->count--;
    } else {
        r = malloc(sizeof *r);
        if (!r)
            return NULL;
    }
    //  Only the header fields need resetting; body is written before use.
    memset(r, 0, offsetof(gw_req_t, body));
    r->gw = env;
    r->worker = worker;
    r->route = GW_ROUTE_OTHER;
    r->cors_index = -1;
    r->body_max = GW_BODY_MAX;
    r->body[0] = '\0';
    return r;
}

void
gw_req_recycle(gw_req_cache_t *cache, gw_req_t **req_p)
{
    gw_req_t *r = *req_p;
    if (!r)
        return;
    *req_p = NULL;
    free(r->bulk);
    r->bulk = NULL;
    free(r->login);
    r->login = NULL;
    if (cache && cache->count < S_FREE_REQS_MAX) {
        r->next_free = cache->head;
        cache->head = r;
        cache->count++;
    } else
        free(r);
}

//  The values of every `name` header, joined with ", " into buf. When
//  they do not fit, the oldest (leftmost) hops are dropped: the nearest
//  ones name the client.
typedef struct {
    const char *name;
    char *buf;
    size_t len, cap;
    bool cut;  //  hops were dropped at the left
} s_join_t;

static void
s_join_append(s_join_t *j, const char *text, size_t n)
{
    if (n >= j->cap) {
        text += n - (j->cap - 1);
        n = j->cap - 1;
        j->cut = true;
    }
    if (j->len + n >= j->cap) {
        j->cut = true;
        size_t drop = j->len + n - (j->cap - 1);
        memmove(j->buf, j->buf + drop, j->len - drop);
        j->len -= drop;
    }
    memcpy(j->buf + j->len, text, n);
    j->len += n;
    j->buf[j->len] = '\0';
}

static enum MHD_Result
s_join_header(void *cls, enum MHD_ValueKind kind, const char *key,
              const char *value)
{
    (void)kind;
    s_join_t *j = cls;
    if (!value || strcasecmp(key, j->name) != 0)
        return MHD_YES;
    if (j->len)
        s_join_append(j, ", ", 2);
    s_join_append(j, value, strlen(value));
    return MHD_YES;
}

//  The joined text, or NULL; when cut, from the first whole hop.
static const char *
s_join_text(const s_join_t *j)
{
    if (!j->len)
        return NULL;
    const char *comma = j->cut ? strchr(j->buf, ',') : NULL;
    return comma ? comma + 1 : j->buf;
}

//  Set req->origin when the request's Origin is allowed.
static void
s_cors_match(gw_req_t *req, struct MHD_Connection *conn)
{
    const gw_cors_t *cors = req->gw->cors;
    if (!cors->any && cors->norigins == 0)
        return;
    const char *origin =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return;
    if (cors->any) {
        req->origin = "*";
        return;
    }
    for (int i = 0; i < cors->norigins; i++)
        if (strcmp(cors->origins[i], origin) == 0) {
            req->origin = cors->origins[i];
            req->cors_index = i;
            return;
        }
}

void
gw_req_start(gw_req_t *req, struct MHD_Connection *conn, const gw_addr_t *peer)
{
    s_cors_match(req, conn);
    gw_addr_t none;
    if (!peer) {
        memset(&none, 0, sizeof none);
        peer = &none;
    }
    req->client = *peer;
    if (!gw_limit_trusted(req->gw->limit, peer))
        return;
    char buf[S_FWD_MAX];
    s_join_t j = {req->gw->fwd == GW_FWD_XFF ? "X-Forwarded-For" : "Forwarded",
                  buf, 0, sizeof buf, false};
    buf[0] = '\0';
    MHD_get_connection_values(conn, MHD_HEADER_KIND, s_join_header, &j);
    gw_limit_client(req->gw->limit, peer, req->gw->fwd, s_join_text(&j),
                    &req->client);
}

bool
gw_req_declares_too_big(gw_req_t *req, struct MHD_Connection *conn)
{
    const char *cl = MHD_lookup_connection_value(
        conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl)
        return false;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(cl, &end, 10);
    if (errno || !end || *end || v > req->body_max)
        req->too_big = true;
    return req->too_big;
}

void
gw_req_allow_bulk(gw_req_t *req, const char *url, const char *method)
{
    if (strcmp(url, "/v1/users/batch") == 0 && strcmp(method, "POST") == 0)
        req->body_max = GW_BULK_BODY_MAX;
}

const char *
gw_req_body(const gw_req_t *req)
{
    return req->bulk ? req->bulk : req->body;
}

enum MHD_Result
gw_req_upload(gw_req_t *req, const char *data, size_t *size)
{
    size_t n = *size;
    req->upload_total += n;
    if (req->body_len + n > req->body_max)
        req->too_big = true;
    else {
        if (req->body_max > GW_BODY_MAX && !req->bulk &&
            !(req->bulk = malloc(req->body_max + 1)))
            return MHD_NO;
        char *body = req->bulk ? req->bulk : req->body;
        memcpy(body + req->body_len, data, n);
        req->body_len += n;
        body[req->body_len] = '\0';
    }
    *size = 0;
    //  A chunked body far over the cap: stop reading, drop the link.
    return req->upload_total > GW_UPLOAD_ABORT + req->body_max ? MHD_NO
                                                               : MHD_YES;
}

//  ---------------------------------------------------------------------
//  Replies

enum MHD_Result
gw_req_send(gw_req_t *req, struct MHD_Connection *conn, unsigned status,
            struct MHD_Response *resp)
{
    if (req->origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin",
                                req->origin);
        if (!req->gw->cors->any)
            MHD_add_response_header(resp, "Vary", "Origin");
    }
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    gw_metrics_request(req->gw->metrics, req->route, status);
    return rc;
}

enum MHD_Result
gw_req_send_shared(gw_req_t *req, struct MHD_Connection *conn, unsigned status,
                   struct MHD_Response *resp)
{
    gw_metrics_request(req->gw->metrics, req->route, status);
    return MHD_queue_response(conn, status, resp);
}

enum MHD_Result
gw_req_json(gw_req_t *req, struct MHD_Connection *conn, unsigned status,
            const char *json, size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        len, (void *)(uintptr_t)json, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    if (status == 429)
        MHD_add_response_header(resp, "Retry-After", "1");
    return gw_req_send(req, conn, status, resp);
}

enum MHD_Result
gw_req_error(gw_req_t *req, struct MHD_Connection *conn, unsigned status,
             const char *msg)
{
    char json[512];
    size_t n = 0;
    n += (size_t)snprintf(json, sizeof json, "{\"error\":\"");
    for (const char *p = msg; *p && n < sizeof json - 16; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            json[n++] = '\\';
            json[n++] = (char)c;
        } else if (c < 0x20)
            n += (size_t)snprintf(json + n, sizeof json - n, "\\u%04x", c);
        else
            json[n++] = (char)c;
    }
    n += (size_t)snprintf(json + n, sizeof json - n, "\"}");
    return gw_req_json(req, conn, status, json, n);
}

enum MHD_Result
gw_req_refuse(gw_req_t *req, struct MHD_Connection *conn, gw_reject_t why,
              unsigned status, const char *msg)
{
    gw_metrics_reject(req->gw->metrics, why);
    return gw_req_error(req, conn, status, msg);
}

enum MHD_Result
gw_req_no_content(gw_req_t *req, struct MHD_Connection *conn)
{
    const gw_cors_t *cors = req->gw->cors;
    struct MHD_Response *resp = cors->r204;
    if (req->origin)
        resp = req->cors_index >= 0 ? cors->r204_origin[req->cors_index]
                                    : cors->r204_any;
    return gw_req_send_shared(req, conn, 204, resp);
}

enum MHD_Result
gw_req_method_not_allowed(gw_req_t *req, struct MHD_Connection *conn,
                          const char *allow)
{
    static const char body[] = "{\"error\":\"method not allowed\"}";
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Allow", allow);
    return gw_req_send(req, conn, 405, resp);
}

enum MHD_Result
gw_req_too_big(gw_req_t *req, struct MHD_Connection *conn)
{
    char msg[64];
    snprintf(msg, sizeof msg, "body larger than %zu bytes", req->body_max);
    return gw_req_refuse(req, conn, GW_REJ_TOO_BIG, 413, msg);
}

//  ---------------------------------------------------------------------
//  CORS

static struct MHD_Response *
s_empty(void)
{
    return MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
                                           MHD_RESPMEM_PERSISTENT);
}

//  Add origin o (trimmed of blanks and a trailing slash) to the list.
static int
s_cors_add(gw_cors_t *self, char *o)
{
    while (*o == ' ')
        o++;
    size_t len = strlen(o);
    while (len > 0 && (o[len - 1] == ' ' || o[len - 1] == '/'))
        o[--len] = '\0';
    if (!len)
        return 0;
    struct MHD_Response *r = s_empty();
    char *copy = strdup(o);
    if (!r || !copy) {
        free(copy);
        if (r)
            MHD_destroy_response(r);
        return -1;
    }
    MHD_add_response_header(r, "Access-Control-Allow-Origin", copy);
    MHD_add_response_header(r, "Vary", "Origin");
    self->origins[self->norigins] = copy;
    self->r204_origin[self->norigins++] = r;
    return 0;
}

gw_cors_t *
gw_cors_new(const char *list)
{
    gw_cors_t *self = calloc(1, sizeof *self);
    char *copy = strdup(list);
    int n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    if (self) {
        self->r204 = s_empty();
        self->r204_any = s_empty();
        self->origins = calloc((size_t)n, sizeof *self->origins);
        self->r204_origin = calloc((size_t)n, sizeof *self->r204_origin);
    }
    if (!self || !copy || !self->r204 || !self->r204_any || !self->origins ||
        !self->r204_origin)
        goto fail;
    MHD_add_response_header(self->r204_any, "Access-Control-Allow-Origin", "*");
    if (strcmp(list, "*") == 0)
        self->any = true;
    else {
        char *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save))
            if (s_cors_add(self, tok) != 0)
                goto fail;
    }
    free(copy);
    return self;
fail:
    pres_log_error("cors setup: out of memory");
    free(copy);
    gw_cors_destroy(&self);
    return NULL;
}

void
gw_cors_destroy(gw_cors_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gw_cors_t *self = *self_p;
    if (self->r204)
        MHD_destroy_response(self->r204);
    if (self->r204_any)
        MHD_destroy_response(self->r204_any);
    for (int i = 0; i < self->norigins; i++) {
        MHD_destroy_response(self->r204_origin[i]);
        free(self->origins[i]);
    }
    free(self->r204_origin);
    free(self->origins);
    free(self);
    *self_p = NULL;
}

/*  gateway_http: libmicrohttpd daemon, limits, routing, CORS, rate limit,
    static dashboard, /healthz, /metrics. The request body is collected on
    the intermediate handler calls and the answer is queued on the final
    one, never on the first (TECH-FACTS section 7: an early response turns
    keep-alive off), except for a declared Content-Length over the cap,
    which is refused at once and closes the connection on purpose. */
#include "gateway_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway_api.h"
#include "gateway_quality.h"
#include "gateway_web.h"
#include "pres_log.h"

#define S_MEMORY_LIMIT  32768        //  per-connection MHD pool (headers)
#define S_UPLOAD_ABORT  (64 * 1024)  //  chunked bodies beyond this: drop
#define S_FREE_REQS_MAX 256          //  recycled request contexts a thread
#define S_RL_STRIPES    64
#define S_RL_SLOTS      256

//  ---------------------------------------------------------------------
//  Per-IP token buckets: fixed table, direct-mapped by address hash,
//  striped locks. A colliding address takes the slot over with a full
//  bucket (bounded memory beats perfect fairness under an address flood).

typedef struct {
    unsigned char addr[16];
    bool used;
    double tokens;
    int64_t last_ms;
} s_bucket_t;

typedef struct {
    pthread_mutex_t lock;
    s_bucket_t slot[S_RL_SLOTS];
} s_stripe_t;

typedef struct {
    double rate, burst;
    s_stripe_t stripe[S_RL_STRIPES];
} s_rl_t;

static s_rl_t *
s_rl_new(int rate, int burst)
{
    s_rl_t *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    rl->rate = rate;
    rl->burst = burst > 0 ? burst : 1;
    for (int i = 0; i < S_RL_STRIPES; i++)
        pthread_mutex_init(&rl->stripe[i].lock, NULL);
    return rl;
}

static void
s_rl_destroy(s_rl_t **rl_p)
{
    if (!*rl_p)
        return;
    for (int i = 0; i < S_RL_STRIPES; i++)
        pthread_mutex_destroy(&(*rl_p)->stripe[i].lock);
    free(*rl_p);
    *rl_p = NULL;
}

//  True if the address may make one more request now.
static bool
s_rl_allow(s_rl_t *rl, const struct sockaddr *sa)
{
    unsigned char key[16];
    memset(key, 0, sizeof key);
    if (sa && sa->sa_family == AF_INET)
        memcpy(key, &((const struct sockaddr_in *)(const void *)sa)->sin_addr,
               4);
    else if (sa && sa->sa_family == AF_INET6)
        memcpy(key, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
               16);
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 16; i++) {
        h ^= key[i];
        h *= 1099511628211ULL;
    }
    s_stripe_t *st = &rl->stripe[h % S_RL_STRIPES];
    s_bucket_t *b = &st->slot[(h >> 8) % S_RL_SLOTS];
    int64_t now = pres_mono_ms();
    pthread_mutex_lock(&st->lock);
    if (!b->used || memcmp(b->addr, key, 16) != 0) {
        memcpy(b->addr, key, 16);
        b->used = true;
        b->tokens = rl->burst;
        b->last_ms = now;
    }
    double tokens = b->tokens + (double)(now - b->last_ms) * rl->rate / 1000;
    if (tokens > rl->burst)
        tokens = rl->burst;
    b->last_ms = now;
    bool ok = tokens >= 1.0;
    b->tokens = ok ? tokens - 1.0 : tokens;
    pthread_mutex_unlock(&st->lock);
    return ok;
}

//  ---------------------------------------------------------------------
//  Workers

static _Thread_local gw_worker_t *t_worker;
static _Thread_local gateway_t *t_gw;

static gw_worker_t *
s_worker_new(gateway_t *gw, int index)
{
    gw_worker_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->index = index;
    char src[PRES_ID_MAX + 1];
    snprintf(src, sizeof src, "gateway-%s-%ld-%d", gw->host, (long)getpid(),
             index);
    w->pub = pres_pub_new(gw->cfg, src);
    w->query = pres_qclient_new(gw->cfg);
    w->auth_cache = gw_auth_cache_new();
    if (!w->pub || !w->query || !w->auth_cache) {
        pres_pub_destroy(&w->pub);
        pres_qclient_destroy(&w->query);
        gw_auth_cache_destroy(&w->auth_cache);
        free(w);
        return NULL;
    }
    return w;
}

static void
s_worker_destroy(gw_worker_t **w_p)
{
    gw_worker_t *w = *w_p;
    if (!w)
        return;
    pres_pub_destroy(&w->pub);
    pres_qclient_destroy(&w->query);
    pres_qclient_destroy(&w->admin);
    gw_auth_cache_destroy(&w->auth_cache);
    while (w->free_reqs) {
        gw_req_t *r = w->free_reqs;
        w->free_reqs = r->next_free;
        free(r);
    }
    free(w);
    *w_p = NULL;
}

//  This thread's worker: claimed from the prebuilt ones at the thread's
//  first request (their sockets are connected since start), or made.
static gw_worker_t *
s_worker(gateway_t *gw)
{
    if (t_gw == gw && t_worker)
        return t_worker;
    gw_worker_t *w = NULL;
    pthread_mutex_lock(&gw->worker_lock);
    if (gw->nclaimed < gw->nworkers)
        w = gw->workers[gw->nclaimed++];
    else if (gw->nworkers < GW_WORKERS_MAX) {
        w = s_worker_new(gw, gw->nworkers);
        if (w) {
            gw->workers[gw->nworkers++] = w;
            gw->nclaimed++;
        }
    }
    pthread_mutex_unlock(&gw->worker_lock);
    if (w) {
        t_worker = w;
        t_gw = gw;
    }
    return w;
}

static gw_req_t *
s_req_new(gateway_t *gw, gw_worker_t *w)
{
    gw_req_t *r = w->free_reqs;
    if (r) {
        w->free_reqs = r->next_free;
        w->nfree--;
    } else {
        r = malloc(sizeof *r);
        if (!r)
            return NULL;
    }
    //  Only the header fields need resetting; body is written before use.
    memset(r, 0, offsetof(gw_req_t, body));
    r->gw = gw;
    r->worker = w;
    r->route = GW_ROUTE_OTHER;
    r->cors_index = -1;
    r->body_max = GW_BODY_MAX;
    r->body[0] = '\0';
    return r;
}

static void
s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
            enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    gw_req_t *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    free(r->bulk);
    r->bulk = NULL;
    gw_worker_t *w = r->worker;
    if (t_worker == w && t_gw == r->gw && w->nfree < S_FREE_REQS_MAX) {
        r->next_free = w->free_reqs;
        w->free_reqs = r;
        w->nfree++;
    } else
        free(r);
}

//  ---------------------------------------------------------------------
//  Responses

static void
s_add_cors(gw_req_t *req, struct MHD_Response *resp)
{
    if (!req->origin)
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", req->origin);
    if (!req->gw->cors_any)
        MHD_add_response_header(resp, "Vary", "Origin");
}

enum MHD_Result
gw_http_send(gw_req_t *req, struct MHD_Connection *conn, unsigned status,
             struct MHD_Response *resp)
{
    s_add_cors(req, resp);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    gw_metrics_request(req->route, status);
    return rc;
}

//  Queue a shared response (no headers added: they are prebuilt).
static enum MHD_Result
s_send_shared(gw_req_t *req, struct MHD_Connection *conn, unsigned status,
              struct MHD_Response *resp)
{
    gw_metrics_request(req->route, status);
    return MHD_queue_response(conn, status, resp);
}

enum MHD_Result
gw_http_json(gw_req_t *req, struct MHD_Connection *conn, unsigned status,
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
    return gw_http_send(req, conn, status, resp);
}

enum MHD_Result
gw_http_error(gw_req_t *req, struct MHD_Connection *conn, unsigned status,
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
    return gw_http_json(req, conn, status, json, n);
}

enum MHD_Result
gw_http_no_content(gw_req_t *req, struct MHD_Connection *conn)
{
    gateway_t *gw = req->gw;
    struct MHD_Response *resp = gw->r204;
    if (req->origin)
        resp = req->cors_index >= 0 ? gw->r204_origin[req->cors_index]
                                    : gw->r204_any;
    return s_send_shared(req, conn, 204, resp);
}

static enum MHD_Result
s_method_not_allowed(gw_req_t *req, struct MHD_Connection *conn,
                     const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen("{\"error\":\"method not allowed\"}"),
        (void *)(uintptr_t) "{\"error\":\"method not allowed\"}",
        MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Allow", allow);
    return gw_http_send(req, conn, 405, resp);
}

//  ---------------------------------------------------------------------
//  Static files, health, metrics, CORS preflight

typedef struct {
    struct MHD_Response *ok;       //  200 with the file
    struct MHD_Response *not_mod;  //  304
} s_static_t;

static s_static_t *s_static;  //  parallel to gw_web_files (process-wide)
static pthread_once_t s_static_once = PTHREAD_ONCE_INIT;

static void
s_static_init(void)
{
    size_t n = 0;
    while (gw_web_files[n].name)
        n++;
    s_static = calloc(n + 1, sizeof *s_static);
    if (!s_static)
        return;
    for (size_t i = 0; i < n; i++) {
        const gw_web_file_t *f = &gw_web_files[i];
        struct MHD_Response *r = MHD_create_response_from_buffer(
            f->len, (void *)(uintptr_t)f->data, MHD_RESPMEM_PERSISTENT);
        struct MHD_Response *nm = MHD_create_response_from_buffer(
            0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
        if (!r || !nm)
            continue;
        struct MHD_Response *both[2] = {r, nm};
        for (int k = 0; k < 2; k++) {
            MHD_add_response_header(both[k], "ETag", f->etag);
            MHD_add_response_header(both[k], "Cache-Control", "no-cache");
            MHD_add_response_header(both[k], "X-Content-Type-Options",
                                    "nosniff");
        }
        MHD_add_response_header(r, "Content-Type", f->type);
        if (strncmp(f->type, "text/html", 9) == 0) {
            MHD_add_response_header(
                r, "Content-Security-Policy",
                "default-src 'self'; img-src 'self' data:; "
                "frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
            MHD_add_response_header(r, "X-Frame-Options", "DENY");
            MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
        }
        s_static[i].ok = r;
        s_static[i].not_mod = nm;
    }
}

//  Index of the file serving path, or -1.
static int
s_static_find(const char *url)
{
    const char *name = strcmp(url, "/") == 0 ? "index.html" : url + 1;
    if (url[0] != '/' || strchr(name, '/'))
        return -1;
    for (int i = 0; gw_web_files[i].name; i++)
        if (strcmp(gw_web_files[i].name, name) == 0)
            return i;
    return -1;
}

static enum MHD_Result
s_serve_static(gw_req_t *req, struct MHD_Connection *conn, int i)
{
    pthread_once(&s_static_once, s_static_init);
    if (!s_static || !s_static[i].ok)
        return gw_http_error(req, conn, 503, "out of memory");
    const char *inm =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "If-None-Match");
    if (inm && strstr(inm, gw_web_files[i].etag))
        return s_send_shared(req, conn, 304, s_static[i].not_mod);
    return s_send_shared(req, conn, 200, s_static[i].ok);
}

static enum MHD_Result
s_healthz(gw_req_t *req, struct MHD_Connection *conn)
{
    bool ok = gw_bus_broker_ok(req->gw->bus);
    const char *json = ok ? "{\"gateway\":\"ok\",\"broker\":\"ok\"}"
                          : "{\"gateway\":\"ok\",\"broker\":\"down\"}";
    return gw_http_json(req, conn, ok ? 200 : 503, json, strlen(json));
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

static enum MHD_Result
s_metrics(gw_req_t *req, struct MHD_Connection *conn)
{
    size_t len = 0;
    char *text = gw_metrics_render(&len);
    if (!text)
        return gw_http_error(req, conn, 503, "out of memory");
    text = s_broker_metrics(req, text, &len);
    if (!text)
        return gw_http_error(req, conn, 503, "out of memory");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type",
                            "text/plain; version=0.0.4; charset=utf-8");
    return gw_http_send(req, conn, 200, resp);
}

//  Set req->origin when the request's Origin is allowed.
static void
s_cors_match(gateway_t *gw, gw_req_t *req, struct MHD_Connection *conn)
{
    if (!gw->cors_any && gw->norigins == 0)
        return;
    const char *origin =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return;
    if (gw->cors_any) {
        req->origin = "*";
        return;
    }
    for (int i = 0; i < gw->norigins; i++)
        if (strcmp(gw->origins[i], origin) == 0) {
            req->origin = gw->origins[i];
            req->cors_index = i;
            return;
        }
}

static enum MHD_Result
s_preflight(gw_req_t *req, struct MHD_Connection *conn)
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
    return gw_http_send(req, conn, 204, resp);
}

//  ---------------------------------------------------------------------
//  Routing

static bool
s_is(const char *method, const char *want)
{
    return strcmp(method, want) == 0;
}

//  Authenticate (and check admin). 0, or -1 after queueing the refusal.
static int
s_authenticate(gw_req_t *req, struct MHD_Connection *conn, bool admin,
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
        gw_metrics_reject(reject);
        char msg[96];
        snprintf(msg, sizeof msg, "unauthorized: %s", why);
        *rc = gw_http_error(req, conn, 401, msg);
        return -1;
    }
    if (admin && !req->claims.admin) {
        gw_metrics_reject(GW_REJ_NOT_ADMIN);
        *rc = gw_http_error(req, conn, 403, "admin role required");
        return -1;
    }
    return 0;
}

static enum MHD_Result
s_too_big(gw_req_t *req, struct MHD_Connection *conn)
{
    char msg[64];
    snprintf(msg, sizeof msg, "body larger than %zu bytes", req->body_max);
    return gw_http_error(req, conn, 413, msg);
}

static enum MHD_Result
s_dispatch(gateway_t *gw, gw_req_t *req, struct MHD_Connection *conn,
           const char *url, const char *method)
{
    enum MHD_Result rc = MHD_NO;
    s_cors_match(gw, req, conn);
    if (gw->ratelimit) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!s_rl_allow(gw->ratelimit, ci ? ci->client_addr : NULL)) {
            gw_metrics_reject(GW_REJ_RATE_LIMITED);
            return gw_http_error(req, conn, 429, "rate limit exceeded");
        }
    }
    bool get = s_is(method, "GET") || s_is(method, "HEAD");
    bool post = s_is(method, "POST");
    if (s_is(method, "OPTIONS")) {
        req->route = GW_ROUTE_OPTIONS;
        return s_preflight(req, conn);
    }
    if (req->too_big) {
        gw_metrics_reject(GW_REJ_TOO_BIG);
        return s_too_big(req, conn);
    }
    if (strncmp(url, "/v1/", 4) != 0) {
        if (strcmp(url, "/healthz") == 0) {
            req->route = GW_ROUTE_HEALTHZ;
            return get ? s_healthz(req, conn)
                       : s_method_not_allowed(req, conn, "GET, HEAD");
        }
        if (strcmp(url, "/metrics") == 0) {
            req->route = GW_ROUTE_METRICS;
            return get ? s_metrics(req, conn)
                       : s_method_not_allowed(req, conn, "GET, HEAD");
        }
        int i = s_static_find(url);
        if (i >= 0) {
            req->route = GW_ROUTE_STATIC;
            return get ? s_serve_static(req, conn, i)
                       : s_method_not_allowed(req, conn, "GET, HEAD");
        }
        return gw_http_error(req, conn, 404, "not found");
    }

    //  /v1: find the route and the allowed method first (404/405 need no
    //  token), then authenticate, then run it.
    const char *path = url + 3;  //  "/login", "/users/x", ...
    const char *allow = "POST";
    bool method_ok = post;
    bool admin = false;
    char user[PRES_ID_MAX + 2] = "";
    if (strcmp(path, "/login") == 0)
        req->route = GW_ROUTE_LOGIN;
    else if (strcmp(path, "/heartbeat") == 0)
        req->route = GW_ROUTE_HEARTBEAT;
    else if (strcmp(path, "/logout") == 0)
        req->route = GW_ROUTE_LOGOUT;
    else if (post && strcmp(path, "/users/batch") == 0)
        req->route = GW_ROUTE_BATCH;  //  GET: the user named batch
    else if (strcmp(path, "/stats/series") == 0) {
        req->route = GW_ROUTE_SERIES;
        allow = "GET, HEAD";
        method_ok = get;
        admin = true;
    } else if (strcmp(path, "/stats") == 0 || strcmp(path, "/events") == 0 ||
               strcmp(path, "/users") == 0) {
        req->route = path[1] == 's'   ? GW_ROUTE_STATS
                     : path[1] == 'e' ? GW_ROUTE_EVENTS
                                      : GW_ROUTE_USERS;
        allow = "GET, HEAD";
        method_ok = get;
        admin = true;
    } else if (strncmp(path, "/users/", 7) == 0) {
        const char *u = path + 7;
        const char *slash = strchr(u, '/');
        size_t ulen = slash ? (size_t)(slash - u) : strlen(u);
        if (ulen > PRES_ID_MAX) {
            req->route = GW_ROUTE_USER;
            return gw_http_error(req, conn, 400, "invalid user id");
        }
        memcpy(user, u, ulen);
        user[ulen] = '\0';
        if (!slash) {
            req->route = GW_ROUTE_USER;
            allow = "GET, HEAD";
            method_ok = get;
        } else if (strcmp(slash, "/account") == 0) {
            req->route = GW_ROUTE_ACCOUNT;
            allow = "PUT";
            method_ok = s_is(method, "PUT");
            admin = true;
        } else if (strcmp(slash, "/audit") == 0 ||
                   strcmp(slash, "/history") == 0) {
            req->route = slash[1] == 'a' ? GW_ROUTE_AUDIT : GW_ROUTE_HISTORY;
            allow = "GET, HEAD";
            method_ok = get;
            admin = req->route == GW_ROUTE_AUDIT;
        } else
            return gw_http_error(req, conn, 404, "not found");
    } else
        return gw_http_error(req, conn, 404, "not found");
    if (!method_ok)
        return s_method_not_allowed(req, conn, allow);
    if (s_authenticate(req, conn, admin, &rc) != 0)
        return rc;
    switch (req->route) {
    case GW_ROUTE_LOGIN:
        return gw_api_login(req, conn);
    case GW_ROUTE_HEARTBEAT:
        return gw_api_heartbeat(req, conn);
    case GW_ROUTE_LOGOUT:
        return gw_api_logout(req, conn);
    case GW_ROUTE_USER:
        return gw_api_user(req, conn, user);
    case GW_ROUTE_USERS:
        return gw_api_users(req, conn);
    case GW_ROUTE_STATS:
        return gw_api_stats(req, conn);
    case GW_ROUTE_ACCOUNT:
        return gw_api_account(req, conn, user);
    case GW_ROUTE_EVENTS:
        return gw_api_events(req, conn);
    case GW_ROUTE_BATCH:
        return gw_api_batch(req, conn);
    case GW_ROUTE_AUDIT:
    case GW_ROUTE_HISTORY:
        return gw_api_user_log(req, conn, user);
    case GW_ROUTE_SERIES:
        return gw_api_series(req, conn);
    default:
        return gw_http_error(req, conn, 404, "not found");
    }
}

static enum MHD_Result
s_handler(void *cls, struct MHD_Connection *conn, const char *url,
          const char *method, const char *version, const char *upload_data,
          size_t *upload_data_size, void **con_cls)
{
    (void)version;
    gateway_t *gw = cls;
    gw_req_t *req = *con_cls;
    if (!req) {
        //  First call: headers only. Answer nothing yet (keep-alive).
        gw_worker_t *w = s_worker(gw);
        if (!w)
            return MHD_NO;
        req = s_req_new(gw, w);
        if (!req)
            return MHD_NO;
        *con_cls = req;
        //  Only a batch lookup may send more than GW_BODY_MAX.
        if (strcmp(url, "/v1/users/batch") == 0 && s_is(method, "POST"))
            req->body_max = GW_BULK_BODY_MAX;
        const char *cl = MHD_lookup_connection_value(
            conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno || !end || *end || v > req->body_max) {
                //  Refuse before reading the body; MHD closes the
                //  connection after this early answer, as it should.
                req->too_big = true;
                gw_metrics_reject(GW_REJ_TOO_BIG);
                s_cors_match(gw, req, conn);
                return s_too_big(req, conn);
            }
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        req->upload_total += n;
        if (req->body_len + n > req->body_max)
            req->too_big = true;
        else {
            if (req->body_max > GW_BODY_MAX && !req->bulk &&
                !(req->bulk = malloc(req->body_max + 1)))
                return MHD_NO;
            char *body = req->bulk ? req->bulk : req->body;
            memcpy(body + req->body_len, upload_data, n);
            req->body_len += n;
            body[req->body_len] = '\0';
        }
        *upload_data_size = 0;
        //  A chunked body far over the cap: stop reading, drop the link.
        if (req->upload_total > S_UPLOAD_ABORT + req->body_max)
            return MHD_NO;
        return MHD_YES;
    }
    return s_dispatch(gw, req, conn, url, method);
}

static void
s_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    static pres_ratelimit_t rl;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    pres_log_limited(&rl, 5000, "microhttpd: %s", line);
}

//  ---------------------------------------------------------------------
//  Lifecycle

static int
s_parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256], port[16];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || strlen(colon + 1) >= sizeof port ||
        (size_t)(colon - listen) >= sizeof host) {
        pres_log_error("http_listen '%s' is not host:port", listen);
        return -1;
    }
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    snprintf(port, sizeof port, "%s", colon + 1);
    char *h = host;
    size_t hl = strlen(h);
    if (h[0] == '[' && hl > 1 && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int rc = getaddrinfo(*h ? h : NULL, port, &hints, &res);
    if (rc != 0 || !res) {
        pres_log_error("getaddrinfo(%s) failed: %s", listen, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int
s_cors_setup(gateway_t *gw)
{
    const char *list = gw->cfg->cors_origins;
    gw->r204 = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
                                               MHD_RESPMEM_PERSISTENT);
    gw->r204_any = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "",
                                                   MHD_RESPMEM_PERSISTENT);
    if (!gw->r204 || !gw->r204_any)
        return -1;
    MHD_add_response_header(gw->r204_any, "Access-Control-Allow-Origin", "*");
    if (strcmp(list, "*") == 0) {
        gw->cors_any = true;
        return 0;
    }
    int n = 0;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    gw->origins = calloc((size_t)n + 1, sizeof *gw->origins);
    gw->r204_origin = calloc((size_t)n + 1, sizeof *gw->r204_origin);
    if (!gw->origins || !gw->r204_origin)
        return -1;
    char *copy = strdup(list);
    if (!copy)
        return -1;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len > 0 && (tok[len - 1] == ' ' || tok[len - 1] == '/'))
            tok[--len] = '\0';
        if (!len)
            continue;
        struct MHD_Response *r = MHD_create_response_from_buffer(
            0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
        char *o = strdup(tok);
        if (!r || !o) {
            free(o);
            if (r)
                MHD_destroy_response(r);
            free(copy);
            return -1;
        }
        MHD_add_response_header(r, "Access-Control-Allow-Origin", o);
        MHD_add_response_header(r, "Vary", "Origin");
        gw->origins[gw->norigins] = o;
        gw->r204_origin[gw->norigins++] = r;
    }
    free(copy);
    return 0;
}

gateway_t *
gateway_new(const pres_config_t *cfg)
{
    gateway_t *gw = calloc(1, sizeof *gw);
    if (!gw)
        return NULL;
    gw->cfg = cfg;
    pthread_mutex_init(&gw->worker_lock, NULL);
    char host[256] = "host";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    //  Keep the src id valid: id characters only, bounded length.
    size_t j = 0;
    for (size_t i = 0; host[i] && j < sizeof gw->host - 1; i++)
        if (pres_id_valid(&host[i], 1))
            gw->host[j++] = host[i];
    gw->host[j] = '\0';
    if (!j)
        snprintf(gw->host, sizeof gw->host, "host");

    struct sockaddr_storage ss;
    socklen_t sslen = 0;
    if (s_parse_listen(cfg->http_listen, &ss, &sslen) != 0)
        goto fail;
    if (s_cors_setup(gw) != 0) {
        pres_log_error("cors setup: out of memory");
        goto fail;
    }
    gw->auth = gw_auth_new(cfg);
    gw->accounts = gw_accounts_new();
    gw->sse = gw_sse_new(cfg->sse_max_clients, cfg->sse_keepalive);
    if (!gw->auth || !gw->accounts || !gw->sse)
        goto fail;
    if (cfg->rate_limit > 0) {
        gw->ratelimit = s_rl_new(cfg->rate_limit, cfg->rate_burst);
        if (!gw->ratelimit)
            goto fail;
    }
    gw->bus = gw_bus_new(cfg, gw->accounts, gw->sse, gw->auth);
    if (!gw->bus)
        goto fail;
    int threads = cfg->http_threads;
    for (int i = 0; i < threads && i < GW_WORKERS_MAX; i++) {
        gw->workers[i] = s_worker_new(gw, i);
        if (!gw->workers[i])
            goto fail;
        gw->nworkers++;
    }
    pthread_once(&s_static_once, s_static_init);

    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_SOCK_ADDR, 0, &ss},
        {MHD_OPTION_CONNECTION_LIMIT, cfg->http_max_connections, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->http_per_ip_connections,
         NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, cfg->http_idle_timeout, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, S_MEMORY_LIMIT, NULL},
        {MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0, NULL},
        {MHD_OPTION_END, 0, NULL}};
    gw->daemon = MHD_start_daemon(flags, 0, NULL, NULL, s_handler, gw,
                                  MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, gw,
                                  MHD_OPTION_NOTIFY_COMPLETED, s_completed, gw,
                                  MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
    if (!gw->daemon) {
        pres_log_error("MHD_start_daemon(%s) failed: %s", cfg->http_listen,
                       strerror(errno));
        goto fail;
    }
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(gw->daemon, MHD_DAEMON_INFO_BIND_PORT);
    gw->port = di ? di->port : 0;
    pres_log_info("listening on %s (port %d, %d threads)", cfg->http_listen,
                  gw->port, threads);
    return gw;
fail:
    gateway_destroy(&gw);
    return NULL;
}

void
gateway_destroy(gateway_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    gateway_t *gw = *self_p;
    if (gw->sse)
        gw_sse_shutdown(gw->sse);
    if (gw->daemon)
        MHD_stop_daemon(gw->daemon);
    gw_bus_destroy(&gw->bus);
    for (int i = 0; i < gw->nworkers; i++)
        s_worker_destroy(&gw->workers[i]);
    gw_sse_destroy(&gw->sse);
    gw_accounts_destroy(&gw->accounts);
    gw_auth_destroy(&gw->auth);
    s_rl_t *rl = gw->ratelimit;
    s_rl_destroy(&rl);
    if (gw->r204)
        MHD_destroy_response(gw->r204);
    if (gw->r204_any)
        MHD_destroy_response(gw->r204_any);
    for (int i = 0; i < gw->norigins; i++) {
        MHD_destroy_response(gw->r204_origin[i]);
        free(gw->origins[i]);
    }
    free(gw->r204_origin);
    free(gw->origins);
    pthread_mutex_destroy(&gw->worker_lock);
    free(gw);
    *self_p = NULL;
}

int
gateway_port(const gateway_t *self)
{
    return self->port;
}

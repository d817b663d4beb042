/*  gateway_api: /v1 handlers. Bodies are parsed with jansson (strict:
    duplicate keys refused); events go out on the worker's publisher with
    no broker round trip, except login, which waits (bounded) for its
    change so that 200 means "you are online". */
#include "gateway_api.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "gateway_login.h"
#include "gateway_workers.h"
#include "pres_log.h"
#include "pres_mp.h"

//  Parse the body as a JSON object; an empty body is {} when optional.
//  NULL when malformed (the caller answers 400).
static json_t *
s_body(gw_req_t *req, bool optional)
{
    if (req->body_len == 0)
        return optional ? json_object() : NULL;
    json_t *j = json_loadb(gw_req_body(req), req->body_len,
                           JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

//  Optional string field: 1 present (copied into out), 0 absent, -1 bad
//  (not a string, too long, or not valid per `id`: id chars or printable).
static int
s_str_field(json_t *obj, const char *key, char *out, size_t cap, bool id)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len >= cap || strlen(s) != len)
        return -1;
    if (id && !pres_id_valid(s, len))
        return -1;
    for (size_t i = 0; !id && i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return -1;
    memcpy(out, s, len + 1);
    return 1;
}

//  A request's one deadline for the broker (docs/gateway.md): every wait
//  on the bus or the broker within it shares bus_timeout_ms from now.
static int64_t
s_deadline(const gw_req_t *req)
{
    return pres_mono_ms() + req->gw->cfg->bus_timeout_ms;
}

//  Milliseconds left until deadline (monotonic ms), at least 0.
static int
s_left(int64_t deadline)
{
    int64_t left = deadline - pres_mono_ms();
    return left > 0 ? (int)left : 0;
}

//  The broker is known to be away: requests that need it answer 503 at
//  once instead of each waiting bus_timeout_ms (until a probe answers).
static bool
s_broker_away(const gw_req_t *req)
{
    return gw_bus_broker_away(req->gw->bus, NULL, NULL);
}

//  How long a query of this request may wait: 0 (do not ask) when the
//  broker is away or the deadline has passed.
static int
s_query_wait(const gw_req_t *req, int64_t deadline)
{
    return s_broker_away(req) ? 0 : s_left(deadline);
}

//  A query (or room for an event) that waited timeout_ms timed out:
//  with most of bus_timeout_ms spent for nothing, the broker counts as
//  away until a probe answers.
static void
s_query_timed_out(const gw_req_t *req, int timeout_ms)
{
    if (timeout_ms >= req->gw->cfg->bus_timeout_ms / 2)
        gw_bus_broker_lost(req->gw->bus);
}

//  Publish ev on this worker's publisher, waiting for room until deadline
//  (not at all while the broker is away: an event the queue takes now is
//  still sent). 0 or -1 (EAGAIN: 503).
static int
s_publish(gw_req_t *req, pres_event_t *ev, int64_t deadline)
{
    int64_t t0 = pres_mono_ms();
    int wait = s_broker_away(req) ? 0 : s_left(deadline);
    int rc = gw_workers_publish(req->worker->pool, ev, wait);
    if (rc == 0) {
        gw_metrics_published(req->gw->metrics, (int)ev->type);
        gw_metrics_latency(req->gw->metrics, GW_LAT_PUBLISH,
                           (pres_mono_ms() - t0) * 1000);
    } else {
        gw_metrics_reject(req->gw->metrics, GW_REJ_BUS_BUSY);
        if (errno == EAGAIN && wait > 0)  //  the broker is not reading
            s_query_timed_out(req, wait);
    }
    return rc;
}

static enum MHD_Result
s_bad_request(gw_req_t *req, struct MHD_Connection *conn, const char *msg)
{
    return gw_req_refuse(req, conn, GW_REJ_BAD_REQUEST, 400, msg);
}

static enum MHD_Result
s_account_refused(gw_req_t *req, struct MHD_Connection *conn,
                  pres_account_t acc)
{
    char msg[64];
    snprintf(msg, sizeof msg, "account %s", pres_account_name(acc));
    gw_metrics_reject(req->gw->metrics, GW_REJ_ACCOUNT);
    return gw_req_error(req, conn, 403, msg);
}

//  Run a query. Returns the reply, or NULL with *status and *msg set
//  (404 not found, 503 timeout, 400 other broker refusal; msg is static
//  or a heap copy in *heap_msg that the caller frees).
static zframe_t *
s_query_on(gw_req_t *req, pres_qclient_t *qc, const pres_query_t *q,
           int64_t deadline, unsigned *status, char **heap_msg)
{
    char *error = NULL;
    int64_t t0 = pres_mono_ms();
    int wait = s_query_wait(req, deadline);
    errno = ETIMEDOUT;
    zframe_t *reply =
        qc && wait > 0 ? pres_qclient_query(qc, q, wait, &error) : NULL;
    *heap_msg = NULL;
    if (reply) {
        gw_metrics_latency(req->gw->metrics, GW_LAT_QUERY,
                           (pres_mono_ms() - t0) * 1000);
        return reply;
    }
    if (errno == EPROTO && error) {
        //  expired: the broker got it after our deadline (clock skew
        //  between hosts) and changed nothing.
        *status = strcmp(error, "not found") == 0 ? 404
                  : strcmp(error, "expired") == 0 ? 503
                                                  : 400;
        *heap_msg = error;
        return NULL;
    }
    free(error);
    //  (The admin endpoint also stays silent to a peer it does not admit.)
    if (qc == req->worker->query && wait > 0)
        s_query_timed_out(req, wait);
    gw_metrics_reject(req->gw->metrics, GW_REJ_BROKER_TIMEOUT);
    *status = 503;
    *heap_msg = strdup("broker unavailable");
    return NULL;
}

static zframe_t *
s_query(gw_req_t *req, const pres_query_t *q, int64_t deadline,
        unsigned *status, char **heap_msg)
{
    return s_query_on(req, req->worker->query, q, deadline, status, heap_msg);
}

//  Answer with the broker's reply as JSON (without `ok`).
static enum MHD_Result
s_reply_json(gw_req_t *req, struct MHD_Connection *conn, zframe_t **reply_p)
{
    size_t len = 0;
    char *json = pres_mp_to_json(zframe_data(*reply_p), zframe_size(*reply_p),
                                 "ok", &len);
    zframe_destroy(reply_p);
    if (!json)
        return gw_req_error(req, conn, 503, "malformed broker reply");
    enum MHD_Result rc = gw_req_json(req, conn, 200, json, len);
    free(json);
    return rc;
}

static enum MHD_Result
s_query_failed(gw_req_t *req, struct MHD_Connection *conn, unsigned status,
               char *msg)
{
    enum MHD_Result rc =
        gw_req_error(req, conn, status, msg ? msg : "broker error");
    free(msg);
    return rc;
}

enum MHD_Result
gw_api_login(gw_req_t *req, struct MHD_Connection *conn)
{
    const gw_env_t *gw = req->gw;
    const char *user = req->claims.sub;
    json_t *body = s_body(req, true);
    if (!body)
        return s_bad_request(req, conn, "body must be a JSON object");
    pres_event_t ev;
    memset(&ev, 0, sizeof ev);
    int has_device =
        s_str_field(body, "device", ev.device, sizeof ev.device, false);
    json_decref(body);
    if (has_device < 0)
        return s_bad_request(req, conn,
                             "device must be a printable string "
                             "of at most 128 bytes");
    pres_account_t acc = gw_accounts_get(gw->accounts, user);
    if (acc != PRES_ACC_ACTIVE)
        return s_account_refused(req, conn, acc);

    if (s_broker_away(req)) {
        gw_metrics_reject(gw->metrics, GW_REJ_BROKER_TIMEOUT);
        return gw_req_error(req, conn, 503, "broker unavailable");
    }
    unsigned char raw[16];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
        return gw_req_error(req, conn, 503, "no randomness");
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        ev.session[2 * i] = hex[raw[i] >> 4];
        ev.session[2 * i + 1] = hex[raw[i] & 15];
    }
    ev.session[2 * sizeof raw] = '\0';
    snprintf(ev.user, sizeof ev.user, "%s", user);
    //  The broker is asked about the user (its account may have changed
    //  before this gateway started; unknown_users=deny needs to know),
    //  then the login goes out and its change is awaited, all on the
    //  login thread (gateway_login.h): this thread serves others.
    if (gw_login_start(gw->login, req, conn, &ev) != 0) {
        gw_metrics_reject(gw->metrics, GW_REJ_BUS_BUSY);
        return gw_req_error(req, conn, 503, "too many logins in flight");
    }
    return MHD_YES;  //  answered by gw_api_login_done
}

enum MHD_Result
gw_api_login_done(gw_req_t *req, struct MHD_Connection *conn)
{
    const gw_login_result_t *r = gw_login_result(req);
    if (r->refused)
        return s_account_refused(req, conn, r->account);
    if (r->status != 200)
        return gw_req_error(req, conn, r->status, r->error);
    const gw_env_t *gw = req->gw;
    char json[256];
    int n = snprintf(json, sizeof json,
                     "{\"user\":\"%s\",\"session\":\"%s\",\"heartbeat_s\":%d,"
                     "\"timeout_s\":%g}",
                     req->claims.sub, r->session, gw->cfg->heartbeat,
                     gw->cfg->timeout);
    return gw_req_json(req, conn, 200, json, (size_t)n);
}

enum MHD_Result
gw_api_heartbeat(gw_req_t *req, struct MHD_Connection *conn)
{
    json_t *body = s_body(req, false);
    if (!body)
        return s_bad_request(req, conn,
                             "body must be a JSON object with "
                             "a session");
    pres_event_t ev;
    memset(&ev, 0, sizeof ev);
    int has_session =
        s_str_field(body, "session", ev.session, sizeof ev.session, true);
    char state[16];
    int has_state = s_str_field(body, "state", state, sizeof state, false);
    json_decref(body);
    if (has_session != 1)
        return s_bad_request(req, conn,
                             "session: 1 to 64 characters of "
                             "[A-Za-z0-9._@:-] required");
    if (has_state < 0 || (has_state == 1 && strcmp(state, "online") != 0 &&
                          strcmp(state, "away") != 0))
        return s_bad_request(req, conn, "state must be online or away");
    pres_account_t acc = gw_accounts_get(req->gw->accounts, req->claims.sub);
    if (acc != PRES_ACC_ACTIVE)
        return s_account_refused(req, conn, acc);
    ev.type = PRES_EV_HEARTBEAT;
    memcpy(ev.user, req->claims.sub, sizeof ev.user);
    if (has_state == 1) {
        ev.has_state = true;
        ev.state = state[0] == 'o' ? PRES_ONLINE : PRES_AWAY;
    }
    if (s_publish(req, &ev, s_deadline(req)) != 0)
        return gw_req_error(req, conn, 503, "bus unavailable");
    return gw_req_no_content(req, conn);
}

enum MHD_Result
gw_api_logout(gw_req_t *req, struct MHD_Connection *conn)
{
    json_t *body = s_body(req, true);
    if (!body)
        return s_bad_request(req, conn, "body must be a JSON object");
    pres_event_t ev;
    memset(&ev, 0, sizeof ev);
    int has_session =
        s_str_field(body, "session", ev.session, sizeof ev.session, true);
    json_decref(body);
    if (has_session < 0)
        return s_bad_request(req, conn,
                             "session: 1 to 64 characters of "
                             "[A-Za-z0-9._@:-]");
    ev.type = PRES_EV_LOGOUT;
    memcpy(ev.user, req->claims.sub, sizeof ev.user);
    if (s_publish(req, &ev, s_deadline(req)) != 0)
        return gw_req_error(req, conn, 503, "bus unavailable");
    //  The token is dead from now on, here and after a restart; 204 only
    //  once that is on disk (a retry after 503 publishes the logout again,
    //  which changes nothing, and revokes).
    if (gw_auth_revoke(req->gw->auth, req->token, req->token_len,
                       req->claims.exp) != 0)
        return gw_req_error(req, conn, 503, "revocation not durable");
    return gw_req_no_content(req, conn);
}

//  Ask the broker q and answer with its reply as JSON (or the failure).
static enum MHD_Result
s_query_reply(gw_req_t *req, struct MHD_Connection *conn, const pres_query_t *q)
{
    unsigned status = 0;
    char *msg = NULL;
    zframe_t *reply = s_query(req, q, s_deadline(req), &status, &msg);
    if (!reply)
        return s_query_failed(req, conn, status, msg);
    return s_reply_json(req, conn, &reply);
}

//  A query `op` on the route's {user}: 0, or -1 if the id is invalid.
static int
s_user_query(const gw_req_t *req, pres_query_op_t op, pres_query_t *q)
{
    const char *user = req->param;
    if (!pres_id_valid(user, strlen(user)))
        return -1;
    memset(q, 0, sizeof *q);
    q->op = op;
    snprintf(q->user, sizeof q->user, "%s", user);
    return 0;
}

enum MHD_Result
gw_api_user(gw_req_t *req, struct MHD_Connection *conn)
{
    pres_query_t q;
    if (s_user_query(req, PRES_Q_GET, &q) != 0)
        return s_bad_request(req, conn, "invalid user id");
    return s_query_reply(req, conn, &q);
}

enum MHD_Result
gw_api_users(gw_req_t *req, struct MHD_Connection *conn)
{
    pres_query_t q;
    memset(&q, 0, sizeof q);
    q.op = PRES_Q_LIST;
    q.limit = PRES_LIST_DEFAULT;
    const char *state =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "state");
    const char *account =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "account");
    const char *limit =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    const char *cursor =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "cursor");
    if (state && *state) {
        if (pres_state_parse(state, strlen(state), &q.state) != 0)
            return s_bad_request(req, conn,
                                 "state must be online, away or "
                                 "offline");
        q.has_state = true;
    }
    if (account && *account) {
        if (pres_account_parse(account, strlen(account), &q.account) != 0)
            return s_bad_request(req, conn,
                                 "account must be active, "
                                 "pending, inactive, suspended "
                                 "or banned");
        q.has_account = true;
    }
    if (limit && *limit) {
        char *end = NULL;
        long v = strtol(limit, &end, 10);
        if (!end || *end || v < 1 || v > PRES_LIST_MAX)
            return s_bad_request(req, conn, "limit must be 1 to 1000");
        q.limit = (uint32_t)v;
    }
    if (cursor && *cursor) {
        if (!pres_id_valid(cursor, strlen(cursor)))
            return s_bad_request(req, conn, "invalid cursor");
        snprintf(q.cursor, sizeof q.cursor, "%s", cursor);
    }
    return s_query_reply(req, conn, &q);
}

enum MHD_Result
gw_api_stats(gw_req_t *req, struct MHD_Connection *conn)
{
    pres_query_t q;
    memset(&q, 0, sizeof q);
    q.op = PRES_Q_STATS;
    return s_query_reply(req, conn, &q);
}

enum MHD_Result
gw_api_account(gw_req_t *req, struct MHD_Connection *conn)
{
    const char *user = req->param;
    if (!pres_id_valid(user, strlen(user)))
        return s_bad_request(req, conn, "invalid user id");
    json_t *body = s_body(req, false);
    if (!body)
        return s_bad_request(req, conn,
                             "body must be a JSON object with "
                             "a status");
    pres_query_t q;
    memset(&q, 0, sizeof q);
    q.op = PRES_Q_ACCOUNT;
    snprintf(q.user, sizeof q.user, "%s", user);
    char status_s[16];
    int has_status =
        s_str_field(body, "status", status_s, sizeof status_s, false);
    int has_reason =
        s_str_field(body, "reason", q.reason, sizeof q.reason, false);
    json_decref(body);
    if (has_status != 1 ||
        pres_account_parse(status_s, strlen(status_s), &q.status) != 0)
        return s_bad_request(req, conn,
                             "status must be active, pending, "
                             "inactive, suspended or banned");
    if (has_reason < 0)
        return s_bad_request(req, conn,
                             "reason must be a printable string "
                             "of at most 256 bytes");
    //  Account changes go to the broker's admin endpoint, which admits
    //  this process as an admin peer; the broker records who asked.
    snprintf(q.by, sizeof q.by, "%s", req->claims.sub);
    gw_worker_t *w = req->worker;
    if (!w->admin)
        w->admin = pres_qclient_new_admin(req->gw->cfg);
    unsigned status = 0;
    char *msg = NULL;
    zframe_t *reply =
        s_query_on(req, w->admin, &q, s_deadline(req), &status, &msg);
    if (!reply)
        return s_query_failed(req, conn, status, msg);
    //  Durable at the broker: refuse this user's heartbeats here at once.
    gw_accounts_set(req->gw->accounts, user, q.status);
    return s_reply_json(req, conn, &reply);
}

//  Optional ?limit= (1..1000) into *limit. 0 ok, -1 bad.
static int
s_limit_arg(struct MHD_Connection *conn, uint32_t *limit)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    if (!v || !*v)
        return 0;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    if (!end || *end || n < 1 || n > PRES_LIST_MAX)
        return -1;
    *limit = (uint32_t)n;
    return 0;
}

enum MHD_Result
gw_api_batch(gw_req_t *req, struct MHD_Connection *conn)
{
    json_t *body = s_body(req, false);
    json_t *users = body ? json_object_get(body, "users") : NULL;
    size_t n = json_is_array(users) ? json_array_size(users) : 0;
    if (!users || !json_is_array(users) || n < 1 || n > PRES_MANY_MAX ||
        json_object_size(body) != 1) {
        json_decref(body);
        return s_bad_request(req, conn,
                             "body must be {\"users\": [...]} with 1 to "
                             "1000 user ids");
    }
    static _Thread_local const char *ids[PRES_MANY_MAX];
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(users, i);
        const char *id = json_is_string(v) ? json_string_value(v) : NULL;
        if (!id || strlen(id) != json_string_length(v) ||
            !pres_id_valid(id, strlen(id))) {
            json_decref(body);
            return s_bad_request(req, conn, "invalid user id in users");
        }
        ids[i] = id;
    }
    pres_query_t q;
    memset(&q, 0, sizeof q);
    q.op = PRES_Q_GET_MANY;
    q.nusers = (uint32_t)n;
    q.users = ids;
    //  A get_many of 1,000 long ids does not fit the usual request buffer.
    static _Thread_local uint8_t frame[PRES_QUERY_FRAME_MAX];
    size_t len = pres_query_encode(&q, frame, sizeof frame);
    json_decref(body);
    if (len == 0)
        return s_bad_request(req, conn, "cannot encode the request");
    int64_t t0 = pres_mono_ms();
    int wait = s_query_wait(req, s_deadline(req));
    zframe_t *reply =
        wait > 0 ? pres_qclient_call(req->worker->query, frame, len, wait)
                 : NULL;
    if (!reply) {
        if (wait > 0)
            s_query_timed_out(req, wait);
        return gw_req_refuse(req, conn, GW_REJ_BROKER_TIMEOUT, 503,
                             "broker unavailable");
    }
    gw_metrics_latency(req->gw->metrics, GW_LAT_QUERY,
                       (pres_mono_ms() - t0) * 1000);
    bool ok = false;
    pres_mp_reader_t r;
    if (pres_mp_find(zframe_data(reply), zframe_size(reply), "ok", &r) != 0 ||
        pres_mp_read_bool(&r, &ok) != 0 || !ok) {
        zframe_destroy(&reply);
        return gw_req_error(req, conn, 400, "broker refused the request");
    }
    return s_reply_json(req, conn, &reply);
}

//  audit or history of the route's {user}.
static enum MHD_Result
s_user_log(gw_req_t *req, struct MHD_Connection *conn, pres_query_op_t op)
{
    pres_query_t q;
    if (s_user_query(req, op, &q) != 0)
        return s_bad_request(req, conn, "invalid user id");
    if (s_limit_arg(conn, &q.limit) != 0)
        return s_bad_request(req, conn, "limit must be 1 to 1000");
    return s_query_reply(req, conn, &q);
}

enum MHD_Result
gw_api_audit(gw_req_t *req, struct MHD_Connection *conn)
{
    return s_user_log(req, conn, PRES_Q_AUDIT);
}

enum MHD_Result
gw_api_history(gw_req_t *req, struct MHD_Connection *conn)
{
    return s_user_log(req, conn, PRES_Q_HISTORY);
}

enum MHD_Result
gw_api_series(gw_req_t *req, struct MHD_Connection *conn)
{
    pres_query_t q;
    memset(&q, 0, sizeof q);
    q.op = PRES_Q_SERIES;
    q.minutes = 60;
    const char *v =
        MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "minutes");
    if (v && *v) {
        char *end = NULL;
        long n = strtol(v, &end, 10);
        if (!end || *end || n < 1 || n > PRES_SERIES_MAX)
            return s_bad_request(req, conn, "minutes must be 1 to 43200");
        q.minutes = (uint32_t)n;
    }
    return s_query_reply(req, conn, &q);
}

#define S_SSE_BACKLOG_MAX                                                      \
    20000  //  changes replayed per SSE client from the log

//  Append to out the changes after *seq up to (not including) until, read
//  from the broker's change log; *seq follows. 0, or -1 (the log does not
//  reach back, the broker does not answer, a reply is malformed).
static int
s_sse_replay(gw_req_t *req, FILE *out, uint64_t *seq, uint64_t until)
{
    pres_query_t q;
    memset(&q, 0, sizeof q);
    q.op = PRES_Q_CHANGES_SINCE;
    while (*seq + 1 < until) {
        q.seq = *seq;
        int wait = s_query_wait(req, s_deadline(req));
        zframe_t *reply =
            wait > 0 ? pres_qclient_query(req->worker->query, &q, wait, NULL)
                     : NULL;
        if (!reply)
            return -1;
        pres_mp_reader_t r;
        uint32_t n = 0;
        bool ok = pres_mp_find(zframe_data(reply), zframe_size(reply),
                               "changes", &r) == 0 &&
                  pres_mp_read_array(&r, &n) == 0 && n > 0;
        for (uint32_t i = 0; ok && i < n && *seq + 1 < until; i++) {
            const uint8_t *start = r.p;
            pres_change_t ch;
            const char *why;
            char json[GW_SSE_TEXT_MAX];
            ok = pres_mp_skip(&r) == 0 &&
                 pres_change_decode(&ch, start, (size_t)(r.p - start), &why) ==
                     0 &&
                 ch.seq == *seq + 1;
            int len = ok ? gw_bus_change_json(&ch, json, sizeof json) : -1;
            if (len > 0)
                fprintf(out, "id: %" PRIu64 "\ndata: %s\n\n", ch.seq, json);
            if (ok)
                *seq = ch.seq;
        }
        zframe_destroy(&reply);
        if (!ok)
            return -1;
    }
    return 0;
}

//  A client resuming from `last`, older than the SSE ring (which starts at
//  `first`): its missing changes from the broker's change log, as SSE text
//  (heap; *len), up to where the ring takes over (*next). NULL when that
//  cannot be done (more than S_SSE_BACKLOG_MAX, log too short): the
//  client then gets a resync, as before.
static char *
s_sse_backlog(gw_req_t *req, uint64_t last, uint64_t first, size_t *len,
              uint64_t *next)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, len);
    if (!out)
        return NULL;
    uint64_t seq = last;
    int rc = 0;
    //  The ring moves on while we read: go again until we meet it.
    for (int round = 0; rc == 0 && seq + 1 < first && round < 8; round++) {
        if (first - seq - 1 > S_SSE_BACKLOG_MAX - (seq - last))
            rc = -1;
        else
            rc = s_sse_replay(req, out, &seq, first);
        uint64_t now_first;
        if (rc == 0 && gw_sse_first(req->gw->sse, &now_first))
            first = now_first;
    }
    if (fclose(out) != 0 || rc != 0 || seq + 1 < first) {
        free(text);
        return NULL;
    }
    *next = seq + 1;
    return text;
}

enum MHD_Result
gw_api_events(gw_req_t *req, struct MHD_Connection *conn)
{
    const char *last =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
    if (!last)
        last = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND,
                                           "last_event_id");
    unsigned status = 0;
    gw_token_id_t token;
    gw_auth_token_id(req->token, req->token_len, &token);
    struct MHD_Response *resp = NULL;
    //  Older than the ring: replay from the broker's change log first.
    uint64_t first = 0;
    char *end = NULL;
    unsigned long long id =
        last && *last && *last != '-' ? strtoull(last, &end, 10) : 0;
    if (end && !*end && gw_sse_first(req->gw->sse, &first) && id + 1 < first) {
        size_t len = 0;
        uint64_t next = 0;
        char *backlog = s_sse_backlog(req, (uint64_t)id, first, &len, &next);
        if (backlog)
            resp = gw_sse_open_backlog(req->gw->sse, conn, backlog, len, next,
                                       &req->claims, &token, &status);
    }
    if (!resp && status == 0)
        resp = gw_sse_open(req->gw->sse, conn, last, &req->claims, &token,
                           &status);
    if (!resp) {
        if (status == 400)
            return s_bad_request(req, conn,
                                 "Last-Event-ID must be a "
                                 "change seq");
        gw_metrics_reject(req->gw->metrics, GW_REJ_SSE_FULL);
        return gw_req_error(req, conn, 503, "event stream unavailable");
    }
    return gw_req_send(req, conn, 200, resp);
}

/*  ctl_cmd: the one-shot commands of presencectl (see ctl_cmd.h). */
#include "ctl_cmd.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_out.h"
#include "pres_bus.h"
#include "pres_jwt.h"
#include "pres_log.h"
#include "pres_msg.h"

int
ctl_cmd_unreachable(const pres_config_t *cfg, const char *endpoint,
                    int timeout_ms, FILE *err)
{
    (void)cfg;
    fprintf(err,
            "presencectl: the broker did not answer within %d ms on %s\n"
            "Is presence-broker running with the same config (-c FILE or "
            "PRESENCE_RUN_DIR)?\n",
            timeout_ms, endpoint);
    return CTL_EXIT_UNREACHABLE;
}

//  One query. *reply gets the reply frame whatever its `ok` (caller
//  destroys). Returns CTL_EXIT_OK (ok: true), CTL_EXIT_FAIL (ok: false or
//  malformed) or CTL_EXIT_UNREACHABLE.
static int
s_query(pres_qclient_t *qc, const ctl_args_t *a, const pres_config_t *cfg,
        const pres_query_t *q, zframe_t **reply, FILE *err)
{
    char req[PRES_MSG_MAX];
    *reply = NULL;
    size_t len = pres_query_encode(q, req, sizeof(req));
    if (len == 0) {
        fprintf(err, "presencectl: cannot encode the %s query\n",
                pres_query_op_name(q->op));
        return CTL_EXIT_USAGE;
    }
    *reply = pres_qclient_call(qc, req, len, a->timeout_ms);
    if (!*reply && q->op == PRES_Q_ACCOUNT) {
        //  The admin endpoint gives no answer to a peer it refused.
        ctl_cmd_unreachable(cfg, cfg->admin_endpoint, a->timeout_ms, err);
        fprintf(err, "Account changes need an admin peer: run as a user in "
                     "admin_peers (ipc://) or with a key in curve_admin_dir "
                     "(tcp://).\n");
        return CTL_EXIT_UNREACHABLE;
    }
    if (!*reply)
        return ctl_cmd_unreachable(cfg, cfg->query_endpoint, a->timeout_ms,
                                   err);
    bool ok = false;
    ctl_mp_bool(zframe_data(*reply), zframe_size(*reply), "ok", &ok);
    return ok ? CTL_EXIT_OK : CTL_EXIT_FAIL;
}

//  Report an ok:false reply: its JSON on out with --json, else the error
//  text on err.
static int
s_refused(const ctl_args_t *a, zframe_t *reply, FILE *out, FILE *err)
{
    char error[PRES_REASON_MAX + 1] = "malformed reply";
    const void *buf = zframe_data(reply);
    size_t len = zframe_size(reply);
    ctl_mp_str(buf, len, "error", error, sizeof(error));
    if (a->json && ctl_out_json(buf, len, out) == 0)
        return CTL_EXIT_FAIL;
    if (a->user)
        fprintf(err, "presencectl: %s: %s\n", a->user, error);
    else
        fprintf(err, "presencectl: %s\n", error);
    return CTL_EXIT_FAIL;
}

static int
s_print(const ctl_args_t *a, zframe_t *reply, FILE *out, FILE *err,
        int (*text)(const void *, size_t, FILE *))
{
    const void *buf = zframe_data(reply);
    size_t len = zframe_size(reply);
    int rc = a->json ? ctl_out_json(buf, len, out) : text(buf, len, out);
    if (rc != 0) {
        fprintf(err, "presencectl: malformed reply (%zu bytes)\n", len);
        return CTL_EXIT_FAIL;
    }
    return CTL_EXIT_OK;
}

static int
s_user_text(const void *buf, size_t len, FILE *out)
{
    return ctl_out_user(buf, len, pres_now_ms(), out);
}

//  get, stats, account, audit, history: one query, one reply (account on
//  the admin endpoint).
static int
s_simple(const ctl_args_t *a, const pres_config_t *cfg, pres_query_t *q,
         FILE *out, FILE *err)
{
    pres_qclient_t *qc = q->op == PRES_Q_ACCOUNT ? pres_qclient_new_admin(cfg)
                                                 : pres_qclient_new(cfg);
    if (!qc)
        return CTL_EXIT_FAIL;
    zframe_t *reply;
    int rc = s_query(qc, a, cfg, q, &reply, err);
    if (rc == CTL_EXIT_OK) {
        if (q->op == PRES_Q_GET)
            rc = s_print(a, reply, out, err, s_user_text);
        else if (q->op == PRES_Q_STATS)
            rc = s_print(a, reply, out, err, ctl_out_stats);
        else if (q->op == PRES_Q_AUDIT)
            rc = s_print(a, reply, out, err, ctl_out_audit);
        else if (q->op == PRES_Q_HISTORY)
            rc = s_print(a, reply, out, err, ctl_out_history);
        else if (a->json)
            rc = ctl_out_json(zframe_data(reply), zframe_size(reply), out) == 0
                     ? CTL_EXIT_OK
                     : CTL_EXIT_FAIL;
        else {
            uint64_t seq = 0;
            pres_mp_find_uint(zframe_data(reply), zframe_size(reply), "seq",
                              &seq);
            fprintf(out, "%s is now %s (change %" PRIu64 ")\n", a->user,
                    a->status, seq);
        }
    } else if (rc == CTL_EXIT_FAIL)
        rc = s_refused(a, reply, out, err);
    zframe_destroy(&reply);
    pres_qclient_destroy(&qc);
    return rc;
}

//  Append the JSON of every element of the page's `users` to *acc.
static int
s_collect_users(zframe_t *reply, zchunk_t *acc)
{
    pres_mp_reader_t r;
    uint32_t n;
    if (pres_mp_find(zframe_data(reply), zframe_size(reply), "users", &r) !=
            0 ||
        pres_mp_read_array(&r, &n) != 0)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *start = r.p;
        if (pres_mp_skip(&r) != 0)
            return -1;
        size_t jlen;
        char *json = pres_mp_to_json(start, (size_t)(r.p - start), NULL, &jlen);
        if (!json)
            return -1;
        if (zchunk_size(acc) > 1)
            zchunk_extend(acc, ",", 1);
        zchunk_extend(acc, json, jlen);
        free(json);
    }
    return 0;
}

static int
s_list(const ctl_args_t *a, const pres_config_t *cfg, FILE *out, FILE *err)
{
    pres_query_t q;
    memset(&q, 0, sizeof(q));
    q.op = PRES_Q_LIST;
    if (a->state) {
        q.has_state = true;
        pres_state_parse(a->state, strlen(a->state), &q.state);
    }
    if (a->account) {
        q.has_account = true;
        pres_account_parse(a->account, strlen(a->account), &q.account);
    }
    if (a->cursor)
        snprintf(q.cursor, sizeof(q.cursor), "%s", a->cursor);
    q.limit = a->limit ? (uint32_t)a->limit : PRES_LIST_DEFAULT;
    pres_qclient_t *qc = pres_qclient_new(cfg);
    if (!qc)
        return CTL_EXIT_FAIL;
    //  --all --json prints one {"users": [...]} over every page.
    zchunk_t *acc = a->all && a->json ? zchunk_new("[", 1) : NULL;
    int rc, total = 0;
    bool more = true;
    for (int page = 0; more; page++) {
        zframe_t *reply;
        rc = s_query(qc, a, cfg, &q, &reply, err);
        if (rc != CTL_EXIT_OK) {
            if (rc == CTL_EXIT_FAIL)
                rc = s_refused(a, reply, out, err);
            zframe_destroy(&reply);
            break;
        }
        const void *buf = zframe_data(reply);
        size_t len = zframe_size(reply);
        char next[PRES_ID_MAX + 1] = "";
        more = ctl_mp_str(buf, len, "next", next, sizeof(next)) == 0 &&
               pres_id_valid(next, strlen(next));
        int n;
        if (acc)
            n = s_collect_users(reply, acc);
        else if (a->json)
            n = ctl_out_json(buf, len, out);
        else {
            n = ctl_out_list(buf, len, pres_now_ms(), page == 0, out);
            total += n > 0 ? n : 0;
        }
        zframe_destroy(&reply);
        if (n < 0) {
            fprintf(err, "presencectl: malformed list reply\n");
            rc = CTL_EXIT_FAIL;
            break;
        }
        if (more && !a->all) {
            if (!a->json) {
                char limit[32] = "";
                if (a->limit)
                    snprintf(limit, sizeof(limit), " --limit %ld", a->limit);
                fprintf(out,
                        "(more: presencectl list%s%s%s%s%s --cursor "
                        "%s)\n",
                        a->state ? " --state " : "", a->state ? a->state : "",
                        a->account ? " --account " : "",
                        a->account ? a->account : "", limit, next);
            }
            break;
        }
        snprintf(q.cursor, sizeof(q.cursor), "%s", next);
    }
    if (rc == CTL_EXIT_OK && acc) {
        zchunk_extend(acc, "]", 1);
        fprintf(out, "{\"users\":%.*s}\n", (int)zchunk_size(acc),
                (const char *)zchunk_data(acc));
    } else if (rc == CTL_EXIT_OK && !a->json && total == 0)
        fprintf(out, "(no users)\n");
    zchunk_destroy(&acc);
    pres_qclient_destroy(&qc);
    return rc;
}

static int
s_token(const ctl_args_t *a, const pres_config_t *cfg, FILE *out, FILE *err)
{
    //  The secret is created under data_dir the first time, as the
    //  gateway does; make sure the directory exists.
    if (mkdir(cfg->data_dir, 0750) != 0 && errno != EEXIST) {
        fprintf(err, "presencectl: mkdir(%s) failed: %s\n", cfg->data_dir,
                strerror(errno));
        return CTL_EXIT_FAIL;
    }
    pres_jwt_t *jwt = pres_jwt_new(cfg, true);
    if (!jwt) {
        fprintf(err, "presencectl: cannot load the JWT secret %s\n",
                cfg->jwt_secret_file);
        return CTL_EXIT_FAIL;
    }
    int64_t now = (int64_t)time(NULL);
    char *token = pres_jwt_mint(jwt, a->user, a->admin, a->ttl, now);
    pres_jwt_destroy(&jwt);
    if (!token) {
        fprintf(err,
                "presencectl: cannot mint a token (jwt_alg %s: only "
                "HS256 tokens can be minted here)\n",
                cfg->jwt_alg);
        return CTL_EXIT_FAIL;
    }
    if (a->json)
        fprintf(out,
                "{\"token\":\"%s\",\"user\":\"%s\",\"admin\":%s,"
                "\"exp\":%" PRId64 "}\n",
                token, a->user, a->admin ? "true" : "false", now + a->ttl);
    else
        fprintf(out, "%s\n", token);
    free(token);
    return CTL_EXIT_OK;
}

static int
s_publish(const ctl_args_t *a, const pres_config_t *cfg, FILE *out, FILE *err)
{
    pres_event_t ev;
    memset(&ev, 0, sizeof(ev));
    pres_ev_type_parse(a->type, strlen(a->type), &ev.type);
    snprintf(ev.user, sizeof(ev.user), "%s", a->user);
    if (a->session)
        snprintf(ev.session, sizeof(ev.session), "%s", a->session);
    else if (ev.type == PRES_EV_LOGIN) {
        zuuid_t *uuid = zuuid_new();
        snprintf(ev.session, sizeof(ev.session), "ctl-%.12s",
                 uuid ? zuuid_str(uuid) : "0");
        zuuid_destroy(&uuid);
    }
    if (a->device)
        snprintf(ev.device, sizeof(ev.device), "%s", a->device);
    if (a->state) {
        ev.has_state = true;
        pres_state_parse(a->state, strlen(a->state), &ev.state);
    }
    if (a->status)
        pres_account_parse(a->status, strlen(a->status), &ev.status);
    if (a->reason)
        snprintf(ev.reason, sizeof(ev.reason), "%s", a->reason);
    if (ev.type == PRES_EV_EXPIRE)
        ev.deadline = a->deadline ? a->deadline : (uint64_t)pres_now_ms();

    char src[PRES_ID_MAX + 1];
    pres_src_id(src, sizeof(src), "presencectl", -1);
    pres_pub_t *pub = pres_pub_new(cfg, src);
    if (!pub)
        return CTL_EXIT_FAIL;
    int rc = CTL_EXIT_OK;
    if (!pres_pub_wait(pub, a->timeout_ms)) {
        fprintf(err,
                "presencectl: the broker did not attach to %s within "
                "%d ms; nothing was sent\nIs presence-broker running with "
                "the same config (-c FILE or PRESENCE_RUN_DIR)?\n",
                cfg->events_endpoint, a->timeout_ms);
        rc = CTL_EXIT_UNREACHABLE;
    } else if (pres_pub_send(pub, &ev, a->timeout_ms) != 0) {
        if (errno == EINVAL) {
            fprintf(err, "presencectl: the event is not valid\n");
            rc = CTL_EXIT_USAGE;
        } else {
            fprintf(err,
                    "presencectl: the bus stayed full for %d ms; "
                    "nothing was sent\n",
                    a->timeout_ms);
            rc = CTL_EXIT_UNREACHABLE;
        }
    }
    //  Destroy lingers until the event is out (pres_pub sets linger).
    pres_pub_destroy(&pub);
    if (rc != CTL_EXIT_OK)
        return rc;
    if (a->json) {
        char buf[PRES_MSG_MAX];
        size_t len = pres_event_encode(&ev, buf, sizeof(buf));
        if (len == 0 || ctl_out_json(buf, len, out) != 0)
            return CTL_EXIT_FAIL;
    } else {
        fprintf(out, "sent %s %s", a->type, a->user);
        if (*ev.session)
            fprintf(out, " session %s", ev.session);
        fprintf(out, " (src %s, seq %" PRIu64 ")\n", src, ev.seq);
    }
    return CTL_EXIT_OK;
}

//  keygen NAME DIR: a czmq certificate pair; the secret file is 0600.
static int
s_keygen(const ctl_args_t *a, FILE *out, FILE *err)
{
    char path[PRES_PATH_MAX];
    int n = snprintf(path, sizeof(path), "%s/%s.cert", a->dir, a->user);
    if (n < 0 || (size_t)n >= sizeof(path) - 8) {
        fprintf(err, "presencectl: keygen: path too long\n");
        return CTL_EXIT_USAGE;
    }
    zcert_t *cert = zcert_new();
    if (!cert) {
        fprintf(err, "presencectl: zcert_new() failed\n");
        return CTL_EXIT_FAIL;
    }
    zcert_set_meta(cert, "name", "%s", a->user);
    mode_t old = umask(077);
    int rc = zcert_save(cert, path);
    umask(old);
    if (rc != 0) {
        fprintf(err, "presencectl: zcert_save(%s) failed: %s\n", path,
                strerror(errno));
        zcert_destroy(&cert);
        return CTL_EXIT_FAIL;
    }
    chmod(path, 0644);  //  the public half is meant to be copied around
    if (a->json)
        fprintf(out,
                "{\"public\":\"%s\",\"secret_file\":\"%s_secret\","
                "\"public_key\":\"%s\"}\n",
                path, path, zcert_public_txt(cert));
    else
        fprintf(out, "public %s\nsecret %s_secret\nkey    %s\n", path, path,
                zcert_public_txt(cert));
    zcert_destroy(&cert);
    return CTL_EXIT_OK;
}

int
ctl_cmd_run(const ctl_args_t *a, const pres_config_t *cfg, FILE *out, FILE *err)
{
    assert(a && cfg);
    pres_query_t q;
    memset(&q, 0, sizeof(q));
    switch (a->cmd) {
    case CTL_CMD_TOKEN:
        return s_token(a, cfg, out, err);
    case CTL_CMD_GET:
        q.op = PRES_Q_GET;
        snprintf(q.user, sizeof(q.user), "%s", a->user);
        return s_simple(a, cfg, &q, out, err);
    case CTL_CMD_STATS:
        q.op = PRES_Q_STATS;
        return s_simple(a, cfg, &q, out, err);
    case CTL_CMD_ACCOUNT:
        q.op = PRES_Q_ACCOUNT;
        snprintf(q.user, sizeof(q.user), "%s", a->user);
        pres_account_parse(a->status, strlen(a->status), &q.status);
        if (a->reason)
            snprintf(q.reason, sizeof(q.reason), "%s", a->reason);
        return s_simple(a, cfg, &q, out, err);
    case CTL_CMD_AUDIT:
    case CTL_CMD_HISTORY:
        q.op = a->cmd == CTL_CMD_AUDIT ? PRES_Q_AUDIT : PRES_Q_HISTORY;
        snprintf(q.user, sizeof(q.user), "%s", a->user);
        q.limit = (uint32_t)a->limit;
        return s_simple(a, cfg, &q, out, err);
    case CTL_CMD_LIST:
        return s_list(a, cfg, out, err);
    case CTL_CMD_PUBLISH:
        return s_publish(a, cfg, out, err);
    case CTL_CMD_KEYGEN:
        return s_keygen(a, out, err);
    default:
        return CTL_EXIT_USAGE;
    }
}

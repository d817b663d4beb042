/*  broker_auth: ZAP handler (see broker_auth.h). Speaks ZAP 1.0 (ZeroMQ
    RFC 27) on inproc://zeromq.zap.01 with a REP socket. */
#include "broker_auth.h"

#include <assert.h>
#include <czmq.h>
#include <ctype.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "pres_log.h"
#include "pres_msg.h"

#define S_PEERS_MAX 32  //  entries of admin_peers

struct broker_auth {
    const pres_config_t *cfg;  //  borrowed
    uid_t peers[S_PEERS_MAX];  //  uids admitted at an ipc:// admin endpoint
    int npeers;
    zactor_t *actor;           //  the handler thread
    _Atomic uint64_t refused;  //  admin connections refused
    zcertstore_t *clients;     //  curve_clients_dir, or NULL
    bool clients_any;          //  curve_clients_dir = "*"
    zcertstore_t *admins;      //  curve_admin_dir, or NULL
    pres_ratelimit_t rl;       //  refusal log limit (handler thread)
};

//  admin_peers: comma list of user names or numeric uids.
static int
s_parse_peers(broker_auth_t *self, const char *list)
{
    if (!*list) {
        self->peers[self->npeers++] = geteuid();
        return 0;
    }
    const char *p = list;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        size_t n = strcspn(p, ", ");
        if (n == 0)
            break;
        char name[64];
        if (n >= sizeof name || self->npeers == S_PEERS_MAX) {
            pres_log_error("admin_peers: entry too long or more than %d",
                           S_PEERS_MAX);
            return -1;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        p += n;
        char *end;
        unsigned long uid = strtoul(name, &end, 10);
        if (isdigit((unsigned char)name[0]) && *end == '\0') {
            self->peers[self->npeers++] = (uid_t)uid;
            continue;
        }
        struct passwd pw, *found = NULL;
        char buf[1024];
        if (getpwnam_r(name, &pw, buf, sizeof buf, &found) != 0 || !found) {
            pres_log_error("admin_peers: no user named '%s'", name);
            return -1;
        }
        self->peers[self->npeers++] = found->pw_uid;
    }
    return 0;
}

static bool
s_peer_allowed(const broker_auth_t *self, uid_t uid)
{
    for (int i = 0; i < self->npeers; i++)
        if (self->peers[i] == uid)
            return true;
    return false;
}

//  The uid in a ZAP address of an ipc peer: "<host>:<uid>:<gid>:<pid>".
static int
s_address_uid(const char *address, uid_t *uid)
{
    const char *colon[3] = {NULL, NULL, NULL};  //  last three ':'
    for (const char *p = address; *p; p++)
        if (*p == ':') {
            colon[0] = colon[1];
            colon[1] = colon[2];
            colon[2] = p;
        }
    if (!colon[0])
        return -1;
    char *end;
    unsigned long v = strtoul(colon[0] + 1, &end, 10);
    if (end != colon[1] || !isdigit((unsigned char)colon[0][1]))
        return -1;
    *uid = (uid_t)v;
    return 0;
}

//  "unix:<name>" for a uid (its number when it has no name).
static void
s_unix_id(uid_t uid, char *out, size_t cap)
{
    struct passwd pw, *found = NULL;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &found) == 0 && found &&
        strlen(found->pw_name) + 5 <= PRES_ID_MAX &&
        pres_id_valid(found->pw_name, strlen(found->pw_name)))
        snprintf(out, cap, "unix:%s", found->pw_name);
    else
        snprintf(out, cap, "unix:%lu", (unsigned long)uid);
}

//  Decide one request. Returns true to admit; user_id gets the identity.
static bool
s_decide(broker_auth_t *self, const char *domain, const char *address,
         const char *mechanism, zframe_t *credential, char *user_id, size_t cap)
{
    bool admin = strcmp(domain, BROKER_AUTH_ADMIN) == 0;
    if (!admin && strcmp(domain, BROKER_AUTH_BUS) != 0)
        return false;
    if (strcmp(mechanism, "CURVE") == 0) {
        if (!credential || zframe_size(credential) != 32)
            return false;
        char key[41];
        zmq_z85_encode(key, zframe_data(credential), 32);
        if (!admin) {
            snprintf(user_id, cap, "%s", key);
            return self->clients_any ||
                   (self->clients && zcertstore_lookup(self->clients, key));
        }
        zcert_t *cert =
            self->admins ? zcertstore_lookup(self->admins, key) : NULL;
        if (!cert)
            return false;
        const char *name = zcert_meta(cert, "name");
        if (name && strlen(name) + 6 <= PRES_ID_MAX &&
            pres_id_valid(name, strlen(name)))
            snprintf(user_id, cap, "curve:%s", name);
        else
            snprintf(user_id, cap, "curve:unnamed");
        return true;
    }
    if (admin && strcmp(mechanism, "NULL") == 0 &&
        strncmp(self->cfg->admin_endpoint, "ipc://", 6) == 0) {
        uid_t uid;
        if (s_address_uid(address, &uid) != 0 || !s_peer_allowed(self, uid))
            return false;
        s_unix_id(uid, user_id, cap);
        return true;
    }
    return false;
}

static void
s_handle(broker_auth_t *self, zsock_t *handler)
{
    zmsg_t *req = zmsg_recv(handler);
    if (!req)
        return;
    char *version = zmsg_popstr(req);
    char *request_id = zmsg_popstr(req);
    char *domain = zmsg_popstr(req);
    char *address = zmsg_popstr(req);
    zframe_t *routing_id = zmsg_pop(req);
    char *mechanism = zmsg_popstr(req);
    zframe_t *credential = zmsg_pop(req);  //  CURVE: the client key
    char user_id[PRES_ID_MAX + 1] = "";
    bool ok = version && request_id && domain && address && mechanism &&
              strcmp(version, "1.0") == 0 &&
              s_decide(self, domain, address, mechanism, credential, user_id,
                       sizeof user_id);
    if (!ok && domain && strcmp(domain, BROKER_AUTH_ADMIN) == 0) {
        atomic_fetch_add(&self->refused, 1);
        pres_log_limited(&self->rl, 1000,
                         "admin endpoint: refused %s peer %s (not in "
                         "admin_peers / curve_admin_dir)",
                         mechanism ? mechanism : "?", address ? address : "?");
    }
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    zmsg_addstr(reply, request_id ? request_id : "");
    zmsg_addstr(reply, ok ? "200" : "400");
    zmsg_addstr(reply, ok ? "OK" : "not allowed");
    zmsg_addstr(reply, user_id);
    zmsg_addmem(reply, "", 0);  //  no metadata
    if (zmsg_send(&reply, handler))
        pres_log_error("zmsg_send(ZAP reply) failed");
    zmsg_destroy(&reply);
    free(version);
    free(request_id);
    free(domain);
    free(address);
    free(mechanism);
    zframe_destroy(&routing_id);
    zframe_destroy(&credential);
    zmsg_destroy(&req);
}

static void
s_actor(zsock_t *pipe, void *arg)
{
    broker_auth_t *self = arg;
    zsock_t *handler = zsock_new(ZMQ_REP);
    if (!handler || zsock_bind(handler, "inproc://zeromq.zap.01") != 0) {
        pres_log_error("binding the ZAP handler failed: %s",
                       zmq_strerror(zmq_errno()));
        zsock_destroy(&handler);
        zsock_signal(pipe, 1);
        return;
    }
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, handler, NULL);
    while (poller) {
        void *which = zpoller_wait(poller, -1);
        if (which == handler)
            s_handle(self, handler);
        else if (which == pipe) {
            char *cmd = zstr_recv(pipe);
            bool term = !cmd || strcmp(cmd, "$TERM") == 0;
            free(cmd);
            if (term)
                break;
        } else if (zpoller_terminated(poller))
            break;
    }
    zpoller_destroy(&poller);
    zsock_destroy(&handler);
}

static bool
s_is_tcp(const char *endpoint)
{
    return strncmp(endpoint, "tcp://", 6) == 0;
}

broker_auth_t *
broker_auth_new(const pres_config_t *cfg)
{
    broker_auth_t *self = calloc(1, sizeof *self);
    if (!self) {
        pres_log_error("calloc() failed for the ZAP handler");
        return NULL;
    }
    self->cfg = cfg;
    atomic_init(&self->refused, 0);
    if (s_parse_peers(self, cfg->admin_peers))
        goto fail;
    bool bus_curve =
        *cfg->curve_secret_file &&
        (s_is_tcp(cfg->events_endpoint) || s_is_tcp(cfg->changes_endpoint) ||
         s_is_tcp(cfg->query_endpoint));
    if (bus_curve) {
        if (!*cfg->curve_clients_dir) {
            pres_log_error("CURVE on tcp:// needs curve_clients_dir (the "
                           "public certs of allowed clients)");
            goto fail;
        }
        if (strcmp(cfg->curve_clients_dir, "*") == 0)
            self->clients_any = true;
        else if (!(self->clients = zcertstore_new(cfg->curve_clients_dir))) {
            pres_log_error("zcertstore_new(%s) failed", cfg->curve_clients_dir);
            goto fail;
        }
    }
    if (s_is_tcp(cfg->admin_endpoint) &&
        !(self->admins = zcertstore_new(cfg->curve_admin_dir))) {
        pres_log_error("zcertstore_new(%s) failed", cfg->curve_admin_dir);
        goto fail;
    }
    self->actor = zactor_new(s_actor, self);
    if (!self->actor) {
        pres_log_error("zactor_new(ZAP handler) failed");
        goto fail;
    }
    return self;
fail:
    broker_auth_destroy(&self);
    return NULL;
}

void
broker_auth_destroy(broker_auth_t **self_p)
{
    assert(self_p);
    broker_auth_t *self = *self_p;
    if (!self)
        return;
    zactor_destroy(&self->actor);
    zcertstore_destroy(&self->clients);
    zcertstore_destroy(&self->admins);
    free(self);
    *self_p = NULL;
}

uint64_t
broker_auth_admin_refused(const broker_auth_t *self)
{
    return atomic_load(&self->refused);
}

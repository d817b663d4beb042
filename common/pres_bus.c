/*  pres_bus: socket setup shared by every program: CURVE on tcp://, the
    lossless event publisher, the change subscriber and the query client. */
#include "pres_bus.h"
#include "pres_leader.h"
#include "pres_log.h"
#include "pres_mp.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static bool
s_is_tcp(const char *endpoint)
{
    return strncmp(endpoint, "tcp://", 6) == 0;
}

int
pres_bus_secure(zsock_t *sock, const pres_config_t *cfg, const char *endpoint,
                bool server)
{
    if (!s_is_tcp(endpoint))
        return 0;
    if (!*cfg->curve_secret_file) {
        if (cfg->bus_insecure_tcp)
            return 0;
        pres_log_error("%s: tcp:// needs curve_secret_file", endpoint);
        return -1;
    }
    zcert_t *cert = zcert_load(cfg->curve_secret_file);
    if (!cert) {
        pres_log_error("zcert_load(%s) failed", cfg->curve_secret_file);
        return -1;
    }
    int rc = 0;
    if (server) {
        zsock_set_zap_domain(sock, "presence");
        zsock_set_curve_server(sock, 1);
        zcert_apply(cert, sock);
    } else {
        zcert_t *peer = *cfg->curve_server_public_file
                            ? zcert_load(cfg->curve_server_public_file)
                            : NULL;
        if (!peer) {
            pres_log_error("zcert_load(curve_server_public_file '%s') failed",
                           cfg->curve_server_public_file);
            rc = -1;
        } else {
            zcert_apply(cert, sock);
            zsock_set_curve_serverkey(sock, zcert_public_txt(peer));
            zcert_destroy(&peer);
        }
    }
    zcert_destroy(&cert);
    return rc;
}

//  Connect sock to every endpoint of a comma list (under fail-over the
//  list names every broker; only the leader binds). No ZMQ_IMMEDIATE: an
//  XPUB sends only to pipes whose broker subscribed, and with it libzmq
//  4.3.4 failed to attach a SUB or an XPUB to a broker bound later. 0 or -1.
static int
s_connect_list(zsock_t *sock, const pres_config_t *cfg, const char *list)
{
    char ep[PRES_ENDPOINT_MAX];
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n > 0 && n < sizeof ep) {
            memcpy(ep, p, n);
            ep[n] = 0;
            if (pres_bus_secure(sock, cfg, ep, false) != 0 ||
                zsock_connect(sock, "%s", ep) != 0) {
                pres_log_error("zsock_connect(%s) failed", ep);
                return -1;
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

//  ---------------------------------------------------------------------
//  Publisher

struct pres_pub {
    zsock_t *sock;                  //  XPUB, connected to the broker's SUB
    void *handle;                   //  raw libzmq socket of sock
    zsock_t *monitor;               //  PAIR: connect/disconnect events of sock
    bool connected;                 //  some broker connection is up
    char up[4][PRES_ENDPOINT_MAX];  //  endpoints whose connection is up
                                    //  (several under fail-over)
    char src[PRES_ID_MAX + 1];      //  our publisher id
    uint64_t seq;                   //  last seq sent successfully
    int subscribers;                //  subscriptions minus unsubscriptions
    int64_t next_poll_ms;           //  when to look for (un)subscriptions
    char buf[PRES_MSG_MAX];         //  encode buffer
    //  The stage (pres_pub_post): encoded events not yet handed to
    //  libzmq, in seq order; [head, count) are still to go.
    int head, count;
    size_t used;  //  bytes of stage taken
    struct {
        uint32_t off, len;
        pres_ev_type_t type;
    } staged[PRES_PUB_STAGE_MAX];
    char stage[PRES_PUB_STAGE_BYTES];
};

void
pres_src_id(char *out, size_t cap, const char *role, int index)
{
    char host[64] = "host";
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "host");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (!pres_id_valid(c, 1))
            *c = '_';
    int n = snprintf(out, cap, "%s-%.40s-%ld", role, host, (long)getpid());
    if (index >= 0 && n > 0 && (size_t)n < cap)
        snprintf(out + n, cap - (size_t)n, "-%d", index);
}

pres_pub_t *
pres_pub_new(const pres_config_t *cfg, const char *src)
{
    if (!pres_id_valid(src, strlen(src))) {
        pres_log_error("pres_pub_new: invalid src '%s'", src);
        return NULL;
    }
    pres_pub_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    snprintf(self->src, sizeof self->src, "%s", src);
    self->sock = zsock_new(ZMQ_XPUB);
    if (!self->sock) {
        pres_log_error("zsock_new(XPUB) failed");
        pres_pub_destroy(&self);
        return NULL;
    }
    self->handle = zsock_resolve(self->sock);
    zsock_set_xpub_nodrop(self->sock, 1);
    zsock_set_xpub_verboser(self->sock, 1);
    zsock_set_sndhwm(self->sock, cfg->bus_hwm);
    zsock_set_linger(self->sock, 2000);      //  flush queued events on exit
    zsock_set_maxmsgsize(self->sock, 1024);  //  we only read subscriptions
    //  A connecting XPUB keeps its pipe across reconnects, so no
    //  unsubscription ever says the broker left: the socket monitor does.
    //  A unique name per publisher: a monitor's inproc endpoint is
    //  released asynchronously, so a name made from the struct's address
    //  could still be bound when malloc hands the address out again
    //  (zmq_socket_monitor then fails with EADDRINUSE).
    static atomic_uint s_monitors;
    char monitor[64];
    snprintf(monitor, sizeof monitor, "inproc://pres-pub-monitor-%u",
             atomic_fetch_add(&s_monitors, 1));
    if (zmq_socket_monitor(self->handle, monitor,
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED) != 0 ||
        !(self->monitor = zsock_new(ZMQ_PAIR)) ||
        zsock_connect(self->monitor, "%s", monitor) != 0) {
        pres_log_error("zmq_socket_monitor() failed: %s", zmq_strerror(errno));
        pres_pub_destroy(&self);
        return NULL;
    }
    if (s_connect_list(self->sock, cfg, cfg->events_endpoint) != 0) {
        pres_pub_destroy(&self);
        return NULL;
    }
    return self;
}

void
pres_pub_destroy(pres_pub_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        pres_pub_t *self = *self_p;
        if (self->sock && self->monitor && pres_pub_flush(self) > 0)
            pres_log_error("publisher %s: %d staged events dropped at exit",
                           self->src, self->count - self->head);
        if (self->sock)
            zmq_socket_monitor(self->handle, NULL, 0);
        zsock_destroy(&self->monitor);
        zsock_destroy(&self->sock);
        free(self);
        *self_p = NULL;
    }
}

//  Read pending monitor events, then (un)subscription frames (\x01prefix
//  or \x00prefix). A disconnect forgets the subscriptions; the broker's
//  SUB sends them again when it reconnects.
static void
s_pub_drain(pres_pub_t *self)
{
    unsigned char frame[64];
    int n;
    void *mon = zsock_resolve(self->monitor);
    while ((n = zmq_recv(mon, frame, sizeof frame, ZMQ_DONTWAIT)) >= 0) {
        uint16_t event = 0;
        if (n >= 2)
            memcpy(&event, frame, sizeof event);
        //  Second frame: the endpoint. Under fail-over the socket connects
        //  to every broker; a late disconnect of the old leader must not
        //  forget the new leader's subscription.
        char ep[PRES_ENDPOINT_MAX];
        int len = zmq_recv(mon, ep, sizeof ep - 1, ZMQ_DONTWAIT);
        ep[len > 0 && len < (int)sizeof ep ? len : 0] = 0;
        int slot = -1, free_slot = -1;
        for (int i = 0; i < 4; i++) {
            if (self->up[i][0] && strcmp(self->up[i], ep) == 0)
                slot = i;
            else if (!self->up[i][0] && free_slot < 0)
                free_slot = i;
        }
        if (event == ZMQ_EVENT_CONNECTED && slot < 0 && free_slot >= 0)
            snprintf(self->up[free_slot], sizeof self->up[0], "%s", ep);
        else if (event == ZMQ_EVENT_DISCONNECTED && slot >= 0)
            self->up[slot][0] = 0;
        bool any = false;
        for (int i = 0; i < 4; i++)
            any = any || self->up[i][0];
        if (event == ZMQ_EVENT_CONNECTED)
            self->connected = true;
        else if (event == ZMQ_EVENT_DISCONNECTED && !any) {
            self->connected = false;
            self->subscribers = 0;
        }
    }
    while ((n = zmq_recv(self->handle, frame, sizeof frame, ZMQ_DONTWAIT)) >=
           1) {
        if (frame[0] == 1)
            self->subscribers++;
        else if (frame[0] == 0 && self->subscribers > 0)
            self->subscribers--;
    }
}

static int64_t
s_coarse_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
pres_pub_ready(pres_pub_t *self)
{
    int64_t now = s_coarse_ms();
    if (now >= self->next_poll_ms) {
        s_pub_drain(self);
        self->next_poll_ms = now + 5;
    }
    return self->connected && self->subscribers > 0;
}

bool
pres_pub_wait(pres_pub_t *self, int timeout_ms)
{
    int64_t until = pres_mono_ms() + timeout_ms;
    s_pub_drain(self);
    while (!self->connected || self->subscribers <= 0) {
        int64_t left = until - pres_mono_ms();
        if (left <= 0)
            return false;
        zmq_pollitem_t items[] = {
            {self->handle, 0, ZMQ_POLLIN, 0},
            {zsock_resolve(self->monitor), 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, (long)left) < 0 && errno != EINTR)
            return false;
        s_pub_drain(self);
    }
    return true;
}

//  Fill what the publisher owns in ev and encode it into buf (cap bytes).
//  Returns the length, or 0 with errno EINVAL.
static size_t
s_pub_encode(pres_pub_t *self, pres_event_t *ev, char *buf, size_t cap)
{
    snprintf(ev->src, sizeof ev->src, "%s", self->src);
    ev->seq = self->seq + 1;
    if (ev->at == 0)
        ev->at = (uint64_t)pres_now_ms();
    size_t len = pres_event_encode(ev, buf, cap);
    if (len == 0)
        errno = EINVAL;
    return len;
}

//  Hand one message to libzmq without waiting. 0, or -1 (broker absent
//  or pipe full: nothing sent).
static int
s_pub_try(pres_pub_t *self, pres_ev_type_t type, const void *body, size_t len)
{
    const char *topic = pres_ev_type_name(type);
    if (!pres_pub_ready(self) || zmq_send(self->handle, topic, strlen(topic),
                                          ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    //  Once the first frame is queued, the second always follows it.
    if (zmq_send(self->handle, body, len, 0) < 0)
        pres_log_error("zmq_send(event body) failed: %s", zmq_strerror(errno));
    return 0;
}

//  Wait a little for room or for the broker: until `until` (set on the
//  first call from timeout_ms). false once the time is up.
static bool
s_pub_pause(pres_pub_t *self, int64_t *until, int timeout_ms)
{
    if (timeout_ms <= 0)
        return false;
    if (*until == 0)
        *until = pres_mono_ms() + timeout_ms;
    else if (pres_mono_ms() >= *until)
        return false;
    if (!self->connected || self->subscribers <= 0)
        pres_pub_wait(self, (int)(*until - pres_mono_ms()));
    else {
        struct timespec pause = {0, 50 * 1000};
        nanosleep(&pause, NULL);
    }
    return true;
}

int
pres_pub_flush(pres_pub_t *self)
{
    while (self->head < self->count) {
        int i = self->head;
        if (s_pub_try(self, self->staged[i].type,
                      self->stage + self->staged[i].off, self->staged[i].len))
            return self->count - self->head;
        self->head++;
    }
    self->head = self->count = 0;
    self->used = 0;
    return 0;
}

//  Flush the stage, waiting until `until` for it to empty. 0 or -1.
static int
s_pub_flush_wait(pres_pub_t *self, int64_t *until, int timeout_ms)
{
    while (pres_pub_flush(self) > 0)
        if (!s_pub_pause(self, until, timeout_ms))
            return -1;
    return 0;
}

int
pres_pub_post(pres_pub_t *self, pres_event_t *ev, int timeout_ms)
{
    int64_t until = 0;
    if (self->count == PRES_PUB_STAGE_MAX ||
        self->used + PRES_MSG_MAX > sizeof self->stage) {
        if (s_pub_flush_wait(self, &until, timeout_ms))
            goto again;
    }
    //  Nothing is staged for a broker that is not there.
    while (!pres_pub_ready(self))
        if (!s_pub_pause(self, &until, timeout_ms))
            goto again;
    size_t len = s_pub_encode(self, ev, self->stage + self->used, PRES_MSG_MAX);
    if (len == 0)
        return -1;
    self->staged[self->count].off = (uint32_t)self->used;
    self->staged[self->count].len = (uint32_t)len;
    self->staged[self->count].type = ev->type;
    self->count++;
    self->used += len;
    self->seq = ev->seq;
    if (self->count == PRES_PUB_STAGE_MAX)
        pres_pub_flush(self);
    return 0;
again:
    errno = EAGAIN;
    return -1;
}

int
pres_pub_send(pres_pub_t *self, pres_event_t *ev, int timeout_ms)
{
    size_t len = s_pub_encode(self, ev, self->buf, sizeof self->buf);
    if (len == 0)
        return -1;
    int64_t until = 0;
    //  What was staged goes first, or ev would overtake it.
    if (s_pub_flush_wait(self, &until, timeout_ms))
        goto again;
    while (s_pub_try(self, ev->type, self->buf, len))
        //  Broker absent, or XPUB_NODROP said the pipe is full.
        if (!s_pub_pause(self, &until, timeout_ms))
            goto again;
    self->seq = ev->seq;
    return 0;
again:
    errno = EAGAIN;
    return -1;
}

int
pres_pub_staged(const pres_pub_t *self)
{
    return self->count - self->head;
}

const char *
pres_pub_src(const pres_pub_t *self)
{
    return self->src;
}

uint64_t
pres_pub_seq(const pres_pub_t *self)
{
    return self->seq;
}

//  ---------------------------------------------------------------------
//  Change subscriber

zsock_t *
pres_bus_sub_changes(const pres_config_t *cfg, const char *prefix)
{
    zsock_t *sock = zsock_new(ZMQ_SUB);
    if (!sock) {
        pres_log_error("zsock_new(SUB) failed");
        return NULL;
    }
    zsock_set_rcvhwm(sock, cfg->bus_hwm);
    zsock_set_maxmsgsize(sock, PRES_BUS_MAXMSG);
    if (s_connect_list(sock, cfg, cfg->changes_endpoint) != 0) {
        zsock_destroy(&sock);
        return NULL;
    }
    zsock_set_subscribe(sock, prefix);
    return sock;
}

int
pres_bus_recv_message(void *sock, zmq_msg_t *topic, zmq_msg_t *body)
{
    if (zmq_msg_recv(topic, sock, ZMQ_DONTWAIT) < 0)
        return 0;
    //  The parts of a message arrive together: no wait for the rest.
    int frames = 1;
    for (bool more = zmq_msg_more(topic); more; more = zmq_msg_more(body)) {
        if (zmq_msg_recv(body, sock, 0) < 0)
            break;
        frames++;
    }
    return frames;
}

//  ---------------------------------------------------------------------
//  Query client

struct pres_qclient {
    const pres_config_t *cfg;          //  borrowed; outlives the client
    bool admin;                        //  admin endpoint, else queries
    bool pipelined;                    //  DEALER, tagged requests
    zsock_t *sock;                     //  REQ, recreated after a timeout
    char endpoint[PRES_ENDPOINT_MAX];  //  where sock is connected
};

static int
s_qclient_open(pres_qclient_t *self)
{
    //  Under fail-over the leader's endpoint, else the configured one.
    if (!*self->cfg->etcd_endpoints ||
        !pres_leader_endpoint(self->admin, self->endpoint,
                              sizeof self->endpoint, NULL))
        snprintf(self->endpoint, sizeof self->endpoint, "%s",
                 self->admin ? self->cfg->admin_endpoint
                             : self->cfg->query_endpoint);
    self->sock = zsock_new(self->pipelined ? ZMQ_DEALER : ZMQ_REQ);
    if (!self->sock) {
        pres_log_error("zsock_new(%s) failed",
                       self->pipelined ? "DEALER" : "REQ");
        return -1;
    }
    zsock_set_linger(self->sock, 0);
    if (self->pipelined)
        zsock_set_rcvhwm(self->sock, 0);  //  replies are what we asked for
    if (pres_bus_secure(self->sock, self->cfg, self->endpoint, false) != 0 ||
        zsock_connect(self->sock, "%s", self->endpoint) != 0) {
        pres_log_error("zsock_connect(%s) failed", self->endpoint);
        zsock_destroy(&self->sock);
        return -1;
    }
    return 0;
}

static pres_qclient_t *
s_qclient_new(const pres_config_t *cfg, bool admin, bool pipelined)
{
    pres_qclient_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->admin = admin;
    self->pipelined = pipelined;
    if (s_qclient_open(self) != 0)
        pres_qclient_destroy(&self);
    return self;
}

pres_qclient_t *
pres_qclient_new(const pres_config_t *cfg)
{
    return s_qclient_new(cfg, false, false);
}

pres_qclient_t *
pres_qclient_new_admin(const pres_config_t *cfg)
{
    return s_qclient_new(cfg, true, false);
}

pres_qclient_t *
pres_qclient_new_pipelined(const pres_config_t *cfg)
{
    return s_qclient_new(cfg, false, true);
}

void
pres_qclient_destroy(pres_qclient_t **self_p)
{
    assert(self_p);
    if (*self_p) {
        zsock_destroy(&(*self_p)->sock);
        free(*self_p);
        *self_p = NULL;
    }
}

//  A socket to send on: renewed when a new leader was elected (what was
//  in flight on the old one times out at its caller), opened when none is.
//  0, or -1 with errno ECONNREFUSED.
static int
s_qclient_ready(pres_qclient_t *self)
{
    char leader[PRES_ENDPOINT_MAX];
    if (self->sock && *self->cfg->etcd_endpoints &&
        pres_leader_endpoint(self->admin, leader, sizeof leader, NULL) &&
        strcmp(leader, self->endpoint) != 0)
        zsock_destroy(&self->sock);  //  a new leader: follow it
    if (!self->sock && s_qclient_open(self) != 0) {
        errno = ECONNREFUSED;
        return -1;
    }
    return 0;
}

//  Send one request on a fresh or current REQ socket (following a new
//  leader). 0, or -1 with errno set (ECONNREFUSED: no socket; the send
//  failed: the socket is renewed).
static int
s_qclient_send(pres_qclient_t *self, const void *req, size_t len)
{
    if (s_qclient_ready(self) != 0)
        return -1;
    if (zmq_send(zsock_resolve(self->sock), req, len, ZMQ_DONTWAIT) < 0) {
        pres_qclient_abandon(self);
        return -1;
    }
    return 0;
}

void
pres_qclient_abandon(pres_qclient_t *self)
{
    assert(self);
    //  Lazy Pirate: a REQ that lost its reply is stuck; start a new one.
    pres_log_debug("query to %s timed out", self->endpoint);
    zsock_destroy(&self->sock);
    s_qclient_open(self);
    errno = ETIMEDOUT;
}

zframe_t *
pres_qclient_call(pres_qclient_t *self, const void *req, size_t len,
                  int timeout_ms)
{
    if (s_qclient_send(self, req, len) != 0)
        return NULL;  //  errno ECONNREFUSED, or ETIMEDOUT (socket renewed)
    zmq_pollitem_t item = {zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0};
    int64_t until = pres_mono_ms() + timeout_ms;
    while (true) {
        int64_t left = until - pres_mono_ms();
        if (left < 0)
            left = 0;
        int rc = zmq_poll(&item, 1, (long)left);
        if (rc > 0)
            return zframe_recv(self->sock);
        if (rc == 0 || errno != EINTR || left == 0)
            break;
    }
    pres_qclient_abandon(self);
    return NULL;
}

//  Encode q (an account change carries the deadline until_ms). The length,
//  or 0 with errno EINVAL.
static size_t
s_qclient_encode(const pres_query_t *q, int64_t until_ms, char *req, size_t cap)
{
    pres_query_t dated;
    if (q->op == PRES_Q_ACCOUNT && !q->until) {
        //  A change that times out here must not apply later (after a
        //  newer one sent on a new connection): it carries our deadline.
        dated = *q;
        dated.until = (uint64_t)until_ms;
        q = &dated;
    }
    size_t len = pres_query_encode(q, req, cap);
    if (len == 0)
        errno = EINVAL;
    return len;
}

//  A reply map with ok = true is returned; otherwise NULL, errno EPROTO and
//  *error (when error is not NULL) a heap copy of the broker's error.
static zframe_t *
s_qclient_check(zframe_t *reply, char **error)
{
    //  Find `ok` and `error` in the reply map.
    pres_mp_reader_t r;
    pres_mp_reader_init(&r, zframe_data(reply), zframe_size(reply));
    uint32_t n;
    bool ok = false;
    const char *msg = "malformed reply";
    uint32_t msg_len = (uint32_t)strlen(msg);
    if (pres_mp_read_map(&r, &n) == 0) {
        for (uint32_t i = 0; i < n; i++) {
            const char *key;
            uint32_t klen;
            if (pres_mp_read_str(&r, &key, &klen) != 0)
                break;
            if (klen == 2 && !memcmp(key, "ok", 2)) {
                if (pres_mp_read_bool(&r, &ok) != 0)
                    break;
            } else if (klen == 5 && !memcmp(key, "error", 5)) {
                if (pres_mp_read_str(&r, &msg, &msg_len) != 0)
                    break;
            } else if (pres_mp_skip(&r) != 0)
                break;
        }
    }
    if (ok)
        return reply;
    if (error)
        *error = strndup(msg, msg_len);
    zframe_destroy(&reply);
    errno = EPROTO;
    return NULL;
}

int
pres_qclient_send(pres_qclient_t *self, const pres_query_t *q, int timeout_ms)
{
    assert(self && q);
    char req[PRES_MSG_MAX];
    size_t len =
        s_qclient_encode(q, pres_now_ms() + timeout_ms, req, sizeof req);
    return len ? s_qclient_send(self, req, len) : -1;
}

void *
pres_qclient_handle(pres_qclient_t *self)
{
    assert(self);
    return self->sock ? zsock_resolve(self->sock) : NULL;
}

zframe_t *
pres_qclient_recv(pres_qclient_t *self, char **error)
{
    assert(self);
    if (error)
        *error = NULL;
    zframe_t *reply = self->sock ? zframe_recv_nowait(self->sock) : NULL;
    if (!reply) {
        errno = EAGAIN;
        return NULL;
    }
    return s_qclient_check(reply, error);
}

zframe_t *
pres_qclient_query(pres_qclient_t *self, const pres_query_t *q, int timeout_ms,
                   char **error)
{
    char req[PRES_MSG_MAX];
    if (error)
        *error = NULL;
    size_t len =
        s_qclient_encode(q, pres_now_ms() + timeout_ms, req, sizeof req);
    if (len == 0)
        return NULL;
    zframe_t *reply = pres_qclient_call(self, req, len, timeout_ms);
    return reply ? s_qclient_check(reply, error) : NULL;
}

//  ---- pipelined: [tag][empty][request] out, [tag][empty][reply] back
//  (the broker returns a request's envelope, every frame up to the empty
//  delimiter, with its answer).

int
pres_qclient_post(pres_qclient_t *self, const pres_query_t *q, uint64_t tag,
                  int timeout_ms)
{
    assert(self && self->pipelined && q);
    char req[PRES_MSG_MAX];
    size_t len =
        s_qclient_encode(q, pres_now_ms() + timeout_ms, req, sizeof req);
    if (len == 0 || s_qclient_ready(self) != 0)
        return -1;
    //  DONTWAIT: EAGAIN while no broker is connected or the pipe is full.
    void *sock = zsock_resolve(self->sock);
    if (zmq_send(sock, &tag, sizeof tag, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    //  The first frame is queued: the rest goes at once (atomic message).
    if (zmq_send(sock, "", 0, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, req, len, 0) < 0)
        return -1;
    return 0;
}

zframe_t *
pres_qclient_take(pres_qclient_t *self, uint64_t *tag, char **error)
{
    assert(self && self->pipelined && tag);
    if (error)
        *error = NULL;
    void *sock = self->sock ? zsock_resolve(self->sock) : NULL;
    while (sock) {
        //  Up to three parts; a message of another shape is dropped whole.
        zmq_msg_t part[3];
        int n = 0;
        bool more = true;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, sock, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&m);
                for (int i = 0; i < n && i < 3; i++)
                    zmq_msg_close(&part[i]);
                errno = EAGAIN;
                return NULL;
            }
            more = zmq_msg_more(&m);
            if (n < 3)
                part[n] = m;
            else
                zmq_msg_close(&m);
            n++;
        }
        bool ok = n == 3 && zmq_msg_size(&part[0]) == sizeof *tag &&
                  zmq_msg_size(&part[1]) == 0;
        zframe_t *reply = NULL;
        if (ok) {
            memcpy(tag, zmq_msg_data(&part[0]), sizeof *tag);
            reply = zframe_new(zmq_msg_data(&part[2]), zmq_msg_size(&part[2]));
        }
        for (int i = 0; i < n && i < 3; i++)
            zmq_msg_close(&part[i]);
        if (reply)
            return s_qclient_check(reply, error);  //  EPROTO keeps *tag
        if (!ok)
            pres_log_warn("query reply without our envelope: dropped");
    }
    errno = EAGAIN;
    return NULL;
}

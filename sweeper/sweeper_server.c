/*  sweeper_server: sockets and the single-threaded loop of the sweeper.
    One zmq_poll on the notices SUB (and, until ready, the query client);
    each turn reads at most S_DRAIN_MAX notices and sends their expires,
    so the work follows the sessions that come due, not the live ones. */
#include "sweeper_server.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "pres_bus.h"
#include "pres_log.h"
#include "pres_mp.h"
#include "pres_msg.h"
#include "sweeper_due.h"

#define S_SUMMARY_MS    60000  //  period of the summary line
#define S_STATS_MS      1000   //  wait for the readiness `stats` reply
#define S_ASK_MIN_MS    50     //  first pause before asking again
#define S_ASK_MAX_MS    1000   //  longest pause between two asks
#define S_HOLD_MIN_MS   10     //  first pause before re-trying a held send
#define S_HOLD_MAX_MS   100    //  longest pause while the broker is away
#define S_DRAIN_MAX     10000  //  notices read per loop turn
#define S_TRIM_QUIET_MS 2000   //  quiet before giving burst memory back
#define S_BAD_LOG_MS    10000  //  at most one line per 10 s on bad frames

struct sweeper_server {
    pres_config_t cfg;   //  our copy (the sockets borrow it)
    zsock_t *sub;        //  due notices ("deadline." only)
    void *sub_handle;    //  zsock_resolve(sub)
    pres_qclient_t *qc;  //  the readiness `stats`; NULL once ready
    pres_pub_t *pub;     //  expire events
    sweeper_server_stats_t st;
    pres_ratelimit_t bad_rl;  //  log lines on bad frames
    bool ready;               //  "ready:" logged
    bool asking;              //  a `stats` is in flight
    int64_t asked_at;         //  mono ms it was sent
    int64_t ask_at;           //  mono ms of the next ask
    int ask_backoff;          //  ms
    bool held;                //  `expire` could not go: retried first
    pres_event_t held_ev;     //  that expire
    int64_t send_at;          //  mono ms of the next try of held_ev
    int hold_backoff;         //  ms
    bool holding;             //  "holding" logged; "attached again" due
    int64_t summary_at;       //  mono ms of the next summary line
    int64_t drained_at;       //  mono ms of the last notices read
    bool trimmed;             //  heap trimmed since drained_at
};

sweeper_server_t *
sweeper_server_new(const pres_config_t *cfg)
{
    assert(cfg);
    sweeper_server_t *self = calloc(1, sizeof(*self));
    if (!self) {
        pres_log_error("calloc() of sweeper_server failed");
        return NULL;
    }
    self->cfg = *cfg;
    char src[PRES_ID_MAX + 1];
    pres_src_id(src, sizeof(src), "sweeper", -1);
    //  Changes (`presence.*`) are filtered at the broker's XPUB: at 100k
    //  users their stream is most of the bus, and we need none of it.
    self->sub = pres_bus_sub_changes(&self->cfg, PRES_DEADLINE_PREFIX);
    self->qc = pres_qclient_new(&self->cfg);
    self->pub = pres_pub_new(&self->cfg, src);
    if (!self->sub || !self->qc || !self->pub) {
        sweeper_server_destroy(&self);
        return NULL;
    }
    self->sub_handle = zsock_resolve(self->sub);
    self->ask_backoff = S_ASK_MIN_MS;
    self->hold_backoff = S_HOLD_MIN_MS;
    int64_t now = pres_mono_ms();
    self->ask_at = now;
    self->summary_at = now + S_SUMMARY_MS;
    pres_log_info("sweeper %s: notices %s, queries %s, events %s", src,
                  self->cfg.changes_endpoint, self->cfg.query_endpoint,
                  self->cfg.events_endpoint);
    return self;
}

void
sweeper_server_destroy(sweeper_server_t **self_p)
{
    assert(self_p);
    sweeper_server_t *self = *self_p;
    if (!self)
        return;
    pres_pub_destroy(&self->pub);
    pres_qclient_destroy(&self->qc);
    zsock_destroy(&self->sub);
    free(self);
    *self_p = NULL;
}

bool
sweeper_server_ready(const sweeper_server_t *self)
{
    assert(self);
    return self->ready;
}

void
sweeper_server_stats(const sweeper_server_t *self,
                     sweeper_server_stats_t *stats)
{
    assert(self && stats);
    *stats = self->st;
}

static void
s_summary(const sweeper_server_t *self)
{
    pres_log_info("notices %" PRIu64 ", expires sent %" PRIu64
                  ", ignored %" PRIu64 ", bad frames %" PRIu64 "%s",
                  self->st.notices, self->st.expires, self->st.ignored,
                  self->st.bad, self->held ? " (one expire held)" : "");
}

//  ---------------------------------------------------------------------
//  Readiness: one `stats` answered, asked without blocking the loop (it
//  serves notices meanwhile). Only asked once the broker takes our
//  events, so "ready:" means both directions work.

//  The pause to wait now; the next one doubles, up to max.
static int
s_backoff(int *pause, int max)
{
    int now = *pause;
    *pause = now * 2 > max ? max : now * 2;
    return now;
}

static void
s_ask_later(sweeper_server_t *self, int64_t mono)
{
    self->ask_at = mono + s_backoff(&self->ask_backoff, S_ASK_MAX_MS);
}

static void
s_ready_step(sweeper_server_t *self, int64_t mono)
{
    if (self->ready)
        return;
    if (self->asking) {
        if (mono - self->asked_at < S_STATS_MS)
            return;
        //  Late: the broker is away or busy. Lazy Pirate: a fresh socket.
        pres_qclient_abandon(self->qc);
        self->asking = false;
        s_ask_later(self, mono);
        return;
    }
    if (mono < self->ask_at)
        return;
    if (!pres_pub_ready(self->pub)) {
        s_ask_later(self, mono);
        return;
    }
    pres_query_t q;
    memset(&q, 0, sizeof(q));
    q.op = PRES_Q_STATS;
    if (pres_qclient_send(self->qc, &q, S_STATS_MS) != 0) {
        s_ask_later(self, mono);
        return;
    }
    self->asking = true;
    self->asked_at = mono;
}

static void
s_ready_take(sweeper_server_t *self)
{
    char *error = NULL;
    zframe_t *reply = pres_qclient_recv(self->qc, &error);
    if (!reply && errno == EAGAIN)
        return;  //  not whole yet
    self->asking = false;
    if (!reply) {
        pres_log_debug("stats refused: %s", error ? error : "?");
        free(error);
        s_ask_later(self, pres_mono_ms());
        return;
    }
    uint64_t seq = 0;
    pres_mp_find_uint(zframe_data(reply), zframe_size(reply), "seq", &seq);
    zframe_destroy(&reply);
    self->ready = true;
    //  Nothing more to ask: the socket would only keep reconnecting.
    pres_qclient_destroy(&self->qc);
    pres_log_info("ready: broker answered (seq %" PRIu64
                  ") and takes our events; expiring due sessions",
                  seq);
}

//  ---------------------------------------------------------------------
//  Expires.

//  Send ev now, or hold it: broker absent (nothing is sent into the
//  void) or bus saturated. A held expire is tried again first and the
//  notices wait in the SUB meanwhile. 0 if sent, -1 if held.
static int
s_send(sweeper_server_t *self, const pres_event_t *ev)
{
    if (!pres_pub_ready(self->pub)) {
        if (!self->holding)
            pres_log_warn("broker not attached to %s; holding due expires",
                          self->cfg.events_endpoint);
        self->holding = true;
    } else {
        pres_event_t out = *ev;
        out.at = 0;  //  stamped at the send that succeeds
        if (pres_pub_send(self->pub, &out, 0) == 0) {
            self->st.expires++;
            self->held = false;
            self->hold_backoff = S_HOLD_MIN_MS;
            if (self->holding)
                pres_log_info("broker attached again; sending due expires");
            self->holding = false;
            pres_log_debug("expire %s/%s deadline %" PRIu64 " (late %" PRId64
                           " ms)",
                           out.user, out.session, out.deadline,
                           pres_now_ms() - (int64_t)out.deadline);
            return 0;
        }
    }
    if (&self->held_ev != ev)
        self->held_ev = *ev;
    self->held = true;
    self->send_at =
        pres_mono_ms() + s_backoff(&self->hold_backoff, S_HOLD_MAX_MS);
    return -1;
}

static void
s_notice(sweeper_server_t *self, zmq_msg_t *topic, zmq_msg_t *body)
{
    pres_event_t ev;
    const char *why = "";
    size_t tlen = zmq_msg_size(topic);
    switch (sweeper_due_map(zmq_msg_data(topic), tlen, zmq_msg_data(body),
                            zmq_msg_size(body), &ev, &why)) {
    case SWEEPER_DUE_EXPIRE:
        self->st.notices++;
        s_send(self, &ev);
        break;
    case SWEEPER_DUE_IGNORED:
        self->st.notices++;
        self->st.ignored++;
        break;
    case SWEEPER_DUE_BAD:
        self->st.bad++;
        pres_log_limited(&self->bad_rl, S_BAD_LOG_MS,
                         "notices: refused a frame on topic '%.*s': %s",
                         (int)(tlen < 80 ? tlen : 80),
                         (const char *)zmq_msg_data(topic), why);
        break;
    }
}

//  Read up to S_DRAIN_MAX messages without blocking; stop when an expire
//  is held (the rest wait in the SUB).
static void
s_drain(sweeper_server_t *self)
{
    for (int i = 0; i < S_DRAIN_MAX && !self->held; i++) {
        zmq_msg_t topic, body;
        zmq_msg_init(&topic);
        zmq_msg_init(&body);
        int frames = pres_bus_recv_message(self->sub_handle, &topic, &body);
        if (frames == 2)
            s_notice(self, &topic, &body);
        else if (frames > 0) {
            self->st.bad++;
            pres_log_limited(&self->bad_rl, S_BAD_LOG_MS,
                             "notices: refused a message that is not two "
                             "frames");
        }
        zmq_msg_close(&body);
        zmq_msg_close(&topic);
        if (frames == 0)
            return;  //  drained
    }
}

//  How long zmq_poll may sleep: until the held expire's next try, the
//  readiness ask or its timeout, or the summary; at most 1 s.
static long
s_poll_ms(const sweeper_server_t *self, int64_t mono)
{
    int64_t wait = 1000;
    if (self->held && self->send_at - mono < wait)
        wait = self->send_at - mono;
    if (!self->ready) {
        int64_t at = self->asking ? self->asked_at + S_STATS_MS : self->ask_at;
        if (at - mono < wait)
            wait = at - mono;
    }
    if (self->summary_at - mono < wait)
        wait = self->summary_at - mono;
    return wait < 0 ? 0 : (long)wait;
}

int
sweeper_server_run(sweeper_server_t *self)
{
    assert(self);
    while (!zsys_interrupted) {
        int64_t mono = pres_mono_ms();
        s_ready_step(self, mono);
        if (self->held && mono >= self->send_at)
            s_send(self, &self->held_ev);
        //  With an expire held, the notices wait in the SUB: sleep until
        //  its next try instead of waking for them.
        zmq_pollitem_t items[2] = {
            {self->sub_handle, 0, self->held ? 0 : ZMQ_POLLIN, 0},
            {self->asking ? pres_qclient_handle(self->qc) : NULL, 0, ZMQ_POLLIN,
             0}};
        int rc =
            zmq_poll(items, items[1].socket ? 2 : 1, s_poll_ms(self, mono));
        if (rc < 0 && errno != EINTR) {
            pres_log_error("zmq_poll() failed: %s", zmq_strerror(errno));
            return -1;
        }
        if (rc > 0 && items[1].socket && (items[1].revents & ZMQ_POLLIN))
            s_ready_take(self);
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN) && !self->held) {
            s_drain(self);
            self->drained_at = pres_mono_ms();
            self->trimmed = false;
        }
        mono = pres_mono_ms();
        if (rc == 0 && !self->trimmed &&
            mono - self->drained_at >= S_TRIM_QUIET_MS) {
            //  After a burst of notices (a mass expiry) glibc keeps the
            //  freed buffers of the ZeroMQ I/O thread's arena: give them
            //  back once quiet.
            malloc_trim(0);
            self->trimmed = true;
        }
        if (mono >= self->summary_at) {
            s_summary(self);
            self->summary_at = mono + S_SUMMARY_MS;
        }
    }
    s_summary(self);
    return 0;
}

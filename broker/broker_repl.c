/*  broker_repl: batch shipping between the leader and one standby (see
    broker_repl.h). The leader keeps the batch it is building in one
    buffer of [u32 len][topic][u32 len][body] records and sends it after
    the commit; the standby replays it through broker_state. */
#include "broker_repl.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pres_bus.h"
#include "pres_be64.h"
#include "pres_grow.h"
#include "pres_log.h"

#define S_HDR      32
#define S_SNAP_MAX ((size_t)1 << 31)  //  largest snapshot sent in one frame
#define S_PING_MS  500

enum {
    S_SNAP = 'S',    //  leader: a snapshot of its LMDB follows
    S_BATCH = 'B',   //  leader: events of one batch
    S_ACCT = 'A',    //  leader: one account command
    S_PING = 'P',    //  leader: alive (no batch)
    S_RESYNC = 'R',  //  leader: you were detached; say hello again
    S_HELLO = 'H',   //  standby: send me a snapshot
    S_ACK = 'K',     //  standby: batch n applied and committed
};

struct broker_repl {
    const pres_config_t *cfg;
    bool leader;
    zsock_t *sock;   //  ROUTER (leader) or DEALER (standby)
    int64_t term;    //  leader: our term; standby: the leader's
    uint64_t batch;  //  leader: last batch sent; standby: last applied
    //  Leader
    char kind;     //  S_BATCH or S_ACCT for the batch being built
    uint8_t *buf;  //  the batch being built
    size_t len, cap;
    zframe_t *standby;   //  routing id of the attached standby, or NULL
    uint64_t acked;      //  last batch it acknowledged
    uint64_t acked_seq;  //  seq after that batch
    int64_t next_ping;   //  monotonic ms
    uint8_t *held;       //  held outbox records, each [u64 batch]
                         //  [i64 since][u32 tlen][topic][u32 blen][body]
    size_t held_len, held_cap;
    size_t held_off;  //  first record not yet published
    //  Standby
    bool synced;          //  snapshot loaded and no gap since
    uint64_t leader_seq;  //  seq after the last batch the leader sent
    char snap_path[PRES_PATH_MAX + 32];
};

static size_t
s_rd32(const uint8_t *p)
{
    return (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
}

static void
s_be32(uint8_t *p, size_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static int
s_grow(broker_repl_t *self, size_t more)
{
    if (pres_grow((void **)&self->buf, &self->cap, 1, self->len + more,
                  65536)) {
        pres_log_error("realloc() failed for a replication batch");
        return -1;
    }
    return 0;
}

static broker_repl_t *
s_new(const pres_config_t *cfg, bool leader, int type)
{
    broker_repl_t *self = calloc(1, sizeof *self);
    if (!self) {
        pres_log_error("calloc() failed for replication");
        return NULL;
    }
    self->cfg = cfg;
    self->leader = leader;
    self->kind = S_BATCH;
    snprintf(self->snap_path, sizeof self->snap_path, "%s/repl-snapshot.mdb",
             cfg->data_dir);
    self->sock = zsock_new(type);
    if (!self->sock) {
        pres_log_error("zsock_new() failed for replication");
        free(self);
        return NULL;
    }
    zsock_set_linger(self->sock, 0);
    zsock_set_sndhwm(self->sock, 0);
    zsock_set_rcvhwm(self->sock, 0);
    zsock_set_rcvtimeo(self->sock, 0);
    return self;
}

broker_repl_t *
broker_repl_leader_new(const pres_config_t *cfg, int64_t term)
{
    broker_repl_t *self = s_new(cfg, true, ZMQ_ROUTER);
    if (!self)
        return NULL;
    self->term = term;
    zsock_set_maxmsgsize(self->sock, 64);  //  hellos and acks only
    if (pres_bus_secure(self->sock, cfg, cfg->repl_endpoint, true) ||
        zsock_bind(self->sock, "%s", cfg->repl_endpoint) < 0) {
        pres_log_error("zsock_bind(%s) failed: %s", cfg->repl_endpoint,
                       zmq_strerror(zmq_errno()));
        broker_repl_destroy(&self);
        return NULL;
    }
    self->next_ping = pres_mono_ms() + S_PING_MS;
    return self;
}

broker_repl_t *
broker_repl_standby_new(const pres_config_t *cfg, const char *leader_repl)
{
    broker_repl_t *self = s_new(cfg, false, ZMQ_DEALER);
    if (!self)
        return NULL;
    if (pres_bus_secure(self->sock, cfg, leader_repl, false) ||
        zsock_connect(self->sock, "%s", leader_repl) < 0) {
        pres_log_error("zsock_connect(%s) failed", leader_repl);
        broker_repl_destroy(&self);
        return NULL;
    }
    uint8_t hello = S_HELLO;
    zmq_send(zsock_resolve(self->sock), &hello, 1, ZMQ_DONTWAIT);
    return self;
}

void
broker_repl_destroy(broker_repl_t **self_p)
{
    assert(self_p);
    broker_repl_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy(&self->sock);
    zframe_destroy(&self->standby);
    free(self->buf);
    free(self->held);
    free(self);
    *self_p = NULL;
}

void *
broker_repl_socket(broker_repl_t *self)
{
    return zsock_resolve(self->sock);
}

bool
broker_repl_attached(const broker_repl_t *self)
{
    return self->standby != NULL;
}

uint64_t
broker_repl_lag(const broker_repl_t *self, const broker_state_t *state)
{
    uint64_t seq = broker_state_meta(state)->seq;
    if (self->leader)
        return self->standby && seq > self->acked_seq ? seq - self->acked_seq
                                                      : 0;
    return self->leader_seq > seq ? self->leader_seq - seq : 0;
}

//  ---- leader

int
broker_repl_add_event(broker_repl_t *self, const void *topic, size_t tlen,
                      const void *body, size_t blen)
{
    if (!self->standby)
        return 0;  //  nobody to send it to
    if (s_grow(self, 8 + tlen + blen))
        return -1;
    uint8_t *p = self->buf + self->len;
    s_be32(p, tlen);
    memcpy(p + 4, topic, tlen);
    p += 4 + tlen;
    s_be32(p, blen);
    memcpy(p + 4, body, blen);
    self->len += 8 + tlen + blen;
    return 0;
}

//  Append a u16 length and the bytes of text (may be NULL: empty).
static void
s_put_text(broker_repl_t *self, const char *text)
{
    size_t n = text ? strlen(text) : 0;
    uint8_t *p = self->buf + self->len;
    p[0] = (uint8_t)(n >> 8);
    p[1] = (uint8_t)n;
    if (n)
        memcpy(p + 2, text, n);
    self->len += 2 + n;
}

int
broker_repl_add_account(broker_repl_t *self, const char *user, int status,
                        const char *reason, const char *by)
{
    self->kind = S_ACCT;
    self->len = 0;
    if (!self->standby)
        return 0;
    size_t need = 1 + 6 + strlen(user) + (reason ? strlen(reason) : 0) +
                  (by ? strlen(by) : 0);
    if (need > 65535 || s_grow(self, need))
        return -1;
    self->buf[self->len++] = (uint8_t)status;
    s_put_text(self, user);
    s_put_text(self, reason);
    s_put_text(self, by);
    return 0;
}

//  Send [kind, header, payload] to the attached standby.
static int
s_send(broker_repl_t *self, char kind, uint64_t batch, uint64_t now,
       uint64_t seq, const void *payload, size_t len)
{
    void *sock = zsock_resolve(self->sock);
    uint8_t hdr[S_HDR];
    pres_be64_put(hdr, (uint64_t)self->term);
    pres_be64_put(hdr + 8, batch);
    pres_be64_put(hdr + 16, now);
    pres_be64_put(hdr + 24, seq);
    zframe_t *id = zframe_dup(self->standby);
    if (zframe_send(&id, self->sock, ZFRAME_MORE) ||
        zmq_send(sock, &kind, 1, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, hdr, S_HDR, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, payload, len, 0) < 0) {
        pres_log_warn("replication send failed: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static void
s_detach(broker_repl_t *self, const char *why)
{
    if (!self->standby)
        return;
    pres_log_warn("standby detached: %s", why);
    s_send(self, S_RESYNC, self->batch, 0, 0, "", 0);
    zframe_destroy(&self->standby);
}

//  A standby said hello: flush everything, copy LMDB and send it.
static int
s_snapshot(broker_repl_t *self, broker_state_t *state, zframe_t *id)
{
    zframe_destroy(&self->standby);
    if (broker_state_flush_all(state) ||
        broker_store_copy(broker_state_store(state), self->snap_path))
        return -1;
    int fd = open(self->snap_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || (size_t)st.st_size > S_SNAP_MAX) {
        pres_log_error("snapshot %s unusable: %s", self->snap_path,
                       strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *data = malloc(size ? size : 1);
    ssize_t got = data ? read(fd, data, size) : -1;
    close(fd);
    unlink(self->snap_path);
    if (got < 0 || (size_t)got != size) {
        pres_log_error("read(snapshot) failed");
        free(data);
        return -1;
    }
    self->standby = id;
    uint64_t seq = broker_state_meta(state)->seq;
    int rc = s_send(self, S_SNAP, self->batch, 0, seq, data, size);
    free(data);
    self->acked = self->batch;
    self->acked_seq = seq;
    pres_log_info("standby attached: snapshot of %zu bytes at seq %" PRIu64,
                  size, seq);
    (void)rc;  //  a failed send shows as a missing ack: the wait detaches
    return 0;
}

//  Read one standby message. Returns 1 when nothing was waiting, else 0,
//  or -1 when a snapshot failed.
static int
s_serve_one(broker_repl_t *self, broker_state_t *state)
{
    zmsg_t *msg = zmsg_recv(self->sock);
    if (!msg)
        return 1;
    zframe_t *id = zmsg_pop(msg);
    zframe_t *body = zmsg_pop(msg);
    int rc = 0;
    if (id && body && zframe_size(body) >= 1) {
        const uint8_t *b = zframe_data(body);
        if (b[0] == S_HELLO) {
            rc = s_snapshot(self, state, id);
            id = NULL;  //  taken (or dropped) by s_snapshot
        } else if (b[0] == S_ACK && zframe_size(body) == 17 && self->standby &&
                   zframe_eq(id, self->standby)) {
            uint64_t batch = pres_be64_get(b + 1);
            if (batch > self->acked) {
                self->acked = batch;
                self->acked_seq = pres_be64_get(b + 9);
            }
        }
    }
    zframe_destroy(&id);
    zframe_destroy(&body);
    zmsg_destroy(&msg);
    return rc;
}

int
broker_repl_leader_serve(broker_repl_t *self, broker_state_t *state)
{
    for (int i = 0; i < 64; i++) {
        int rc = s_serve_one(self, state);
        if (rc)
            return rc < 0 ? -1 : 0;
    }
    int64_t now = pres_mono_ms();
    if (self->standby && now >= self->next_ping) {
        s_send(self, S_PING, self->batch, 0, broker_state_meta(state)->seq, "",
               0);
        self->next_ping = now + S_PING_MS;
    }
    return 0;
}

int
broker_repl_leader_commit(broker_repl_t *self, broker_state_t *state,
                          uint64_t now_ms, bool wait)
{
    char kind = self->kind;
    self->kind = S_BATCH;
    if (!self->standby) {
        self->len = 0;
        return 0;
    }
    uint64_t seq = broker_state_meta(state)->seq;
    uint64_t batch = ++self->batch;
    int rc = s_send(self, kind, batch, now_ms, seq, self->buf, self->len);
    self->len = 0;
    if (rc) {
        s_detach(self, "send failed");
        return 0;
    }
    self->next_ping = pres_mono_ms() + S_PING_MS;
    if (!wait)
        return 0;
    int64_t deadline = pres_mono_ms() + self->cfg->bus_timeout_ms;
    zmq_pollitem_t item = {zsock_resolve(self->sock), 0, ZMQ_POLLIN, 0};
    while (self->standby && self->acked < batch) {
        int64_t left = deadline - pres_mono_ms();
        if (left <= 0) {
            s_detach(self, "no acknowledgement within bus_timeout_ms");
            break;
        }
        if (zmq_poll(&item, 1, (long)left) < 0 && zmq_errno() != EINTR)
            break;
        if (s_serve_one(self, state) < 0)
            return -1;
    }
    return 0;
}

int
broker_repl_hold(broker_repl_t *self, broker_state_t *state)
{
    size_t n = broker_state_outbox_count(state);
    int64_t now = pres_mono_ms();
    for (size_t i = 0; i < n; i++) {
        const char *topic;
        const void *body;
        size_t tlen, blen;
        broker_state_outbox_get(state, i, &topic, &tlen, &body, &blen);
        size_t need = self->held_len + 24 + tlen + blen;
        if (pres_grow((void **)&self->held, &self->held_cap, 1, need, 65536)) {
            pres_log_error("realloc() failed holding changes");
            return -1;
        }
        uint8_t *p = self->held + self->held_len;
        pres_be64_put(p, self->batch);
        pres_be64_put(p + 8, (uint64_t)now);
        s_be32(p + 16, tlen);
        memcpy(p + 20, topic, tlen);
        s_be32(p + 20 + tlen, blen);
        memcpy(p + 24 + tlen, body, blen);
        self->held_len = need;
    }
    broker_state_outbox_clear(state);
    return 0;
}

int64_t
broker_repl_hold_deadline(const broker_repl_t *self)
{
    if (self->held_off >= self->held_len)
        return 0;
    return (int64_t)pres_be64_get(self->held + self->held_off + 8) +
           self->cfg->bus_timeout_ms;
}

void
broker_repl_release(broker_repl_t *self, broker_repl_publish_fn *publish,
                    void *arg)
{
    int64_t deadline = broker_repl_hold_deadline(self);
    if (deadline && pres_mono_ms() >= deadline)
        s_detach(self, "no acknowledgement within bus_timeout_ms");
    while (self->held_off < self->held_len) {
        const uint8_t *p = self->held + self->held_off;
        if (self->standby && pres_be64_get(p) > self->acked)
            break;
        size_t tlen = s_rd32(p + 16);
        size_t blen = s_rd32(p + 20 + tlen);
        publish(p + 20, tlen, p + 24 + tlen, blen, arg);
        self->held_off += 24 + tlen + blen;
    }
    if (self->held_off == self->held_len)
        self->held_off = self->held_len = 0;
}

//  ---- standby

const char *
broker_repl_snapshot_path(const broker_repl_t *self)
{
    return self->snap_path;
}

bool
broker_repl_standby_synced(const broker_repl_t *self)
{
    return self->synced;
}

static void
s_ack(broker_repl_t *self, uint64_t batch, uint64_t seq)
{
    uint8_t ack[17];
    ack[0] = S_ACK;
    pres_be64_put(ack + 1, batch);
    pres_be64_put(ack + 9, seq);
    zmq_send(zsock_resolve(self->sock), ack, sizeof ack, ZMQ_DONTWAIT);
}

static void
s_hello(broker_repl_t *self, const char *why)
{
    if (self->synced)
        pres_log_warn("replication: %s; asking the leader for a snapshot", why);
    self->synced = false;
    uint8_t hello = S_HELLO;
    zmq_send(zsock_resolve(self->sock), &hello, 1, ZMQ_DONTWAIT);
}

static int
s_apply_events(broker_state_t *state, const uint8_t *p, size_t len)
{
    size_t off = 0;
    pres_event_t ev;
    while (off + 8 <= len) {
        size_t tlen = s_rd32(p + off);
        if (off + 4 + tlen + 4 > len)
            return 1;
        const uint8_t *topic = p + off + 4;
        const uint8_t *q = topic + tlen;
        size_t blen = s_rd32(q);
        if (off + 8 + tlen + blen > len)
            return 1;
        const char *why = "malformed";
        if (pres_event_decode(&ev, (const char *)topic, tlen, q + 4, blen,
                              &why))
            broker_state_malformed(state);
        else if (broker_state_apply(state, &ev) < 0)
            return -1;
        off += 8 + tlen + blen;
    }
    return off == len ? 0 : 1;
}

//  Read a u16-length text at *off into out (cap bytes). 0 or -1.
static int
s_get_text(const uint8_t *p, size_t len, size_t *off, char *out, size_t cap)
{
    if (*off + 2 > len)
        return -1;
    size_t n = (size_t)p[*off] << 8 | p[*off + 1];
    if (*off + 2 + n > len || n >= cap)
        return -1;
    memcpy(out, p + *off + 2, n);
    out[n] = 0;
    *off += 2 + n;
    return 0;
}

static int
s_apply_account(broker_state_t *state, const uint8_t *p, size_t len)
{
    char user[PRES_ID_MAX + 1], reason[PRES_REASON_MAX + 1], by[256];
    size_t off = 1;
    if (len < 1 || p[0] >= PRES_ACCOUNT_COUNT ||
        s_get_text(p, len, &off, user, sizeof user) ||
        s_get_text(p, len, &off, reason, sizeof reason) ||
        s_get_text(p, len, &off, by, sizeof by) || off != len)
        return 1;
    return broker_state_account(state, user, (pres_account_t)p[0],
                                reason[0] ? reason : NULL, by, NULL);
}

//  Write a received snapshot to snap_path.
static int
s_save_snapshot(broker_repl_t *self, const void *data, size_t len)
{
    int fd =
        open(self->snap_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        pres_log_error("open(%s) failed: %s", self->snap_path, strerror(errno));
        return -1;
    }
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, p + done, len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            pres_log_error("write(%s) failed: %s", self->snap_path,
                           strerror(errno));
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    if (fsync(fd)) {
        pres_log_error("fsync(%s) failed: %s", self->snap_path,
                       strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

int
broker_repl_standby_step(broker_repl_t *self, broker_state_t *state)
{
    zmsg_t *msg = zmsg_recv(self->sock);
    if (!msg)
        return BROKER_REPL_IDLE;
    zframe_t *kf = zmsg_first(msg);
    zframe_t *hf = zmsg_next(msg);
    zframe_t *pf = zmsg_next(msg);
    int rc = 0;
    if (!kf || !hf || !pf || zframe_size(kf) != 1 || zframe_size(hf) != S_HDR) {
        pres_log_warn("replication: malformed message from the leader");
        zmsg_destroy(&msg);
        return 0;
    }
    char kind = (char)zframe_data(kf)[0];
    const uint8_t *h = zframe_data(hf);
    int64_t term = (int64_t)pres_be64_get(h);
    uint64_t batch = pres_be64_get(h + 8), now = pres_be64_get(h + 16),
             seq = pres_be64_get(h + 24);
    const uint8_t *payload = zframe_data(pf);
    size_t len = zframe_size(pf);
    switch (kind) {
    case S_SNAP:
        if (s_save_snapshot(self, payload, len) == 0) {
            self->term = term;
            self->batch = batch;
            self->leader_seq = seq;
            rc = BROKER_REPL_SNAPSHOT;
        }
        break;
    case S_PING:
        if (self->synced && (term != self->term || batch != self->batch))
            s_hello(self, "the leader's batches and ours disagree");
        self->leader_seq = seq;
        break;
    case S_RESYNC:
        s_hello(self, "detached by the leader");
        break;
    case S_BATCH:
    case S_ACCT:
        if (!self->synced)
            break;  //  a snapshot is on its way
        if (term != self->term || batch != self->batch + 1) {
            s_hello(self, "gap in the leader's batches");
            break;
        }
        broker_state_begin(state, now);
        int arc = kind == S_BATCH ? s_apply_events(state, payload, len)
                                  : s_apply_account(state, payload, len);
        if (arc < 0 || broker_state_commit(state)) {
            rc = -1;
            break;
        }
        broker_state_outbox_clear(state);
        self->batch = batch;
        self->leader_seq = seq;
        uint64_t mine = broker_state_meta(state)->seq;
        if (arc > 0 || mine != seq) {
            s_hello(self, "a batch did not replay to the leader's seq");
            break;
        }
        s_ack(self, batch, mine);
        break;
    default:
        break;
    }
    zmsg_destroy(&msg);
    return rc;
}

void
broker_repl_standby_loaded(broker_repl_t *self, broker_state_t *state)
{
    self->synced = true;
    s_ack(self, self->batch, broker_state_meta(state)->seq);
    pres_log_info("standby: snapshot loaded at seq %" PRIu64 " (term %" PRId64
                  ")",
                  broker_state_meta(state)->seq, self->term);
}

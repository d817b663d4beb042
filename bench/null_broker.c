/*  The null broker: the bare bus ceiling that presence-broker is measured
    against. It binds the same three sockets, decodes every event with
    pres_event_decode and checks each publisher's seq exactly as the
    broker does, publishes a change per login/logout, and answers `stats`;
    it keeps no state and writes nothing. */
#include "bench.h"
#include "bench_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pres_log.h"
#include "pres_mp.h"
#include "pres_sched.h"

#define NULL_SRC_MAX 256
#define NULL_BATCH   4096

typedef struct {
    char src[PRES_ID_MAX + 1];
    uint64_t last;
} null_src_t;

typedef struct {
    null_src_t srcs[NULL_SRC_MAX];
    int nsrcs;
    uint64_t applied, refused, lost, seq;
    void *pub;  //  raw PUB handle
} null_broker_t;

static void
s_count_seq(null_broker_t *self, const pres_event_t *ev)
{
    null_src_t *s = NULL;
    for (int i = 0; i < self->nsrcs; i++)
        if (strcmp(self->srcs[i].src, ev->src) == 0) {
            s = &self->srcs[i];
            break;
        }
    if (!s) {
        if (self->nsrcs == NULL_SRC_MAX)
            s = &self->srcs[self->nsrcs - 1];  //  overflow: reuse the last
        else
            s = &self->srcs[self->nsrcs++];
        snprintf(s->src, sizeof s->src, "%s", ev->src);
        s->last = 0;
    }
    if (ev->seq > s->last + 1)
        self->lost += ev->seq - s->last - 1;
    s->last = ev->seq;
}

static void
s_publish_change(null_broker_t *self, const pres_event_t *ev)
{
    pres_change_t ch = {0};
    ch.seq = ++self->seq;
    snprintf(ch.user, sizeof ch.user, "%s", ev->user);
    bool in = ev->type == PRES_EV_LOGIN;
    ch.state = in ? PRES_ONLINE : PRES_OFFLINE;
    ch.prev = in ? PRES_OFFLINE : PRES_ONLINE;
    ch.at = (uint64_t)pres_now_ms();
    ch.reason = in ? PRES_RSN_LOGIN : PRES_RSN_LOGOUT;
    ch.sessions = in ? 1 : 0;
    ch.account = PRES_ACC_ACTIVE;
    snprintf(ch.session, sizeof ch.session, "%s", ev->session);
    char topic[PRES_TOPIC_MAX + 1], buf[PRES_MSG_MAX];
    size_t tlen = pres_change_topic(ch.user, topic);
    size_t len = pres_change_encode(&ch, buf, sizeof buf);
    if (len == 0)
        return;
    zmq_send(self->pub, topic, tlen, ZMQ_SNDMORE);
    zmq_send(self->pub, buf, len, 0);
}

//  Drain up to NULL_BATCH events without blocking.
static void
s_drain_events(null_broker_t *self, void *sub)
{
    char topic[PRES_TOPIC_MAX + 1];
    static char body[PRES_MSG_MAX + 1];
    for (int i = 0; i < NULL_BATCH; i++) {
        int tlen = zmq_recv(sub, topic, sizeof topic, ZMQ_DONTWAIT);
        if (tlen < 0)
            return;
        int more = 0;
        size_t sz = sizeof more;
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
        if (!more) {
            self->refused++;
            continue;
        }
        int len = zmq_recv(sub, body, sizeof body, 0);
        //  Swallow any extra frames.
        zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
        while (more) {
            zmq_recv(sub, body, 0, 0);
            zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &sz);
        }
        pres_event_t ev;
        const char *why;
        if (len < 0 || len > (int)sizeof body - 1 || tlen > (int)sizeof topic ||
            pres_event_decode(&ev, topic, (size_t)tlen, body, (size_t)len,
                              &why) != 0) {
            self->refused++;
            continue;
        }
        s_count_seq(self, &ev);
        self->applied++;
        if (ev.type == PRES_EV_LOGIN || ev.type == PRES_EV_LOGOUT)
            s_publish_change(self, &ev);
    }
}

static void
s_answer_query(null_broker_t *self, zsock_t *router)
{
    zmsg_t *msg = zmsg_recv(router);
    if (!msg)
        return;
    zframe_t *id = zmsg_pop(msg);
    zframe_t *body = zmsg_last(msg);
    bool delim = zmsg_size(msg) == 2;
    char out[512];
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, out, sizeof out);
    pres_query_t q;
    const char *why = "bad request";
    if (body &&
        pres_query_decode(&q, zframe_data(body), zframe_size(body), &why) ==
            0 &&
        q.op == PRES_Q_STATS) {
        msgpack_pack_map(&w.pk, 4);
        pres_mp_pack_cstr(&w, "ok");
        msgpack_pack_true(&w.pk);
        pres_mp_pack_kv_uint(&w, "seq", self->seq);
        pres_mp_pack_cstr(&w, "events");
        msgpack_pack_map(&w.pk, 3);
        pres_mp_pack_kv_uint(&w, "applied", self->applied);
        pres_mp_pack_kv_uint(&w, "refused", self->refused);
        pres_mp_pack_kv_uint(&w, "lost", self->lost);
        pres_mp_pack_kv_uint(&w, "sessions", 0);
    } else {
        msgpack_pack_map(&w.pk, 2);
        pres_mp_pack_cstr(&w, "ok");
        msgpack_pack_false(&w.pk);
        pres_mp_pack_kv_str(&w, "error", "null broker answers stats only");
    }
    zmsg_t *rep = zmsg_new();
    zmsg_append(rep, &id);
    if (delim)
        zmsg_addmem(rep, "", 0);
    zmsg_addmem(rep, out, w.len);
    zmsg_send(&rep, router);
    zmsg_destroy(&msg);
}

int
bench_null_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    pres_config_t cfg;
    if (bench_config(&cfg) || pres_config_make_dirs(&cfg))
        return 1;
    //  The broker's scheduling, so that the two are compared alike.
    pres_sched_realtime(cfg.sched_priority);
    static null_broker_t self;
    zsock_t *sub = zsock_new(ZMQ_SUB);
    zsock_t *pub = zsock_new(ZMQ_PUB);
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    if (!sub || !pub || !router)
        return 1;
    zsock_set_rcvhwm(sub, cfg.bus_hwm);
    zsock_set_maxmsgsize(sub, PRES_BUS_MAXMSG);
    zsock_set_subscribe(sub, "");
    zsock_set_sndhwm(pub, cfg.bus_hwm);
    zsock_set_maxmsgsize(router, PRES_BUS_MAXMSG);
    if (zsock_bind(sub, "%s", cfg.events_endpoint) < 0 ||
        zsock_bind(pub, "%s", cfg.changes_endpoint) < 0 ||
        zsock_bind(router, "%s", cfg.query_endpoint) < 0) {
        fprintf(stderr, "null broker: bind failed: %s\n", zmq_strerror(errno));
        return 1;
    }
    self.pub = zsock_resolve(pub);
    void *hsub = zsock_resolve(sub);
    fprintf(stderr, "null broker: ready on %s\n", cfg.events_endpoint);
    while (!zsys_interrupted) {
        zmq_pollitem_t items[] = {{hsub, 0, ZMQ_POLLIN, 0},
                                  {zsock_resolve(router), 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, 200) < 0)
            break;
        if (items[0].revents & ZMQ_POLLIN)
            s_drain_events(&self, hsub);
        if (items[1].revents & ZMQ_POLLIN)
            s_answer_query(&self, router);
    }
    fprintf(stderr, "null broker: applied=%llu lost=%llu refused=%llu\n",
            (unsigned long long)self.applied, (unsigned long long)self.lost,
            (unsigned long long)self.refused);
    zsock_destroy(&router);
    zsock_destroy(&pub);
    zsock_destroy(&sub);
    return 0;
}

/*  itfake: the scripted broker of the client tests (see itfake.h). */
#include "itfake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pres_mp.h"
#include "testutil.h"

struct it_fake {
    zsock_t *router;  //  queries
    zsock_t *pub;     //  changes (XPUB: sees subscriptions)
    zsock_t *sub;     //  events
};

it_fake_t *
it_fake_new(const pres_config_t *cfg)
{
    it_fake_t *self = calloc(1, sizeof *self);
    CHECK(self);
    //  "@": bind, as the broker does (czmq's SUB connects by default).
    char ep[PRES_ENDPOINT_MAX + 1];
    snprintf(ep, sizeof ep, "@%s", cfg->query_endpoint);
    self->router = zsock_new_router(ep);
    snprintf(ep, sizeof ep, "@%s", cfg->changes_endpoint);
    self->pub = zsock_new_xpub(ep);
    snprintf(ep, sizeof ep, "@%s", cfg->events_endpoint);
    self->sub = zsock_new_sub(ep, "");
    CHECK(self->router && self->pub && self->sub);
    return self;
}

void
it_fake_destroy(it_fake_t **self_p)
{
    it_fake_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy(&self->router);
    zsock_destroy(&self->pub);
    zsock_destroy(&self->sub);
    free(self);
    *self_p = NULL;
}

zsock_t *
it_fake_events(it_fake_t *self)
{
    return self->sub;
}

bool
it_fake_wait_subscriber(it_fake_t *self, int timeout_ms)
{
    int64_t end = pres_mono_ms() + timeout_ms;
    while (pres_mono_ms() < end) {
        zsock_set_rcvtimeo(self->pub, (int)(end - pres_mono_ms()));
        zframe_t *f = zframe_recv(self->pub);
        if (!f)
            return false;
        bool joined = zframe_size(f) > 0 && zframe_data(f)[0] == 1;
        zframe_destroy(&f);
        if (joined)
            return true;
    }
    return false;
}

bool
it_fake_wait_subscription(it_fake_t *self, const char *prefix, int timeout_ms)
{
    zsock_set_rcvtimeo(self->pub, timeout_ms);
    zframe_t *f = zframe_recv(self->pub);
    if (!f)
        return false;
    size_t n = zframe_size(f);
    const char *d = (const char *)zframe_data(f);
    bool ok = n == 1 + strlen(prefix) && d[0] == 1 &&
              memcmp(d + 1, prefix, n - 1) == 0;
    if (!ok)
        fprintf(stderr, "itfake: subscription frame '%.*s' (%zu bytes)\n",
                n > 1 ? (int)(n - 1) : 0, n > 1 ? d + 1 : "", n);
    zframe_destroy(&f);
    return ok;
}

zframe_t *
it_fake_request(it_fake_t *self, pres_query_t *q, int timeout_ms)
{
    zsock_set_rcvtimeo(self->router, timeout_ms);
    zmsg_t *m = zmsg_recv(self->router);
    if (!m)
        return NULL;
    CHECK_EQ(zmsg_size(m), 3);  //  identity, REQ's delimiter, body
    zframe_t *id = zmsg_pop(m);
    zframe_t *empty = zmsg_pop(m);
    zframe_t *req = zmsg_pop(m);
    const char *why;
    CHECK_EQ(pres_query_decode(q, zframe_data(req), zframe_size(req), &why), 0);
    zframe_destroy(&empty);
    zframe_destroy(&req);
    zmsg_destroy(&m);
    return id;
}

void
it_fake_reply(it_fake_t *self, zframe_t **id, uint64_t seq, const char *user,
              const char *session, uint64_t deadline)
{
    char buf[1024];
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, sizeof(buf));
    msgpack_pack_map(&w.pk, 3);
    pres_mp_pack_cstr(&w, "ok");
    msgpack_pack_true(&w.pk);
    pres_mp_pack_kv_uint(&w, "seq", seq);
    pres_mp_pack_cstr(&w, "users");
    msgpack_pack_array(&w.pk, user ? 1 : 0);
    if (user) {
        msgpack_pack_map(&w.pk, 6);
        pres_mp_pack_kv_str(&w, "user", user);
        pres_mp_pack_kv_str(&w, "state", "online");
        pres_mp_pack_kv_uint(&w, "last_seen", (uint64_t)pres_now_ms());
        pres_mp_pack_kv_uint(&w, "sessions", 1);
        pres_mp_pack_kv_str(&w, "account", "active");
        pres_mp_pack_cstr(&w, "live");
        msgpack_pack_array(&w.pk, 1);
        msgpack_pack_map(&w.pk, 3);
        pres_mp_pack_kv_str(&w, "session", session);
        pres_mp_pack_kv_str(&w, "state", "online");
        pres_mp_pack_kv_uint(&w, "deadline", deadline);
    }
    CHECK(!w.overflow);
    zmsg_t *m = zmsg_new();
    zmsg_append(m, id);
    zmsg_addmem(m, "", 0);
    zmsg_addmem(m, buf, w.len);
    CHECK_EQ(zmsg_send(&m, self->router), 0);
}

void
it_fake_error(it_fake_t *self, zframe_t **id, const char *error)
{
    char buf[256];
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, sizeof(buf));
    msgpack_pack_map(&w.pk, 2);
    pres_mp_pack_cstr(&w, "ok");
    msgpack_pack_false(&w.pk);
    pres_mp_pack_kv_str(&w, "error", error);
    CHECK(!w.overflow);
    zmsg_t *m = zmsg_new();
    zmsg_append(m, id);
    zmsg_addmem(m, "", 0);
    zmsg_addmem(m, buf, w.len);
    CHECK_EQ(zmsg_send(&m, self->router), 0);
}

void
it_fake_change(it_fake_t *self, const pres_change_t *ch)
{
    char buf[PRES_MSG_MAX], topic[PRES_TOPIC_MAX];
    size_t len = pres_change_encode(ch, buf, sizeof(buf));
    CHECK(len > 0);
    pres_change_topic(ch->user, topic);
    CHECK_EQ(zstr_sendm(self->pub, topic), 0);
    CHECK_EQ(zsock_send(self->pub, "b", buf, len), 0);
}

void
it_fake_notice(it_fake_t *self, const char *user, const char *session,
               uint64_t deadline)
{
    pres_deadline_t dl;
    memset(&dl, 0, sizeof(dl));
    snprintf(dl.user, sizeof(dl.user), "%s", user);
    snprintf(dl.session, sizeof(dl.session), "%s", session);
    dl.deadline = deadline;
    char buf[PRES_MSG_MAX], topic[PRES_TOPIC_MAX];
    size_t len = pres_deadline_encode(&dl, buf, sizeof(buf));
    CHECK(len > 0);
    pres_deadline_topic(user, topic);
    CHECK_EQ(zstr_sendm(self->pub, topic), 0);
    CHECK_EQ(zsock_send(self->pub, "b", buf, len), 0);
}

void
it_fake_raw(it_fake_t *self, int nframes, const void *const *data,
            const size_t *sizes)
{
    void *h = zsock_resolve(self->pub);
    for (int i = 0; i < nframes; i++)
        CHECK(zmq_send(h, data[i], sizes[i],
                       i + 1 < nframes ? ZMQ_SNDMORE : 0) >= 0);
}

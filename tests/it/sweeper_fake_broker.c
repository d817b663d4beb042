/*  it.sweeper_fake_broker: the real sweeper against a scripted broker
    (the test binds the broker's three sockets), to drive exactly the
    cases a real broker makes hard to hit: expire at the snapshot's
    deadline, re-send when nothing answers, a deadline notice moving the
    deadline, a change ending the session, resync on a seq gap, and on a
    broker head behind ours. */
#include <unistd.h>

#include "itutil.h"
#include "pres_mp.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t sweeper;
static pres_config_t cfg;
static zsock_t *router, *pub, *sub;  //  the fake broker's sockets
static uint64_t head_seq;            //  what `stats` answers

//  A snapshot reply with at most one live session (user NULL: none).
static void
s_reply_snapshot(zframe_t *id, uint64_t seq, const char *user,
                 uint64_t deadline)
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
        pres_mp_pack_kv_str(&w, "session", "s1");
        pres_mp_pack_kv_str(&w, "state", "online");
        pres_mp_pack_kv_uint(&w, "deadline", deadline);
    }
    CHECK(!w.overflow);
    zmsg_t *m = zmsg_new();
    zmsg_append(m, &id);
    zmsg_addmem(m, "", 0);
    zmsg_addmem(m, buf, w.len);
    CHECK_EQ(zmsg_send(&m, router), 0);
}

//  Serve queries for up to timeout_ms: `stats` gets {ok, seq: head_seq};
//  returns the identity of the first `snapshot` request (caller replies),
//  or NULL on timeout.
static zframe_t *
s_wait_snapshot(int timeout_ms)
{
    int64_t until = pres_mono_ms() + timeout_ms;
    while (pres_mono_ms() < until) {
        zsock_set_rcvtimeo(router, 50);
        zmsg_t *m = zmsg_recv(router);
        if (!m)
            continue;
        CHECK_EQ(zmsg_size(m), 3);
        zframe_t *id = zmsg_pop(m);
        zframe_t *empty = zmsg_pop(m);
        zframe_t *req = zmsg_pop(m);
        pres_query_t q;
        const char *why;
        CHECK_EQ(
            pres_query_decode(&q, zframe_data(req), zframe_size(req), &why), 0);
        zframe_destroy(&empty);
        zframe_destroy(&req);
        zmsg_destroy(&m);
        if (q.op == PRES_Q_SNAPSHOT)
            return id;
        CHECK_EQ(q.op, PRES_Q_STATS);
        char buf[64];
        pres_mp_writer_t w;
        pres_mp_writer_init(&w, buf, sizeof(buf));
        msgpack_pack_map(&w.pk, 2);
        pres_mp_pack_cstr(&w, "ok");
        msgpack_pack_true(&w.pk);
        pres_mp_pack_kv_uint(&w, "seq", head_seq);
        zmsg_t *r = zmsg_new();
        zmsg_append(r, &id);
        zmsg_addmem(r, "", 0);
        zmsg_addmem(r, buf, w.len);
        CHECK_EQ(zmsg_send(&r, router), 0);
    }
    return NULL;
}

//  Wait for the next expire event (serving queries meanwhile). Returns 0
//  and fills ev (and *at, our receive time), or -1 on timeout.
static int
s_wait_expire(pres_event_t *ev, int64_t *at, int timeout_ms)
{
    int64_t until = pres_mono_ms() + timeout_ms;
    while (pres_mono_ms() < until) {
        zframe_t *snap = s_wait_snapshot(1);
        CHECK(snap == NULL);  //  no resync expected here
        zsock_set_rcvtimeo(sub, 20);
        zmsg_t *m = zmsg_recv(sub);
        if (!m)
            continue;
        *at = pres_now_ms();
        CHECK_EQ(zmsg_size(m), 2);
        char *topic = zmsg_popstr(m);
        zframe_t *body = zmsg_pop(m);
        const char *why;
        CHECK_EQ(pres_event_decode(ev, topic, strlen(topic), zframe_data(body),
                                   zframe_size(body), &why),
                 0);
        CHECK_EQ(ev->type, PRES_EV_EXPIRE);
        CHECK(!strncmp(ev->src, "sweeper-", 8));
        free(topic);
        zframe_destroy(&body);
        zmsg_destroy(&m);
        return 0;
    }
    return -1;
}

static void
s_publish_change(uint64_t seq, const char *user, const char *session,
                 uint64_t deadline, uint32_t sessions, pres_reason_t reason)
{
    pres_change_t ch;
    memset(&ch, 0, sizeof(ch));
    ch.seq = seq;
    snprintf(ch.user, sizeof(ch.user), "%s", user);
    snprintf(ch.session, sizeof(ch.session), "%s", session);
    ch.deadline = deadline;
    ch.sessions = sessions;
    ch.state = sessions ? PRES_ONLINE : PRES_OFFLINE;
    ch.prev = PRES_ONLINE;
    ch.reason = reason;
    ch.at = (uint64_t)pres_now_ms();
    char buf[PRES_MSG_MAX], topic[PRES_TOPIC_MAX];
    size_t len = pres_change_encode(&ch, buf, sizeof(buf));
    CHECK(len > 0);
    pres_change_topic(user, topic);
    CHECK_EQ(zstr_sendm(pub, topic), 0);
    CHECK_EQ(zsock_send(pub, "b", buf, len), 0);
}

static void
s_publish_notice(const char *user, const char *session, uint64_t deadline)
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
    CHECK_EQ(zstr_sendm(pub, topic), 0);
    CHECK_EQ(zsock_send(pub, "b", buf, len), 0);
}

//  The expire came for user/s1 at deadline, no earlier than it and at
//  most 300 ms after.
static void
s_check_expire(const pres_event_t *ev, int64_t at, const char *user,
               uint64_t deadline)
{
    CHECK_STR(ev->user, user);
    CHECK_STR(ev->session, "s1");
    CHECK_EQ(ev->deadline, deadline);
    int64_t late = at - (int64_t)deadline;
    fprintf(stderr, "  expire %s at deadline + %" PRId64 " ms\n", user, late);
    CHECK(late >= 0 && late <= 300);
}

int
main(void)
{
    CHECK(it_env_init(&env, "sweeper-fake") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    //  Bind all three, as the broker does ("@": czmq's SUB connects by
    //  default).
    char ep[PRES_ENDPOINT_MAX + 1];
    snprintf(ep, sizeof(ep), "@%s", cfg.query_endpoint);
    router = zsock_new_router(ep);
    snprintf(ep, sizeof(ep), "@%s", cfg.changes_endpoint);
    pub = zsock_new_pub(ep);
    snprintf(ep, sizeof(ep), "@%s", cfg.events_endpoint);
    sub = zsock_new_sub(ep, "");
    CHECK(router && pub && sub);
    static const char *const argv[] = {"-v", NULL};
    CHECK(it_spawn(&env, "presence-sweeper", argv, NULL, &sweeper) == 0);

    //  1. Snapshot at seq 10 with alice/s1 due in 500 ms: expire on time.
    head_seq = 10;
    zframe_t *id = s_wait_snapshot(5000);
    CHECK(id);
    uint64_t d1 = (uint64_t)pres_now_ms() + 500;
    s_reply_snapshot(id, 10, "alice", d1);
    pres_event_t ev;
    int64_t at, first;
    CHECK_EQ(s_wait_expire(&ev, &at, 2000), 0);
    s_check_expire(&ev, at, "alice", d1);
    first = at;

    //  2. Nobody answers: the same expire again after ~1 s.
    CHECK_EQ(s_wait_expire(&ev, &at, 2000), 0);
    CHECK_STR(ev.user, "alice");
    CHECK_EQ(ev.deadline, d1);
    fprintf(stderr, "  re-sent after %" PRId64 " ms\n", at - first);
    CHECK(at - first >= 900 && at - first <= 1500);

    //  3. A deadline notice moves it: the next expire at the new deadline.
    uint64_t d2 = (uint64_t)pres_now_ms() + 600;
    s_publish_notice("alice", "s1", d2);
    CHECK_EQ(s_wait_expire(&ev, &at, 2000), 0);
    s_check_expire(&ev, at, "alice", d2);

    //  4. The session ends (change 11): no more expires for it.
    s_publish_change(11, "alice", "s1", 0, 0, PRES_RSN_TIMEOUT);
    CHECK_EQ(s_wait_expire(&ev, &at, 1500), -1);

    //  5. A gap (13 after 11): the sweeper asks for a new snapshot.
    s_publish_change(13, "bob", "s1", (uint64_t)pres_now_ms() + 300, 1,
                     PRES_RSN_LOGIN);
    id = s_wait_snapshot(2000);
    CHECK(id);
    uint64_t d3 = (uint64_t)pres_now_ms() + 300;
    head_seq = 13;
    s_reply_snapshot(id, 13, "bob", d3);
    CHECK_EQ(s_wait_expire(&ev, &at, 2000), 0);
    s_check_expire(&ev, at, "bob", d3);
    //  Bob's session ends; then a change queued before the snapshot
    //  would be dropped, and 15 is in order: no resync.
    s_publish_change(14, "bob", "s1", 0, 0, PRES_RSN_TIMEOUT);
    head_seq = 14;

    //  6. The broker's head goes behind ours (its history was lost): the
    //     periodic check (every 2 s) asks for a new snapshot.
    usleep(300 * 1000);
    head_seq = 3;
    id = s_wait_snapshot(5000);
    CHECK(id);
    s_reply_snapshot(id, 3, NULL, 0);

    CHECK_EQ(it_proc_stop(&sweeper, 3000), 0);
    CHECK(it_proc_log_has(&sweeper, "resync: seq gap"));
    CHECK(it_proc_log_has(&sweeper, "resync: broker seq behind ours"));
    CHECK(it_proc_log_has(&sweeper, "resyncs 2"));
    if (getenv("IT_VERBOSE"))
        it_proc_dump_log(&sweeper);
    zsock_destroy(&sub);
    zsock_destroy(&pub);
    zsock_destroy(&router);
    it_env_cleanup(&env);
    printf("it.sweeper_fake_broker: ok\n");
    return 0;
}

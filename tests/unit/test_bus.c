/*  test_bus: the lossless publisher against a plain SUB (the broker's
    socket type): refuses to send with no broker attached, delivers every
    event of a burst with nothing lost, notices the broker leaving; stages
    events and sends them in order (pres_pub_post); and the
    query client's timeout and recovery (Lazy Pirate). */
#include "pres_bus.h"
#include "pres_log.h"
#include "pres_mp.h"
#include "testutil.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static pres_config_t s_cfg;

//  The broker's side: a SUB bound to the events endpoint (rcvhwm 0: no
//  limit), and pub attached to it.
static zsock_t *
s_broker_sub(pres_pub_t *pub, int rcvhwm)
{
    zsock_t *sub = zsock_new(ZMQ_SUB);
    CHECK(sub);
    zsock_set_rcvhwm(sub, rcvhwm);
    CHECK_EQ(zsock_bind(sub, "%s", s_cfg.events_endpoint), 0);
    zsock_set_subscribe(sub, "");
    //  A bound SUB sends its subscription to a new peer only when its own
    //  thread processes commands (any call on it): the broker polls it all
    //  the time; here we must poke it while we wait.
    bool attached = false;
    for (int i = 0; i < 500 && !attached; i++) {
        zmq_pollitem_t item = {zsock_resolve(sub), 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 0);
        attached = pres_pub_wait(pub, 10);
    }
    CHECK(attached);
    return sub;
}

static void
s_test_publisher(void)
{
    pres_pub_t *pub = pres_pub_new(&s_cfg, "test-pub");
    CHECK(pub);
    pres_event_t ev = {.type = PRES_EV_HEARTBEAT};
    strcpy(ev.user, "alice");
    strcpy(ev.session, "s1");

    //  No broker: never "succeeds" into the void (docs/libraries.md section 1).
    CHECK(!pres_pub_ready(pub));
    int64_t t0 = pres_mono_ms();
    CHECK_EQ(pres_pub_send(pub, &ev, 200), -1);
    CHECK_EQ(errno, EAGAIN);
    CHECK(pres_mono_ms() - t0 >= 190);
    CHECK_EQ(pres_pub_seq(pub), 0);

    //  Broker attaches: the subscription tells us.
    zsock_t *sub = s_broker_sub(pub, 0);

    //  A burst: every event arrives, in order, seq without gaps.
    enum { N = 200000 };
    for (int i = 0; i < N; i++) {
        ev.at = 0;
        CHECK_EQ(pres_pub_send(pub, &ev, 5000), 0);
    }
    CHECK_EQ(pres_pub_seq(pub), N);
    uint64_t expect = 1;
    char body[PRES_MSG_MAX];
    void *h = zsock_resolve(sub);
    while (expect <= N) {
        char topic[32];
        int tn = zmq_recv(h, topic, sizeof topic, 0);
        CHECK_EQ(tn, 9);
        int more;
        size_t more_size = sizeof more;
        zmq_getsockopt(h, ZMQ_RCVMORE, &more, &more_size);
        CHECK(more);
        int n = zmq_recv(h, body, sizeof body, 0);
        CHECK(n > 0);
        pres_event_t got;
        const char *why;
        CHECK_EQ(
            pres_event_decode(&got, topic, (size_t)tn, body, (size_t)n, &why),
            0);
        CHECK_STR(got.src, "test-pub");
        CHECK_EQ(got.seq, expect);
        expect++;
    }

    //  Broker leaves: the unsubscription tells us, sends are refused.
    zsock_destroy(&sub);
    int64_t until = pres_mono_ms() + 5000;
    while (pres_pub_ready(pub) && pres_mono_ms() < until)
        zclock_sleep(10);  //  poll interval
    CHECK(!pres_pub_ready(pub));
    CHECK_EQ(pres_pub_send(pub, &ev, 0), -1);
    CHECK_EQ(pres_pub_seq(pub), N);

    //  Invalid events are refused without consuming a seq.
    strcpy(ev.user, "no spaces");
    CHECK_EQ(pres_pub_send(pub, &ev, 0), -1);
    CHECK_EQ(errno, EINVAL);
    pres_pub_destroy(&pub);
    CHECK(pub == NULL);
}

//  Receive one event from sub within timeout_ms: 0, or -1 if none came.
static int
s_recv_event(zsock_t *sub, pres_event_t *got, int timeout_ms)
{
    void *h = zsock_resolve(sub);
    zmq_pollitem_t item = {h, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return -1;
    char topic[32], body[PRES_MSG_MAX];
    int tn = zmq_recv(h, topic, sizeof topic, 0);
    CHECK(tn > 0);
    int n = zmq_recv(h, body, sizeof body, 0);
    CHECK(n > 0);
    const char *why;
    CHECK_EQ(pres_event_decode(got, topic, (size_t)tn, body, (size_t)n, &why),
             0);
    return 0;
}

//  The stage: posted events wait for a flush, a full stage or a send, and
//  go out in seq order, before the send that follows them; a saturated
//  bus refuses a post without consuming a seq, and what was staged still
//  arrives, none lost, none twice.
static void
s_test_stage(void)
{
    pres_config_t cfg = s_cfg;
    cfg.bus_hwm = 2 * PRES_PUB_STAGE_MAX;
    pres_pub_t *pub = pres_pub_new(&cfg, "test-stage");
    CHECK(pub);
    pres_event_t ev = {.type = PRES_EV_HEARTBEAT}, got;
    strcpy(ev.user, "alice");
    strcpy(ev.session, "s1");
    CHECK_EQ(pres_pub_post(pub, &ev, 50), -1);  //  no broker: not staged
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(pres_pub_staged(pub), 0);
    CHECK_EQ(pres_pub_seq(pub), 0);

    zsock_t *sub = s_broker_sub(pub, 2 * PRES_PUB_STAGE_MAX);

    for (int i = 0; i < 5; i++) {
        ev.at = 0;
        CHECK_EQ(pres_pub_post(pub, &ev, 0), 0);
    }
    CHECK_EQ(pres_pub_staged(pub), 5);
    CHECK_EQ(pres_pub_seq(pub), 5);
    CHECK_EQ(s_recv_event(sub, &got, 100), -1);  //  staged, not sent
    pres_event_t out = {.type = PRES_EV_LOGOUT};
    strcpy(out.user, "alice");
    strcpy(out.session, "s1");
    CHECK_EQ(pres_pub_send(pub, &out, 1000), 0);  //  the stage goes first
    CHECK_EQ(pres_pub_staged(pub), 0);
    for (uint64_t seq = 1; seq <= 6; seq++) {
        CHECK_EQ(s_recv_event(sub, &got, 1000), 0);
        CHECK_EQ(got.seq, seq);
        CHECK_EQ(got.type, seq < 6 ? PRES_EV_HEARTBEAT : PRES_EV_LOGOUT);
    }

    //  A full stage sends itself.
    for (int i = 0; i < PRES_PUB_STAGE_MAX; i++) {
        ev.at = 0;
        CHECK_EQ(pres_pub_post(pub, &ev, 0), 0);
    }
    CHECK_EQ(pres_pub_staged(pub), 0);
    for (int i = 0; i < PRES_PUB_STAGE_MAX; i++) {
        CHECK_EQ(s_recv_event(sub, &got, 1000), 0);
        CHECK_EQ(got.seq, (uint64_t)(7 + i));
    }

    //  Nobody reads: posts go on until the bus is full, then are refused.
    uint64_t before = pres_pub_seq(pub);
    int posted = 0;
    for (int i = 0; i < 1000000; i++) {
        ev.at = 0;
        if (pres_pub_post(pub, &ev, 0) != 0)
            break;
        posted++;
    }
    CHECK(posted < 1000000);
    CHECK_EQ(errno, EAGAIN);
    CHECK_EQ(pres_pub_seq(pub), before + (uint64_t)posted);
    CHECK(pres_pub_staged(pub) > 0);
    //  Reading drains the bus; flushing sends the rest: all of it, in order.
    uint64_t expect = before + 1;
    int64_t until = pres_mono_ms() + 5000;
    while (expect <= before + (uint64_t)posted && pres_mono_ms() < until) {
        pres_pub_flush(pub);  //  room comes back as the reader drains
        if (s_recv_event(sub, &got, 10) != 0)
            continue;
        CHECK_EQ(got.seq, expect);
        expect++;
    }
    CHECK_EQ(expect, before + (uint64_t)posted + 1);
    CHECK_EQ(pres_pub_staged(pub), 0);
    CHECK_EQ(s_recv_event(sub, &got, 50), -1);  //  nothing twice
    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
}

//  A stand-in broker ROUTER: answers {ok:true, seq:N} to "stats" and
//  {ok:false, error:"unknown op"} to anything else.
static void
s_fake_broker(zsock_t *pipe, void *args)
{
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    CHECK(router);
    CHECK_EQ(zsock_bind(router, "%s", (const char *)args), 0);
    zsock_signal(pipe, 0);
    zpoller_t *poller = zpoller_new(pipe, router, NULL);
    uint64_t served = 0;
    while (true) {
        void *which = zpoller_wait(poller, -1);
        if (which != router)
            break;  //  $TERM or interrupted
        zmsg_t *msg = zmsg_recv(router);
        zframe_t *body = zmsg_last(msg);
        pres_query_t q;
        const char *why;
        unsigned char reply[128];
        pres_mp_writer_t w;
        pres_mp_writer_init(&w, reply, sizeof reply);
        msgpack_pack_map(&w.pk, 2);
        pres_mp_pack_cstr(&w, "ok");
        if (pres_query_decode(&q, zframe_data(body), zframe_size(body), &why) ==
                0 &&
            q.op == PRES_Q_STATS) {
            msgpack_pack_true(&w.pk);
            pres_mp_pack_kv_uint(&w, "seq", ++served);
        } else {
            msgpack_pack_false(&w.pk);
            pres_mp_pack_kv_str(&w, "error", "unknown op");
        }
        zframe_reset(body, reply, w.len);
        zmsg_send(&msg, router);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&router);
}

static void
s_test_query_client(void)
{
    pres_qclient_t *qc = pres_qclient_new(&s_cfg);
    CHECK(qc);
    pres_query_t q = {.op = PRES_Q_STATS};
    //  Nobody answering: a bounded wait, then ETIMEDOUT.
    int64_t t0 = pres_mono_ms();
    CHECK(pres_qclient_query(qc, &q, 100, NULL) == NULL);
    CHECK_EQ(errno, ETIMEDOUT);
    CHECK(pres_mono_ms() - t0 < 1000);

    //  The client recovered from the lost reply: the next calls work.
    zactor_t *broker = zactor_new(s_fake_broker, s_cfg.query_endpoint);
    CHECK(broker);
    //  The abandoned query may still reach the broker (its socket was
    //  closed with linger 0, but a connection made in that instant takes
    //  it): then the broker counted it first, and each reply says so.
    int base = 0;
    for (int i = 1; i <= 3; i++) {
        zframe_t *reply = pres_qclient_query(qc, &q, 5000, NULL);
        CHECK(reply);
        char *json =
            pres_mp_to_json(zframe_data(reply), zframe_size(reply), "ok", NULL);
        if (i == 1 && strcmp(json, "{\"seq\":2}") == 0)
            base = 1;
        char expect[32];
        snprintf(expect, sizeof expect, "{\"seq\":%d}", base + i);
        CHECK_STR(json, expect);
        free(json);
        zframe_destroy(&reply);
    }
    //  An error reply comes back as EPROTO with the broker's words.
    char *error = NULL;
    q.op = PRES_Q_SNAPSHOT;
    CHECK(pres_qclient_query(qc, &q, 5000, &error) == NULL);
    CHECK_EQ(errno, EPROTO);
    CHECK_STR(error, "unknown op");
    free(error);
    zactor_destroy(&broker);
    pres_qclient_destroy(&qc);
}

//  Publishers made and destroyed in quick succession: malloc hands the
//  same address out again while the previous socket monitor's inproc
//  endpoint is still being released (it once failed with EADDRINUSE).
static void
s_test_churn(void)
{
    for (int i = 0; i < 100; i++) {
        pres_pub_t *pub = pres_pub_new(&s_cfg, "churn-pub");
        CHECK(pub);
        pres_pub_destroy(&pub);
    }
}

//  Publisher ids: role, host, pid and index, always a valid id.
static void
s_test_src_id(void)
{
    char src[PRES_ID_MAX + 1], want[32];
    pres_src_id(src, sizeof src, "sweeper", -1);
    CHECK(pres_id_valid(src, strlen(src)));
    CHECK(strncmp(src, "sweeper-", 8) == 0);
    snprintf(want, sizeof want, "-%ld", (long)getpid());
    CHECK(strcmp(src + strlen(src) - strlen(want), want) == 0);
    pres_src_id(src, sizeof src, "gateway", 3);
    CHECK(pres_id_valid(src, strlen(src)));
    snprintf(want, sizeof want, "-%ld-3", (long)getpid());
    CHECK(strcmp(src + strlen(src) - strlen(want), want) == 0);
}

int
main(void)
{
    s_test_src_id();
    char dir[] = "/tmp/pres_bus_XXXXXX";
    CHECK(mkdtemp(dir));
    pres_config_defaults(&s_cfg);
    snprintf(s_cfg.run_dir, sizeof s_cfg.run_dir, "%s", dir);
    CHECK_EQ(pres_config_finish(&s_cfg), 0);
    s_test_publisher();
    s_test_stage();
    s_test_query_client();
    s_test_churn();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK_EQ(system(cmd), 0);
    printf("test_bus: OK\n");
    return 0;
}

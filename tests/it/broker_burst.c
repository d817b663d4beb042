/*  it.broker_burst: no silent loss on the bus. 1,000,000 heartbeats from
    one publisher at full speed are either applied completely (pres_pub_t:
    XPUB + NODROP, applied == N, lost 0) or, from a plain PUB at the
    default HWM of 1000 (which drops: docs/libraries.md section 1), counted
    exactly (applied + lost == N in stats). */
#include <unistd.h>

#include "itutil.h"
#include "testutil.h"

#define N 1000000

static it_env_t env;
static it_proc_t broker;
static pres_config_t cfg;

//  applied + refused + malformed, i.e. everything the broker has handled.
static uint64_t
s_handled(void)
{
    pres_query_t q = {.op = PRES_Q_STATS};
    zframe_t *rep = it_query(&cfg, &q);
    CHECK(rep);
    uint64_t v =
        it_uint(rep, "events.applied") + it_uint(rep, "events.refused");
    zframe_destroy(&rep);
    return v;
}

//  Wait until the broker has handled `target` events, or (target 0) until
//  the count stops moving for quiet_ms. Returns the count.
static uint64_t
s_settle(uint64_t target, int quiet_ms, int timeout_ms)
{
    int64_t end = pres_mono_ms() + timeout_ms;
    uint64_t last = s_handled();
    int64_t still_since = pres_mono_ms();
    while (pres_mono_ms() < end) {
        if (target && last >= target)
            return last;
        usleep(20 * 1000);
        uint64_t now = s_handled();
        if (now != last) {
            last = now;
            still_since = pres_mono_ms();
        } else if (!target && pres_mono_ms() - still_since >= quiet_ms)
            return last;
    }
    return last;
}

//  The publisher entry for src in stats: seq and lost.
static void
s_pub_stats(const char *src, uint64_t *seq, uint64_t *lost)
{
    pres_query_t q = {.op = PRES_Q_STATS};
    zframe_t *rep = it_query(&cfg, &q);
    CHECK(rep);
    uint32_t n = 0;
    CHECK(it_mp_count(rep, "publishers", &n) == 0);
    bool found = false;
    for (uint32_t i = 0; i < n && !found; i++) {
        char path[64], name[PRES_ID_MAX + 1];
        snprintf(path, sizeof(path), "publishers.%u.src", i);
        CHECK(it_mp_str(rep, path, name, sizeof(name)) == 0);
        if (strcmp(name, src) == 0) {
            snprintf(path, sizeof(path), "publishers.%u.seq", i);
            *seq = it_uint(rep, path);
            snprintf(path, sizeof(path), "publishers.%u.lost", i);
            *lost = it_uint(rep, path);
            found = true;
        }
    }
    CHECK(found);
    zframe_destroy(&rep);
}

static void
s_nodrop(void)
{
    pres_pub_t *pub = it_pub_new(&cfg, "gateway-burst-1");
    CHECK(pub);
    uint64_t applied0 = it_stat(&cfg, "events.applied");
    uint64_t lost0 = it_stat(&cfg, "events.lost");
    pres_event_t ev = {.type = PRES_EV_HEARTBEAT};
    strcpy(ev.user, "burst1");
    strcpy(ev.session, "s1");
    int64_t t0 = pres_mono_ms();
    for (int i = 0; i < N; i++) {
        ev.at = 0;
        //  NODROP: a full pipe makes us wait, never drops.
        CHECK(pres_pub_send(pub, &ev, 10000) == 0);
    }
    int64_t t1 = pres_mono_ms();
    uint64_t handled = s_settle(applied0 + N, 0, 60000);
    int64_t t2 = pres_mono_ms();
    fprintf(stderr,
            "nodrop: sent %d in %" PRId64 " ms, applied after %" PRId64 " ms\n",
            N, t1 - t0, t2 - t0);
    (void)handled;
    CHECK_EQ(it_stat(&cfg, "events.applied") - applied0, N);
    CHECK_EQ(it_stat(&cfg, "events.lost") - lost0, 0);
    uint64_t seq = 0, lost = 1;
    s_pub_stats("gateway-burst-1", &seq, &lost);
    CHECK_EQ(seq, N);
    CHECK_EQ(lost, 0);
    CHECK_EQ(pres_pub_seq(pub), N);
    pres_pub_destroy(&pub);
}

static void
s_plain_pub(void)
{
    //  A foreign frontend's plain PUB, default SNDHWM (1000): drops.
    zsock_t *pub = zsock_new(ZMQ_PUB);
    CHECK(pub);
    zsock_set_linger(pub, 2000);
    CHECK(zsock_connect(pub, "%s", cfg.events_endpoint) == 0);
    usleep(300 * 1000);  //  slow joiner: lost events would count anyway
    void *h = zsock_resolve(pub);
    uint64_t applied0 = it_stat(&cfg, "events.applied");
    uint64_t lost0 = it_stat(&cfg, "events.lost");
    pres_event_t ev = {.type = PRES_EV_HEARTBEAT};
    strcpy(ev.user, "burst2");
    strcpy(ev.session, "s1");
    strcpy(ev.src, "frontend-plain-1");
    ev.at = (uint64_t)pres_now_ms();
    uint8_t buf[256];
    const char *topic = "heartbeat";
    int64_t t0 = pres_mono_ms();
    for (uint64_t seq = 1; seq <= N; seq++) {
        if (seq == N) {
            //  The last one after the pipe drained, so the tail of the
            //  burst shows as a gap (a dropped tail is invisible until
            //  the publisher's next event: that is how seq gaps work).
            s_settle(0, 300, 60000);
        }
        ev.seq = seq;
        size_t len = pres_event_encode(&ev, buf, sizeof(buf));
        CHECK(len > 0);
        CHECK(zmq_send(h, topic, strlen(topic), ZMQ_SNDMORE) >= 0);
        CHECK(zmq_send(h, buf, len, 0) >= 0);
    }
    s_settle(0, 300, 60000);
    int64_t t1 = pres_mono_ms();
    uint64_t applied = it_stat(&cfg, "events.applied") - applied0;
    uint64_t lost = it_stat(&cfg, "events.lost") - lost0;
    fprintf(stderr,
            "plain PUB: applied %" PRIu64 ", lost %" PRIu64 " (%" PRId64
            " ms)\n",
            applied, lost, t1 - t0);
    CHECK_EQ(applied + lost, N);
    uint64_t pseq = 0, plost = 0;
    s_pub_stats("frontend-plain-1", &pseq, &plost);
    CHECK_EQ(pseq, N);
    CHECK_EQ(plost, lost);
    zsock_destroy(&pub);
}

int
main(void)
{
    CHECK(it_env_init(&env, "broker-burst") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    s_nodrop();
    s_plain_pub();
    CHECK(it_proc_alive(&broker));
    CHECK_EQ(it_proc_stop(&broker, 10000), 0);
    it_env_cleanup(&env);
    return 0;
}

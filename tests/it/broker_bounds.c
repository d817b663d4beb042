/*  it.broker_bounds: the broker's tables stay bounded from outside. One
    token cannot open unlimited sessions: 2,000 logins of one user on the
    bus leave max_sessions_per_user (16) live sessions, the newest ones,
    also after a broker restart. 3,000 one-shot publishers (distinct
    `src`) leave at most publishers_max entries and a small `stats`. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static pres_config_t cfg;
static it_proc_t broker;

static void
s_expect_sessions(uint64_t want)
{
    char state[16], account[16];
    uint64_t sessions = 0;
    CHECK_EQ(it_get_user(&cfg, "mallory", state, &sessions, NULL, account), 0);
    CHECK_STR(state, "online");
    CHECK_EQ(sessions, want);
    CHECK_EQ(it_stat(&cfg, "sessions"), want);
}

//  3,000 logouts of users never seen (applied, nothing changes), each from
//  its own src (one connection can claim any src: the field is the
//  publisher's word).
static void
s_one_shot_publishers(void)
{
    zsock_t *raw = it_raw_pub_new(&cfg);
    CHECK(raw);
    uint64_t applied = it_stat(&cfg, "events.applied");
    for (int i = 0; i < 3000; i++) {
        pres_event_t ev;
        memset(&ev, 0, sizeof(ev));
        ev.type = PRES_EV_LOGOUT;
        snprintf(ev.user, sizeof(ev.user), "shot%04d", i);
        snprintf(ev.src, sizeof(ev.src), "oneshot-%04d", i);
        ev.seq = 1;
        ev.at = (uint64_t)pres_now_ms();
        uint8_t body[PRES_MSG_MAX];
        size_t len = pres_event_encode(&ev, body, sizeof(body));
        CHECK(len > 0);
        const void *frames[2] = {"logout", body};
        size_t sizes[2] = {6, len};
        CHECK(it_raw_send(raw, 2, frames, sizes) == 0);
    }
    CHECK_EQ(it_wait_stat(&cfg, "events.applied", applied + 3000, 30000),
             applied + 3000);
    pres_query_t q = {.op = PRES_Q_STATS};
    zframe_t *rep = it_query(&cfg, &q);
    CHECK(rep);
    printf("stats after 3,000 one-shot publishers: %zu bytes, %" PRIu64
           " publishers kept\n",
           zframe_size(rep), it_uint(rep, "publishers_total"));
    CHECK(it_uint(rep, "publishers_total") <= 1024);
    CHECK(zframe_size(rep) < 16 * 1024);
    zframe_destroy(&rep);
    zsock_destroy(&raw);
}

int
main(void)
{
    CHECK(it_env_init(&env, "broker-bounds") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    pres_pub_t *pub = it_pub_new(&cfg, "gateway-cap");
    CHECK(pub);
    char sid[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(sid, sizeof(sid), "s%04d", i);
        CHECK(it_send_login(pub, "mallory", sid) == 0);
    }
    CHECK_EQ(it_wait_stat(&cfg, "events.applied", 2000, 30000), 2000);
    s_expect_sessions(16);
    //  The newest login is live: its heartbeat changes nothing.
    uint64_t seq = it_stat(&cfg, "seq");
    CHECK(it_send_heartbeat(pub, "mallory", "s1999", NULL) == 0);
    CHECK_EQ(it_wait_stat(&cfg, "events.applied", 2001, 10000), 2001);
    CHECK_EQ(it_stat(&cfg, "seq"), seq);
    pres_pub_destroy(&pub);
    s_one_shot_publishers();

    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    s_expect_sessions(16);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    return 0;
}

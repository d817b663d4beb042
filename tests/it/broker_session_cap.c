/*  it.broker_session_cap: one token cannot open unlimited sessions. 2,000
    logins of one user on the bus leave max_sessions_per_user (16) live
    sessions, the newest ones, also after a broker restart. */
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

int
main(void)
{
    CHECK(it_env_init(&env, "broker-session-cap") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    pres_pub_t *pub = it_pub_new(&cfg, "gateway-cap");
    CHECK(pub);
    char sid[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(sid, sizeof(sid), "s%04d", i);
        CHECK(it_send_login(pub, "mallory", sid) == 0);
    }
    int64_t end = pres_mono_ms() + 20000;
    while (it_stat(&cfg, "events.applied") < 2000 && pres_mono_ms() < end)
        usleep(20 * 1000);
    CHECK_EQ(it_stat(&cfg, "events.applied"), 2000);
    s_expect_sessions(16);
    //  The newest login is live: its heartbeat changes nothing.
    uint64_t seq = it_stat(&cfg, "seq");
    CHECK(it_send_heartbeat(pub, "mallory", "s1999", NULL) == 0);
    end = pres_mono_ms() + 5000;
    while (it_stat(&cfg, "events.applied") < 2001 && pres_mono_ms() < end)
        usleep(20 * 1000);
    CHECK_EQ(it_stat(&cfg, "seq"), seq);
    pres_pub_destroy(&pub);

    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    s_expect_sessions(16);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    return 0;
}

/*  it.broker_lastseen: docs/protocol.md section 2's bound on the lazily durable
    last_seen. A session beats every 50 ms for 7 s (heartbeats that change
    nothing, written only by the coalescing flush); the broker is killed
    with SIGKILL; after the restart last_seen is at most 5 s behind the last
    beat it had applied, and never ahead. */
#include "itutil.h"
#include "testutil.h"

int
main(void)
{
    it_env_t env;
    CHECK_EQ(it_env_init(&env, "lastseen"), 0);
    static it_proc_t broker;
    CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
    pres_config_t cfg;
    CHECK_EQ(it_env_config(&env, &cfg), 0);
    pres_pub_t *pub = it_pub_new(&cfg, "gateway-lastseen-1");
    CHECK(pub);
    CHECK_EQ(it_send_login(pub, "beater", "s1"), 0);
    for (int i = 0; i < 140; i++) {
        zclock_sleep(50);  //  pacing: a beat every 50 ms, not a wait
        CHECK_EQ(it_send_heartbeat(pub, "beater", "s1", NULL), 0);
    }
    //  Wait until the broker applied the last beat, then read last_seen.
    CHECK_EQ(it_wait_stat(&cfg, "events.applied", 141, 10000), 141);
    char state[16], account[16];
    uint64_t sessions, before, after;
    CHECK_EQ(it_get_user(&cfg, "beater", state, &sessions, &before, account),
             0);
    it_proc_kill9(&broker);
    pres_pub_destroy(&pub);
    CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
    CHECK_EQ(it_get_user(&cfg, "beater", state, &sessions, &after, account), 0);
    printf("last_seen before kill -9 %llu, after restart %llu (%lld ms "
           "behind)\n",
           (unsigned long long)before, (unsigned long long)after,
           (long long)(before - after));
    CHECK_STR(state, "online");
    CHECK(after <= before);
    CHECK(before - after <= 5000);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    return 0;
}

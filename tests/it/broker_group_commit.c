/*  it.broker_group_commit: the LMDB trap (docs/libraries.md section 4: one
    synced commit per event is ~4k/s here). A burst of logins, each a durable
    change, must be committed in groups: at least 5 events per write transaction
    and per fsync, and every one applied and online. */
#include "itutil.h"
#include "testutil.h"

#define S_USERS 20000

int
main(void)
{
    it_env_t env;
    CHECK_EQ(it_env_init(&env, "group-commit"), 0);
    static it_proc_t broker;
    CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
    pres_config_t cfg;
    CHECK_EQ(it_env_config(&env, &cfg), 0);
    uint64_t commits0 = it_stat(&cfg, "storage.commits");
    uint64_t syncs0 = it_stat(&cfg, "storage.syncs");

    pres_pub_t *pub = it_pub_new(&cfg, "gateway-burst-1");
    CHECK(pub);
    char user[32];
    for (int i = 0; i < S_USERS; i++) {
        snprintf(user, sizeof user, "u%05d", i);
        CHECK_EQ(it_send_login(pub, user, "s1"), 0);
    }
    CHECK_EQ(it_wait_stat(&cfg, "users.online", S_USERS, 30000), S_USERS);
    CHECK_EQ(it_stat(&cfg, "events.applied"), S_USERS);
    CHECK_EQ(it_stat(&cfg, "events.lost"), 0);
    uint64_t commits = it_stat(&cfg, "storage.commits") - commits0;
    uint64_t syncs = it_stat(&cfg, "storage.syncs") - syncs0;
    printf("%d durable logins: %llu commits, %llu fsyncs (%.1f events per "
           "commit)\n",
           S_USERS, (unsigned long long)commits, (unsigned long long)syncs,
           commits ? (double)S_USERS / (double)commits : 0.0);
    CHECK(commits >= 1);
    CHECK(commits * 5 <= S_USERS);
    CHECK(syncs * 5 <= S_USERS);
    pres_pub_destroy(&pub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    return 0;
}

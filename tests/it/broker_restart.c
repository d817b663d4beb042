/*  it.broker_restart: kill -9 of the broker and restart keeps every
    committed state, last_seen within the flush interval, the account
    statuses, and continues seq without reuse; a second broker on the same
    run_dir refuses to start. */
#include <signal.h>

#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t broker, second;
static pres_config_t cfg;

typedef struct {
    char state[16];
    uint64_t sessions;
    uint64_t last_seen;
    char account[16];
} s_user_t;

static void
s_get(const char *user, s_user_t *u)
{
    CHECK_EQ(it_get_user(&cfg, user, u->state, &u->sessions, &u->last_seen,
                         u->account),
             0);
}

int
main(void)
{
    CHECK(it_env_init(&env, "broker-restart") == 0);
    it_env_set(&env, "lastseen_flush_ms", "500");
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    zsock_t *sub;
    pres_pub_t *pub;
    CHECK(it_bus_open(&cfg, "", "gateway-restart-1", &sub, &pub) == 0);

    pres_change_t ch;
    CHECK(it_send_login(pub, "u1", "a") == 0);
    CHECK(it_send_login(pub, "u1", "b") == 0);
    CHECK(it_send_login(pub, "u2", "a") == 0);
    CHECK(it_send_heartbeat(pub, "u2", "a", "away") == 0);
    CHECK(it_send_login(pub, "u3", "a") == 0);
    CHECK(it_send_logout(pub, "u3", "a") == 0);
    for (int i = 0; i < 6; i++)
        CHECK(it_wait_change(sub,
                             i < 2   ? "u1"
                             : i < 4 ? "u2"
                                     : "u3",
                             &ch, 10000) == 0);
    CHECK(it_admin_account(&cfg, "u4", "banned") == 0);
    CHECK(it_wait_change(sub, "u4", &ch, 10000) == 0);
    //  A heartbeat that changes nothing: last_seen is lazily durable. It
    //  must land on a later clock tick than u1's logins to be seen.
    it_sleep_until_wall(ch.at + 2);
    //  Whether a flush wrote it before the kill or not, SPEC bounds the
    //  lag (checked below).
    CHECK(it_send_heartbeat(pub, "u1", "a", NULL) == 0);
    CHECK(it_sync(sub, pub, 10000) == 0);  //  applied
    s_user_t before[4];
    const char *names[4] = {"u1", "u2", "u3", "u4"};
    for (int i = 0; i < 4; i++)
        s_get(names[i], &before[i]);
    CHECK_STR(before[0].state, "online");
    CHECK_EQ(before[0].sessions, 2);
    CHECK_STR(before[1].state, "away");
    CHECK_STR(before[2].state, "offline");
    CHECK_STR(before[3].account, "banned");
    uint64_t seq = it_stat(&cfg, "seq");
    CHECK_EQ(seq, ch.seq);

    //  A second broker on the same run_dir refuses to start and leaves
    //  the first one alone.
    CHECK(it_spawn(&env, "presence-broker", NULL, NULL, &second) == 0);
    int rc = it_proc_wait(&second, 5000);
    if (rc <= 0)
        it_proc_dump_log(&second);
    CHECK(rc > 0 && rc < 128);
    CHECK(it_proc_log_has(&second, "another presence-broker"));
    CHECK_EQ(it_stat(&cfg, "seq"), seq);

    //  A login whose change we saw is durable: kill -9 right after it.
    CHECK(it_send_login(pub, "u5", "a") == 0);
    CHECK(it_wait_change(sub, "u5", &ch, 10000) == 0);
    CHECK_EQ(ch.seq, seq + 1);
    it_proc_kill9(&broker);
    pres_pub_destroy(&pub);
    zsock_destroy(&sub);

    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    for (int i = 0; i < 4; i++) {
        s_user_t after;
        s_get(names[i], &after);
        CHECK_STR(after.state, before[i].state);
        CHECK_EQ(after.sessions, before[i].sessions);
        CHECK_STR(after.account, before[i].account);
        //  u1's last event was a heartbeat that changed nothing:
        //  docs/protocol.md lets its last_seen lag by up to 5 s after a crash
        //  (never ahead). The others ended with durable changes: exact.
        if (i == 0) {
            CHECK(after.last_seen <= before[i].last_seen);
            CHECK(before[i].last_seen - after.last_seen <= 5000);
        } else
            CHECK_EQ(after.last_seen, before[i].last_seen);
    }
    s_user_t u5;
    s_get("u5", &u5);
    CHECK_STR(u5.state, "online");
    CHECK_EQ(it_stat(&cfg, "seq"), seq + 1);
    CHECK_EQ(it_stat(&cfg, "users.online"), 2);
    CHECK_EQ(it_stat(&cfg, "users.away"), 1);
    CHECK_EQ(it_stat(&cfg, "sessions"), 4);
    CHECK_EQ(it_stat(&cfg, "accounts.banned"), 1);

    //  seq continues without reuse; the publisher table survived too (a
    //  new publisher with the old src restarts at seq 1: no loss counted).
    sub = pres_bus_sub_changes(&cfg, "");
    CHECK(sub);
    pub = it_pub_new(&cfg, "gateway-restart-1");
    CHECK(pub);
    CHECK(it_sync(sub, pub, 10000) == 0);
    CHECK(it_send_logout(pub, "u1", "a") == 0);
    CHECK(it_wait_change(sub, "u1", &ch, 10000) == 0);
    CHECK_EQ(ch.seq, seq + 2);
    CHECK_EQ(ch.sessions, 1);
    CHECK_EQ(it_stat(&cfg, "events.lost"), 0);

    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    //  A clean stop keeps everything too.
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    CHECK_EQ(it_stat(&cfg, "seq"), seq + 2);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    return 0;
}

/*  it.broker_rules: the real broker in a temp dir, driven over the bus:
    login/logout with several sessions, away, account suspension refusing
    later events, reactivation, and the expire re-check. */
#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t broker;
static pres_config_t cfg;

static void
s_expect(zsock_t *sub, const char *user, const char *state, const char *reason,
         uint32_t sessions, pres_change_t *out)
{
    pres_change_t ch;
    CHECK(it_wait_change(sub, user, &ch, 10000) == 0);
    CHECK_STR(pres_state_name(ch.state), state);
    CHECK_STR(pres_reason_name(ch.reason), reason);
    CHECK_EQ(ch.sessions, sessions);
    if (out)
        *out = ch;
}

static void
s_user(const char *user, const char *state, uint64_t sessions,
       const char *account)
{
    char st[16], acc[16];
    uint64_t n, ls;
    CHECK_EQ(it_get_user(&cfg, user, st, &n, &ls, acc), 0);
    CHECK_STR(st, state);
    CHECK_EQ(n, sessions);
    CHECK_STR(acc, account);
}

int
main(void)
{
    CHECK(it_env_init(&env, "broker-rules") == 0);
    it_env_set(&env, "timeout", "2");
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    zsock_t *sub;
    pres_pub_t *pub;
    CHECK(it_bus_open(&cfg, "", "gateway-test-1", &sub, &pub) == 0);

    //  Login: online, a change on presence.alice with the session.
    pres_change_t ch, first;
    CHECK(it_send_login(pub, "alice", "s1") == 0);
    s_expect(sub, "alice", "online", "login", 1, &first);
    CHECK_STR(first.session, "s1");
    CHECK_STR(pres_state_name(first.prev), "offline");
    CHECK(first.deadline >= first.at + 2000);
    s_user("alice", "online", 1, "active");

    //  Second session: online -> online, sessions 2, seq +1.
    CHECK(it_send_login(pub, "alice", "s2") == 0);
    s_expect(sub, "alice", "online", "login", 2, &ch);
    CHECK_EQ(ch.seq, first.seq + 1);
    CHECK_STR(ch.session, "s2");

    //  One logout keeps her online with one session.
    CHECK(it_send_logout(pub, "alice", "s1") == 0);
    s_expect(sub, "alice", "online", "logout", 1, NULL);
    s_user("alice", "online", 1, "active");

    //  Heartbeat with away: the only session is away, so the user is.
    CHECK(it_send_heartbeat(pub, "alice", "s2", "away") == 0);
    s_expect(sub, "alice", "away", "heartbeat", 1, NULL);
    s_user("alice", "away", 1, "active");
    CHECK(it_send_heartbeat(pub, "alice", "s2", "online") == 0);
    s_expect(sub, "alice", "online", "heartbeat", 1, NULL);

    //  Logout of all sessions: offline.
    CHECK(it_send_login(pub, "alice", "s3") == 0);
    s_expect(sub, "alice", "online", "login", 2, NULL);
    CHECK(it_send_logout(pub, "alice", NULL) == 0);
    s_expect(sub, "alice", "offline", "logout", 0, NULL);
    s_user("alice", "offline", 0, "active");

    //  Suspend bob on the admin endpoint: every session ends at once.
    CHECK(it_send_login(pub, "bob", "b1") == 0);
    CHECK(it_send_login(pub, "bob", "b2") == 0);
    s_expect(sub, "bob", "online", "login", 1, NULL);
    s_expect(sub, "bob", "online", "login", 2, NULL);
    pres_query_t q = {.op = PRES_Q_ACCOUNT, .status = PRES_ACC_SUSPENDED};
    strcpy(q.user, "bob");
    strcpy(q.reason, "spam");
    zframe_t *rep = it_admin(&cfg, &q);
    CHECK(rep);
    bool ok = false;
    CHECK(it_mp_bool(rep, "ok", &ok) == 0 && ok);
    CHECK_STR(it_str(rep, "account"), "suspended");
    uint64_t susp_seq = it_uint(rep, "seq");
    zframe_destroy(&rep);
    s_expect(sub, "bob", "offline", "suspended", 0, &ch);
    CHECK_EQ(ch.seq, susp_seq);
    CHECK_STR(pres_account_name(ch.account), "suspended");
    s_user("bob", "offline", 0, "suspended");

    //  Later login and heartbeat events are refused and counted.
    uint64_t refused = it_stat(&cfg, "events.refused");
    CHECK(it_send_login(pub, "bob", "b3") == 0);
    CHECK(it_send_heartbeat(pub, "bob", "b4", NULL) == 0);
    CHECK_EQ(it_wait_stat(&cfg, "events.refused", refused + 2, 10000),
             refused + 2);
    s_user("bob", "offline", 0, "suspended");
    CHECK_EQ(it_stat(&cfg, "accounts.suspended"), 1);

    //  An account event is refused whatever src it names, and counted.
    pres_pub_t *rogue = it_pub_new(&cfg, "rogue-1");
    CHECK(rogue);
    CHECK(it_send_account(rogue, "bob", "active") == 0);
    CHECK(it_send_account(pub, "bob", "active") == 0);
    CHECK_EQ(it_wait_stat(&cfg, "events.refused", refused + 4, 10000),
             refused + 4);
    CHECK_EQ(it_stat(&cfg, "forbidden.events"), 2);
    s_user("bob", "offline", 0, "suspended");
    pres_pub_destroy(&rogue);

    //  Reactivate on the admin endpoint: reason account, and login works
    //  again.
    CHECK(it_admin_account(&cfg, "bob", "active") == 0);
    s_expect(sub, "bob", "offline", "account", 0, &ch);
    CHECK_STR(pres_account_name(ch.account), "active");
    CHECK(it_send_login(pub, "bob", "b5") == 0);
    s_expect(sub, "bob", "online", "login", 1, NULL);

    //  Expire re-check. carol beats in time: the expire is refused with a
    //  deadline notice carrying the real deadline.
    CHECK(it_send_login(pub, "carol", "c1") == 0);
    s_expect(sub, "carol", "online", "login", 1, &ch);
    pres_pub_t *sweeper = it_pub_new(&cfg, "sweeper-test-1");
    CHECK(sweeper);
    //  The beat must reach the broker after the login's clock tick and
    //  before the expire (two publishers: the sentinel orders them).
    it_sleep_until_wall(ch.at + 2);
    CHECK(it_send_heartbeat(pub, "carol", "c1", NULL) == 0);
    CHECK(it_sync(sub, pub, 10000) == 0);
    CHECK(it_send_expire(sweeper, "carol", "c1", ch.deadline) == 0);
    pres_deadline_t dl;
    CHECK(it_wait_deadline(sub, "carol", &dl, 10000) == 0);
    CHECK_STR(dl.session, "c1");
    CHECK(dl.deadline > ch.deadline);
    uint64_t carol_deadline = dl.deadline;
    s_user("carol", "online", 1, "active");
    //  An expire for a session the broker does not know: deadline 0.
    CHECK(it_send_expire(sweeper, "carol", "nope", 1) == 0);
    CHECK(it_wait_deadline(sub, "carol", &dl, 10000) == 0);
    CHECK_STR(dl.session, "nope");
    CHECK_EQ(dl.deadline, 0);
    //  Once due, the expire ends the session with reason timeout. The
    //  condition is the deadline itself (broker clock = wall clock here).
    it_sleep_until_wall(carol_deadline + 1);
    CHECK(it_send_expire(sweeper, "carol", "c1", 0) == 0);
    s_expect(sub, "carol", "offline", "timeout", 0, &ch);
    CHECK_STR(ch.session, "c1");
    s_user("carol", "offline", 0, "active");

    //  get of an unknown user: not found.
    CHECK_EQ(it_get_user(&cfg, "nobody", NULL, NULL, NULL, NULL), 1);
    //  stats are consistent.
    CHECK_EQ(it_stat(&cfg, "users.online"), 1);  //  bob
    CHECK_EQ(it_stat(&cfg, "sessions"), 1);
    CHECK_EQ(it_stat(&cfg, "users.offline"), 2);
    CHECK_EQ(it_stat(&cfg, "events.lost"), 0);

    pres_pub_destroy(&sweeper);
    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    return 0;
}

/*  it.broker_crash_publish (label fault): a change is never published
    before its batch is committed. Each round sends a burst of logins
    while heartbeats keep the broker busy, kills the broker with SIGKILL
    as soon as some changes arrived (the fsync thread and later batches
    still in flight), restarts it and checks that every change the
    subscriber received survived: the user is online with its session,
    and the broker's seq is at least the highest seq received (so no
    published seq is ever reused). The fsync half of the rule (a commit
    on disk before its change goes out) is covered by unit.broker_durable;
    a process kill cannot drop the page cache. */
#include <signal.h>
#include <unistd.h>

#include "itutil.h"
#include "testutil.h"

#define S_ROUNDS 4
#define S_USERS  2000  //  logins per round
#define S_KILL   50    //  changes received before the kill

static it_env_t env;
static it_proc_t broker;
static pres_config_t cfg;

static char s_seen[S_USERS][PRES_ID_MAX + 1];

int
main(void)
{
    CHECK_EQ(it_env_init(&env, "crash-publish"), 0);
    CHECK_EQ(it_env_config(&env, &cfg), 0);
    CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
    zsock_t *sub = pres_bus_sub_changes(&cfg, "");
    CHECK(sub);
    uint64_t top = 0;  //  highest seq received over all rounds
    for (int round = 0; round < S_ROUNDS; round++) {
        char src[32];
        snprintf(src, sizeof src, "gateway-crash-%d", round);
        pres_pub_t *pub = it_pub_new(&cfg, src);
        CHECK(pub);
        //  The subscriber reconnects to the restarted broker: the
        //  sentinel drains what a previous round left and returns once it
        //  hears the broker (a change published before would be lost to
        //  it: slow joiner).
        CHECK_EQ(it_sync(sub, pub, 20000), 0);
        char user[32];
        snprintf(user, sizeof user, "probe%d", round);
        pres_change_t ch;
        CHECK_EQ(it_send_login(pub, user, "p0"), 0);
        CHECK_EQ(it_wait_change(sub, user, &ch, 10000), 0);
        CHECK(ch.seq > top);
        top = ch.seq;

        for (int i = 0; i < S_USERS; i++) {
            snprintf(user, sizeof user, "r%du%04d", round, i);
            CHECK_EQ(it_send_login(pub, user, "s"), 0);
            snprintf(user, sizeof user, "probe%d", round);
            CHECK_EQ(it_send_heartbeat(pub, user, "p0", NULL), 0);
        }
        int n = 0;
        while (n < S_KILL) {
            int rc = it_recv(sub, &ch, NULL, 10000);
            CHECK(rc == 1 || rc == 2);
            if (rc == 1 && ch.seq > top) {
                CHECK(n < S_USERS);
                snprintf(s_seen[n++], PRES_ID_MAX + 1, "%s", ch.user);
                top = ch.seq;
            }
        }
        it_proc_kill9(&broker);
        //  Whatever was already sent before the kill counts too.
        int rc;
        while ((rc = it_recv(sub, &ch, NULL, 200)) > 0)
            if (rc == 1 && ch.seq > top && n < S_USERS) {
                snprintf(s_seen[n++], PRES_ID_MAX + 1, "%s", ch.user);
                top = ch.seq;
            }
        pres_pub_destroy(&pub);
        CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
        CHECK(it_stat(&cfg, "seq") >= top);
        for (int i = 0; i < n; i++) {
            char state[16], account[16];
            uint64_t sessions, last_seen;
            CHECK_EQ(it_get_user(&cfg, s_seen[i], state, &sessions, &last_seen,
                                 account),
                     0);
            CHECK_STR(state, "online");
            CHECK_EQ(sessions, 1);
        }
        printf("round %d: %d changes received before/at the kill, all "
               "durable; seq %llu\n",
               round, n, (unsigned long long)top);
    }
    zsock_destroy(&sub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    return 0;
}

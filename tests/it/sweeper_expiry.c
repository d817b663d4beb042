/*  it.sweeper_expiry: the real broker and sweeper with timeout = 2 s.
    Silence ends a session within 1 s of its deadline with reason timeout;
    heartbeats keep a user online past several timeouts; of two sessions,
    the silent one expires and the user stays online with one. */
#include <signal.h>
#include <unistd.h>

#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t broker, sweeper;
static pres_config_t cfg;

static void
s_expect(zsock_t *sub, const char *user, const char *state, const char *reason,
         uint32_t sessions, int timeout_ms, pres_change_t *out)
{
    pres_change_t ch;
    CHECK(it_wait_change(sub, user, &ch, timeout_ms) == 0);
    CHECK_STR(pres_state_name(ch.state), state);
    CHECK_STR(pres_reason_name(ch.reason), reason);
    CHECK_EQ(ch.sessions, sessions);
    if (out)
        *out = ch;
}

//  Lateness of an expiry: the change's time against the deadline the
//  session had (both broker clock). Must be in [0, 1000] ms.
static void
s_check_late(const pres_change_t *ended, uint64_t deadline)
{
    int64_t late = (int64_t)ended->at - (int64_t)deadline;
    fprintf(stderr, "  %s/%s ended %" PRId64 " ms after its deadline\n",
            ended->user, ended->session, late);
    CHECK(late >= 0);
    CHECK(late <= 1000);
}

//  A: one login, then silence.
static void
test_silence(zsock_t *sub, pres_pub_t *pub)
{
    pres_change_t login, ended;
    CHECK(it_send_login(pub, "quiet", "q1") == 0);
    s_expect(sub, "quiet", "online", "login", 1, 10000, &login);
    CHECK(login.deadline >= login.at + 2000);
    s_expect(sub, "quiet", "offline", "timeout", 0, 10000, &ended);
    CHECK_STR(ended.session, "q1");
    CHECK_EQ(ended.seq, login.seq + 1);
    s_check_late(&ended, login.deadline);
    char st[16], acc[16];
    uint64_t n, ls;
    CHECK_EQ(it_get_user(&cfg, "quiet", st, &n, &ls, acc), 0);
    CHECK_STR(st, "offline");
    CHECK_EQ(n, 0);
}

//  Heartbeat user/session every 500 ms for ms; no change about user may
//  say timeout meanwhile. Returns the last deadline the broker told.
static uint64_t
s_beat(zsock_t *sub, pres_pub_t *pub, const char *user, const char *session,
       int ms, uint64_t deadline)
{
    int64_t until = pres_mono_ms() + ms, next = 0;
    while (pres_mono_ms() < until) {
        if (pres_mono_ms() >= next) {
            //  The broker's new deadline: last heartbeat + timeout, at the
            //  earliest (its clock reads the beat after we send it; read
            //  after the send, a preempted test overshot by 3 ms).
            deadline = (uint64_t)pres_now_ms() + 2000;
            CHECK(it_send_heartbeat(pub, user, session, NULL) == 0);
            next = pres_mono_ms() + 500;
        }
        pres_change_t ch;
        pres_deadline_t dl;
        int rc = it_recv(sub, &ch, &dl, 50);
        CHECK(rc >= 0);
        if (rc == 1 && strcmp(ch.user, user) == 0 &&
            strcmp(ch.session, session) == 0) {
            fprintf(stderr, "  unexpected change for %s/%s: %s\n", user,
                    session, pres_reason_name(ch.reason));
            CHECK(ch.reason != PRES_RSN_TIMEOUT);
        }
        //  A due notice about a beating session would be a broker bug
        //  (its deadline moved with each beat): the figure is kept anyway.
        if (rc == 2 && strcmp(dl.user, user) == 0 &&
            strcmp(dl.session, session) == 0 && dl.deadline > deadline)
            deadline = dl.deadline;
    }
    return deadline;
}

//  B: heartbeats keep a session alive over three timeouts.
static void
test_heartbeats(zsock_t *sub, pres_pub_t *pub)
{
    pres_change_t login, ended;
    CHECK(it_send_login(pub, "beating", "b1") == 0);
    s_expect(sub, "beating", "online", "login", 1, 10000, &login);
    uint64_t deadline = s_beat(sub, pub, "beating", "b1", 6500, login.deadline);
    char st[16], acc[16];
    uint64_t n, ls;
    CHECK_EQ(it_get_user(&cfg, "beating", st, &n, &ls, acc), 0);
    CHECK_STR(st, "online");
    CHECK_EQ(n, 1);
    //  The beats were applied (no due notice, so no expire, meanwhile).
    CHECK(it_stat(&cfg, "events.applied") > 10);
    //  Then silence: it ends within 1 s of the last deadline.
    s_expect(sub, "beating", "offline", "timeout", 0, 10000, &ended);
    s_check_late(&ended, deadline);
}

//  C: two sessions, one beats, the other goes silent.
static void
test_two_sessions(zsock_t *sub, pres_pub_t *pub)
{
    pres_change_t l1, ch;
    CHECK(it_send_login(pub, "twice", "phone") == 0);
    s_expect(sub, "twice", "online", "login", 1, 10000, &l1);
    CHECK(it_send_login(pub, "twice", "laptop") == 0);
    s_expect(sub, "twice", "online", "login", 2, 10000, NULL);
    //  Keep the laptop beating; the phone's expiry arrives meanwhile.
    int64_t until = pres_mono_ms() + 10000, next = 0;
    uint64_t last_beat = 0;  //  wall ms, read before the last beat
    bool ended = false;
    while (!ended && pres_mono_ms() < until) {
        if (pres_mono_ms() >= next) {
            last_beat = (uint64_t)pres_now_ms();
            CHECK(it_send_heartbeat(pub, "twice", "laptop", NULL) == 0);
            next = pres_mono_ms() + 500;
        }
        if (it_recv(sub, &ch, NULL, 50) == 1 && !strcmp(ch.user, "twice")) {
            CHECK_STR(ch.session, "phone");
            CHECK_STR(pres_reason_name(ch.reason), "timeout");
            CHECK_STR(pres_state_name(ch.state), "online");
            CHECK_EQ(ch.sessions, 1);
            s_check_late(&ch, l1.deadline);
            ended = true;
        }
    }
    CHECK(ended);
    char st[16], acc[16];
    uint64_t n, ls;
    CHECK_EQ(it_get_user(&cfg, "twice", st, &n, &ls, acc), 0);
    if (strcmp(st, "online") != 0) {
        //  The beats stopped with the loop: a test preempted for 1.5 s
        //  or more sees the laptop expire too, and only then is that right.
        fprintf(stderr, "  twice is %s %lld ms after the last beat\n", st,
                (long long)(pres_now_ms() - (int64_t)last_beat));
        CHECK((uint64_t)pres_now_ms() >= last_beat + 2000);
        s_expect(sub, "twice", "offline", "timeout", 0, 10000, NULL);
        return;
    }
    CHECK_EQ(n, 1);
    CHECK(it_send_logout(pub, "twice", "laptop") == 0);
    s_expect(sub, "twice", "offline", "logout", 0, 10000, NULL);
}

int
main(void)
{
    CHECK(it_env_init(&env, "sweeper-expiry") == 0);
    it_env_set(&env, "timeout", "2");
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    CHECK(it_sweeper_start(&env, &sweeper, 20000) == 0);
    zsock_t *sub;
    pres_pub_t *pub;
    CHECK(it_bus_open(&cfg, "", "gateway-test-1", &sub, &pub) == 0);

    test_silence(sub, pub);
    test_heartbeats(sub, pub);
    test_two_sessions(sub, pub);

    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    //  The sweeper stops cleanly on SIGTERM and says what it did.
    CHECK_EQ(it_proc_stop(&sweeper, 10000), 0);
    CHECK(it_proc_log_has(&sweeper, "expires sent"));
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    printf("it.sweeper_expiry: ok\n");
    return 0;
}

/*  it.broker_grace: the real broker and sweeper with timeout = 1 s and
    grace = 2 s. A session that stops beating keeps its user online
    through the grace, then comes due (a deadline notice carrying its
    deadline) and yields exactly one change, reason timeout, at deadline +
    grace (within 1 s); a session that beats again within
    the grace goes on with nothing published (counted as a suppressed
    flap). A logout is never held by grace. */
#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t broker, sweeper;
static pres_config_t cfg;

static void
s_state(const char *user, const char *want)
{
    char st[16], acc[16];
    uint64_t n, ls;
    CHECK(it_get_user(&cfg, user, st, &n, &ls, acc) == 0);
    CHECK_STR(st, want);
}

//  user is online while the grace lasts (until end, wall ms). A busy box
//  may answer only after the end: then offline is right too.
static void
s_online_in_grace(const char *user, uint64_t end)
{
    char st[16], acc[16];
    uint64_t n, ls;
    CHECK(it_get_user(&cfg, user, st, &n, &ls, acc) == 0);
    if (strcmp(st, "online") != 0) {
        fprintf(stderr, "%s is %s: the reply came after the grace\n", user, st);
        CHECK((uint64_t)pres_now_ms() >= end);
    }
}

int
main(void)
{
    CHECK(it_env_init(&env, "broker-grace") == 0);
    it_env_set(&env, "timeout", "1");
    it_env_set(&env, "grace", "2");
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    CHECK(it_sweeper_start(&env, &sweeper, 20000) == 0);
    zsock_t *sub;
    pres_pub_t *pub;
    CHECK(it_bus_open(&cfg, "", "gateway-grace-1", &sub, &pub) == 0);

    //  1. No heartbeat: online through the grace, then one timeout.
    pres_change_t ch;
    CHECK(it_send_login(pub, "gina", "g1") == 0);
    CHECK(it_wait_change(sub, "gina", &ch, 10000) == 0);
    uint32_t n = 0;
    uint64_t deadline = ch.deadline;
    CHECK(deadline >= ch.at + 1000);
    //  The broker's wheel marks her grace at the deadline, silently: she
    //  stays online through it.
    IT_POLL_UNTIL((uint64_t)pres_now_ms() >= deadline + 500, 5000);
    s_online_in_grace("gina", deadline + 2000);
    //  At its end the broker asks for her expire: a due notice carrying
    //  her deadline; the sweeper's expire ends her session.
    pres_deadline_t dl;
    CHECK(it_wait_deadline(sub, "gina", &dl, 10000) == 0);
    CHECK_EQ(dl.deadline, deadline);
    CHECK((uint64_t)pres_now_ms() >= deadline + 2000);
    CHECK(it_wait_change(sub, "gina", &ch, 10000) == 0);
    CHECK_STR(pres_reason_name(ch.reason), "timeout");
    CHECK_STR(pres_state_name(ch.state), "offline");
    CHECK(ch.at >= deadline + 2000);
    CHECK(ch.at <= deadline + 2000 + 1000);
    uint64_t gina_seq = ch.seq;
    //  Exactly one: nothing more about gina (an absence: this wait can
    //  only miss a late duplicate, never fail a correct broker; the
    //  history below counts what the broker made).
    CHECK(it_wait_change(sub, "gina", &ch, 1500) != 0);
    s_state("gina", "offline");
    pres_query_t h = {.op = PRES_Q_HISTORY};
    strcpy(h.user, "gina");
    zframe_t *r = it_query(&cfg, &h);
    CHECK(r);
    CHECK(it_mp_count(r, "entries", &n) == 0);
    CHECK_EQ(n, 2);
    CHECK_STR(it_str(r, "entries.0.reason"), "timeout");
    CHECK_STR(it_str(r, "entries.1.reason"), "login");
    zframe_destroy(&r);
    zframe_t *st = NULL;
    {
        pres_query_t q = {.op = PRES_Q_STATS};
        st = it_query(&cfg, &q);
        CHECK(st);
        CHECK(it_mp_count(st, "quality.timeout_lateness_ms.counts", &n) == 0);
        uint64_t total = 0;
        for (uint32_t i = 0; i < n; i++) {
            char p[64];
            snprintf(p, sizeof(p), "quality.timeout_lateness_ms.counts.%u", i);
            total += it_uint(st, p);
        }
        CHECK_EQ(total, 1);
        CHECK_EQ(it_uint(st, "quality.transitions.timeout"), 1);
        CHECK_EQ(it_uint(st, "quality.flaps_suppressed"), 0);
        zframe_destroy(&st);
    }

    //  2. A heartbeat within the grace: the session goes on, unpublished.
    CHECK(it_send_login(pub, "hank", "h1") == 0);
    CHECK(it_wait_change(sub, "hank", &ch, 10000) == 0);
    deadline = ch.deadline;
    uint64_t login_seq = ch.seq;
    IT_POLL_UNTIL((uint64_t)pres_now_ms() >= deadline + 300, 5000);
    CHECK(it_send_heartbeat(pub, "hank", "h1", NULL) == 0);
    //  The beat is applied (a flap suppressed) ...
    CHECK_EQ(it_wait_stat(&cfg, "quality.flaps_suppressed", 1, 10000), 1);
    //  ... and past the old end of the grace, and then some, he is still
    //  online with no change about him (an absence: the history below
    //  counts what the broker made).
    while ((uint64_t)pres_now_ms() < deadline + 2000 + 500)
        CHECK(it_wait_change(sub, "hank", &ch, 100) != 0);
    s_state("hank", "online");
    //  He beats on; then a logout is published at once.
    CHECK(it_send_heartbeat(pub, "hank", "h1", NULL) == 0);
    CHECK(it_send_logout(pub, "hank", "h1") == 0);
    CHECK(it_wait_change(sub, "hank", &ch, 10000) == 0);
    CHECK_STR(pres_reason_name(ch.reason), "logout");
    CHECK(ch.seq > login_seq && ch.seq > gina_seq);
    //  Nothing was published about hank between his login and logout.
    strcpy(h.user, "hank");
    r = it_query(&cfg, &h);
    CHECK(r);
    CHECK(it_mp_count(r, "entries", &n) == 0);
    CHECK_EQ(n, 2);
    CHECK_STR(it_str(r, "entries.0.reason"), "logout");
    CHECK_EQ(it_uint(r, "entries.1.seq"), login_seq);
    zframe_destroy(&r);

    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    CHECK_EQ(it_proc_stop(&sweeper, 5000), 0);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    printf("it.broker_grace: ok\n");
    return 0;
}

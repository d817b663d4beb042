/*  it.broker_audit: audit, history and series over REQ, and the
    presence-quality counters in stats. Account changes made on the admin
    endpoint (with a `by`, as the gateway sends, and without one, as
    presencectl does: the peer identity) are kept durably (across a
    restart) with at, by, old, new and reason, newest first; history lists
   transitions newest first with seq, at, state, prev, reason and keeps at least
   100 per user; series has one point per minute with online and away. */
#include "itutil.h"
#include "pres_mp.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t broker;
static pres_config_t cfg;

static bool
s_ok(zframe_t *r)
{
    bool ok = false;
    return r && it_mp_bool(r, "ok", &ok) == 0 && ok;
}

static void
s_account(const char *user, pres_account_t status, const char *reason,
          const char *by)
{
    pres_query_t q = {.op = PRES_Q_ACCOUNT, .status = status};
    strcpy(q.user, user);
    snprintf(q.reason, sizeof(q.reason), "%s", reason);
    snprintf(q.by, sizeof(q.by), "%s", by);
    zframe_t *r = it_admin(&cfg, &q);
    CHECK(s_ok(r));
    zframe_destroy(&r);
}

static zframe_t *
s_entries(pres_query_op_t op, const char *user, uint32_t limit)
{
    pres_query_t q = {.op = op, .limit = limit};
    strcpy(q.user, user);
    zframe_t *r = it_query(&cfg, &q);
    CHECK(s_ok(r));
    return r;
}

static void
s_check_audit(void)
{
    zframe_t *r = s_entries(PRES_Q_AUDIT, "mal", 0);
    uint32_t n = 0;
    CHECK(it_mp_count(r, "entries", &n) == 0);
    CHECK_EQ(n, 3);
    //  Newest first: active (ops2), banned (the peer itself), suspended.
    CHECK_STR(it_str(r, "entries.0.old"), "banned");
    CHECK_STR(it_str(r, "entries.0.new"), "active");
    CHECK_STR(it_str(r, "entries.0.by"), "ops2");
    CHECK_STR(it_str(r, "entries.0.reason"), "");
    CHECK_STR(it_str(r, "entries.1.old"), "suspended");
    CHECK_STR(it_str(r, "entries.1.new"), "banned");
    CHECK(strncmp(it_str(r, "entries.1.by"), "unix:", 5) == 0);
    CHECK_STR(it_str(r, "entries.1.reason"), "fraud");
    CHECK_STR(it_str(r, "entries.2.old"), "active");
    CHECK_STR(it_str(r, "entries.2.new"), "suspended");
    CHECK_STR(it_str(r, "entries.2.by"), "ops");
    CHECK_STR(it_str(r, "entries.2.reason"), "spam");
    CHECK(it_uint(r, "entries.0.at") >= it_uint(r, "entries.1.at"));
    CHECK(it_uint(r, "entries.1.at") >= it_uint(r, "entries.2.at"));
    zframe_destroy(&r);
    r = s_entries(PRES_Q_AUDIT, "mal", 1);
    CHECK(it_mp_count(r, "entries", &n) == 0);
    CHECK_EQ(n, 1);
    zframe_destroy(&r);
    r = s_entries(PRES_Q_AUDIT, "nobody", 0);
    CHECK(it_mp_count(r, "entries", &n) == 0);
    CHECK_EQ(n, 0);
    zframe_destroy(&r);
}

int
main(void)
{
    CHECK(it_env_init(&env, "broker-audit") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    zsock_t *sub;
    pres_pub_t *pub;
    CHECK(it_bus_open(&cfg, "presence.", "gateway-audit-1", &sub, &pub) == 0);

    //  mal is online, suspended (forced offline), banned, reactivated.
    pres_change_t ch;
    CHECK(it_send_login(pub, "mal", "m1") == 0);
    CHECK(it_wait_change(sub, "mal", &ch, 10000) == 0);
    uint64_t login_seq = ch.seq;
    s_account("mal", PRES_ACC_SUSPENDED, "spam", "ops");
    CHECK(it_wait_change(sub, "mal", &ch, 10000) == 0);
    s_account("mal", PRES_ACC_BANNED, "fraud", "");
    CHECK(it_wait_change(sub, "mal", &ch, 10000) == 0);
    //  A refused login while banned, and a refused account event (a bus
    //  publisher is no authority): neither is audited.
    CHECK(it_send_login(pub, "mal", "m2") == 0);
    CHECK(it_send_account(pub, "mal", "active") == 0);
    //  Both applied (refused) before the admin reactivates her: the bus
    //  and the admin endpoint are separate connections, with no order
    //  between them.
    CHECK(it_sync(sub, pub, 10000) == 0);
    s_account("mal", PRES_ACC_ACTIVE, "", "ops2");
    CHECK(it_wait_change(sub, "mal", &ch, 10000) == 0);
    CHECK_STR(pres_reason_name(ch.reason), "account");
    s_check_audit();

    //  History: newest first, with seq/at/state/prev/reason.
    zframe_t *r = s_entries(PRES_Q_HISTORY, "mal", 0);
    uint32_t n = 0;
    CHECK(it_mp_count(r, "entries", &n) == 0);
    CHECK_EQ(n, 4);
    CHECK_STR(it_str(r, "entries.0.reason"), "account");
    CHECK_STR(it_str(r, "entries.1.reason"), "banned");
    CHECK_STR(it_str(r, "entries.2.reason"), "suspended");
    CHECK_STR(it_str(r, "entries.2.state"), "offline");
    CHECK_STR(it_str(r, "entries.2.prev"), "online");
    CHECK_STR(it_str(r, "entries.3.reason"), "login");
    CHECK_EQ(it_uint(r, "entries.3.seq"), login_seq);
    CHECK(it_uint(r, "entries.0.seq") > it_uint(r, "entries.1.seq"));
    CHECK(it_uint(r, "entries.3.at") > 0);
    zframe_destroy(&r);

    //  Quality counters.
    pres_query_t sq = {.op = PRES_Q_STATS};
    r = it_query(&cfg, &sq);
    CHECK(s_ok(r));
    CHECK_EQ(it_uint(r, "quality.forced_offline.suspended"), 1);
    CHECK_EQ(it_uint(r, "quality.forced_offline.banned"), 0);
    CHECK_EQ(it_uint(r, "quality.refused.account_not_active"), 1);
    CHECK_EQ(it_uint(r, "quality.refused.account_forbidden"), 1);
    CHECK_EQ(it_uint(r, "quality.transitions.login"), 1);
    CHECK_EQ(it_uint(r, "quality.transitions.suspended"), 1);
    zframe_destroy(&r);

    //  At least 100 transitions kept per user, newest first.
    for (int i = 0; i < 70; i++) {
        CHECK(it_send_login(pub, "tom", "t1") == 0);
        CHECK(it_send_logout(pub, "tom", "t1") == 0);
    }
    for (int i = 0; i < 140; i++)
        CHECK(it_wait_change(sub, "tom", &ch, 10000) == 0);
    uint64_t last_tom = ch.seq;
    r = s_entries(PRES_Q_HISTORY, "tom", 1000);
    CHECK(it_mp_count(r, "entries", &n) == 0);
    CHECK(n >= 100 && n < 140);
    CHECK_EQ(it_uint(r, "entries.0.seq"), last_tom);
    CHECK_STR(it_str(r, "entries.0.reason"), "logout");
    for (uint32_t i = 1; i < n; i++) {
        char p[64];
        snprintf(p, sizeof(p), "entries.%u.seq", i);
        CHECK(it_uint(r, p) < last_tom);
        last_tom = it_uint(r, p);
    }
    zframe_destroy(&r);

    //  Series: online/away per minute; the last point is now.
    CHECK(it_send_login(pub, "una", "u1") == 0);
    CHECK(it_send_heartbeat(pub, "una", "u1", "away") == 0);
    CHECK(it_wait_change(sub, "una", &ch, 10000) == 0);
    CHECK(it_wait_change(sub, "una", &ch, 10000) == 0);
    pres_query_t s = {.op = PRES_Q_SERIES, .minutes = 60};
    r = it_query(&cfg, &s);
    CHECK(s_ok(r));
    CHECK(it_mp_count(r, "points", &n) == 0);
    CHECK(n >= 1 && n <= 60);
    char p[64];
    snprintf(p, sizeof(p), "points.%u.away", n - 1);
    CHECK_EQ(it_uint(r, p), 1);
    snprintf(p, sizeof(p), "points.%u.online", n - 1);
    CHECK_EQ(it_uint(r, p), 0);
    snprintf(p, sizeof(p), "points.%u.at", n - 1);
    uint64_t at = it_uint(r, p);
    CHECK_EQ(at % 60000, 0);
    CHECK(at <= (uint64_t)pres_now_ms() &&
          at + 60000 > (uint64_t)pres_now_ms());
    zframe_destroy(&r);
    //  Out of range: 0 and 43,201 minutes.
    uint8_t raw[64];
    for (int bad = 0; bad < 2; bad++) {
        pres_mp_writer_t w;
        pres_mp_writer_init(&w, raw, sizeof(raw));
        msgpack_pack_map(&w.pk, 2);
        pres_mp_pack_kv_str(&w, "op", "series");
        pres_mp_pack_kv_uint(&w, "minutes", bad ? 43201 : 0);
        r = it_query_raw(&cfg, raw, w.len);
        CHECK(r && !s_ok(r));
        zframe_destroy(&r);
    }

    //  Durable: after a restart the audit, history and series are there.
    pres_pub_destroy(&pub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    s_check_audit();
    r = s_entries(PRES_Q_HISTORY, "mal", 0);
    CHECK(it_mp_count(r, "entries", &n) == 0);
    CHECK_EQ(n, 4);
    zframe_destroy(&r);
    r = it_query(&cfg, &s);
    CHECK(s_ok(r));
    CHECK(it_mp_count(r, "points", &n) == 0);
    CHECK(n >= 1);
    zframe_destroy(&r);

    zsock_destroy(&sub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    printf("it.broker_audit: ok\n");
    return 0;
}

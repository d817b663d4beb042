/*  unit.broker_query: query replies from an in-process state on a temp
    store: get (resident and stored users), list pages with cursor and
    filters, stats counters, snapshot of the live users with deadlines,
    the account hand-over, and an error reply (never silence) for every
    malformed request. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_query.h"
#include "broker_state.h"
#include "broker_store.h"
#include "pres_mp.h"
#include "storeutil.h"
#include "testutil.h"

static char s_dir[64];
static broker_state_t *s_state;
static msgpack_sbuffer s_out;
static uint64_t s_seq;

static void
s_apply(pres_ev_type_t type, const char *user, const char *session,
        uint64_t now)
{
    pres_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    snprintf(ev.user, sizeof(ev.user), "%s", user);
    snprintf(ev.session, sizeof(ev.session), "%s", session ? session : "");
    snprintf(ev.src, sizeof(ev.src), "gateway-q-1");
    ev.seq = ++s_seq;
    broker_state_begin(s_state, now);
    CHECK_EQ(broker_state_apply(s_state, &ev), 0);
    CHECK_EQ(broker_state_commit(s_state), 0);
    broker_state_outbox_clear(s_state);
}

//  Ask q (encoded) and return the reply's bytes in s_out.
static int
s_ask(const pres_query_t *q)
{
    uint8_t buf[PRES_MSG_MAX];
    size_t len = pres_query_encode(q, buf, sizeof(buf));
    CHECK(len > 0);
    msgpack_sbuffer_clear(&s_out);
    pres_query_t got;
    return broker_query_answer(s_state, buf, len, &got, &s_out);
}

static uint64_t
s_uint(const char *path)
{
    uint64_t v = 0;
    if (pres_mp_find_uint(s_out.data, s_out.size, path, &v)) {
        fprintf(stderr, "no uint at %s\n", path);
        CHECK(!"reply field missing");
    }
    return v;
}

static const char *
s_str(const char *path)
{
    static char buf[PRES_REASON_MAX + 1];
    pres_mp_reader_t r;
    const char *s;
    uint32_t n;
    CHECK_EQ(pres_mp_find(s_out.data, s_out.size, path, &r), 0);
    CHECK_EQ(pres_mp_read_str(&r, &s, &n), 0);
    CHECK(n < sizeof(buf));
    memcpy(buf, s, n);
    buf[n] = 0;
    return buf;
}

static bool
s_ok(void)
{
    pres_mp_reader_t r;
    bool ok = false;
    CHECK_EQ(pres_mp_find(s_out.data, s_out.size, "ok", &r), 0);
    CHECK_EQ(pres_mp_read_bool(&r, &ok), 0);
    return ok;
}

static bool
s_has(const char *path)
{
    pres_mp_reader_t r;
    return pres_mp_find(s_out.data, s_out.size, path, &r) == 0;
}

static uint32_t
s_count(const char *path)
{
    pres_mp_reader_t r;
    uint32_t n = 0;
    CHECK_EQ(pres_mp_find(s_out.data, s_out.size, path, &r), 0);
    CHECK_EQ(pres_mp_read_array(&r, &n), 0);
    return n;
}

static void
test_get(void)
{
    pres_query_t q = {.op = PRES_Q_GET};
    strcpy(q.user, "ann");  //  resident, online with 2 sessions
    CHECK_EQ(s_ask(&q), 0);
    CHECK(s_ok());
    CHECK_STR(s_str("user"), "ann");
    CHECK_STR(s_str("state"), "online");
    CHECK_EQ(s_uint("sessions"), 2);
    CHECK_EQ(s_uint("last_seen"), 1001);
    CHECK_STR(s_str("account"), "active");
    strcpy(q.user, "cid");  //  logged out: only in LMDB
    CHECK_EQ(s_ask(&q), 0);
    CHECK(s_ok());
    CHECK_STR(s_str("state"), "offline");
    CHECK_EQ(s_uint("sessions"), 0);
    CHECK_EQ(s_uint("last_seen"), 1004);
    strcpy(q.user, "nobody");
    CHECK_EQ(s_ask(&q), 0);
    CHECK(!s_ok());
    CHECK_STR(s_str("error"), "not found");
}

static void
test_list(void)
{
    pres_query_t q = {.op = PRES_Q_LIST, .limit = 2};
    CHECK_EQ(s_ask(&q), 0);
    CHECK(s_ok());
    CHECK_EQ(s_count("users"), 2);
    CHECK_STR(s_str("users.0.user"), "ann");
    CHECK_STR(s_str("users.1.user"), "bea");
    CHECK_STR(s_str("next"), "bea");
    strcpy(q.cursor, "bea");
    CHECK_EQ(s_ask(&q), 0);
    CHECK_EQ(s_count("users"), 2);
    CHECK_STR(s_str("users.0.user"), "cid");
    CHECK_STR(s_str("users.1.user"), "dot");
    CHECK(!s_has("next"));  //  last page
    //  State filter (live index) and account filter.
    pres_query_t f = {.op = PRES_Q_LIST,
                      .has_state = true,
                      .state = PRES_ONLINE,
                      .limit = 10};
    CHECK_EQ(s_ask(&f), 0);
    CHECK_EQ(s_count("users"), 2);  //  ann, dot
    CHECK_STR(s_str("users.1.user"), "dot");
    f.state = PRES_AWAY;
    CHECK_EQ(s_ask(&f), 0);
    CHECK_EQ(s_count("users"), 1);
    CHECK_STR(s_str("users.0.user"), "bea");
    pres_query_t a = {.op = PRES_Q_LIST,
                      .has_account = true,
                      .account = PRES_ACC_BANNED,
                      .limit = 10};
    CHECK_EQ(s_ask(&a), 0);
    CHECK_EQ(s_count("users"), 1);
    CHECK_STR(s_str("users.0.user"), "cid");
}

static void
test_stats_snapshot(void)
{
    pres_query_t q = {.op = PRES_Q_STATS};
    CHECK_EQ(s_ask(&q), 0);
    CHECK(s_ok());
    CHECK_EQ(s_uint("seq"), broker_state_meta(s_state)->seq);
    CHECK_EQ(s_uint("users.online"), 2);
    CHECK_EQ(s_uint("users.away"), 1);
    CHECK_EQ(s_uint("users.offline"), 1);
    CHECK_EQ(s_uint("accounts.active"), 3);
    CHECK_EQ(s_uint("accounts.banned"), 1);
    CHECK_EQ(s_uint("sessions"), 4);
    CHECK_EQ(s_uint("events.applied"), s_seq);
    CHECK_EQ(s_uint("events.lost"), 0);
    CHECK_STR(s_str("publishers.0.src"), "gateway-q-1");
    CHECK_EQ(s_uint("publishers.0.seq"), s_seq);

    q.op = PRES_Q_SNAPSHOT;
    CHECK_EQ(s_ask(&q), 0);
    CHECK(s_ok());
    CHECK_EQ(s_uint("seq"), broker_state_meta(s_state)->seq);
    uint32_t n = s_count("users");
    CHECK_EQ(n, 3);  //  ann, bea, dot: every non-offline user
    bool saw_bea = false;
    for (uint32_t i = 0; i < n; i++) {
        char path[64];
        snprintf(path, sizeof(path), "users.%u.user", i);
        if (strcmp(s_str(path), "bea") != 0)
            continue;
        saw_bea = true;
        snprintf(path, sizeof(path), "users.%u.live.0.session", i);
        CHECK_STR(s_str(path), "b1");
        snprintf(path, sizeof(path), "users.%u.live.0.deadline", i);
        CHECK_EQ(s_uint(path), 1002 + 120000);
    }
    CHECK(saw_bea);

    //  In pages of one: three pages, `next` on all but the last, each
    //  user once.
    char seen[3][PRES_ID_MAX + 1];
    q.limit = 1;
    q.cursor[0] = '\0';
    for (int page = 0; page < 3; page++) {
        CHECK_EQ(s_ask(&q), 0);
        CHECK(s_ok());
        CHECK_EQ(s_count("users"), 1);
        snprintf(seen[page], sizeof seen[page], "%s", s_str("users.0.user"));
        for (int k = 0; k < page; k++)
            CHECK(strcmp(seen[k], seen[page]) != 0);
        CHECK_EQ(s_has("next"), page < 2);
        if (page < 2)
            snprintf(q.cursor, sizeof q.cursor, "%s", s_str("next"));
    }
    q.limit = 2;  //  a page of two, then one
    q.cursor[0] = '\0';
    CHECK_EQ(s_ask(&q), 0);
    CHECK_EQ(s_count("users"), 2);
    snprintf(q.cursor, sizeof q.cursor, "%s", s_str("next"));
    CHECK_EQ(s_ask(&q), 0);
    CHECK_EQ(s_count("users"), 1);
    CHECK(!s_has("next"));
    strcpy(q.cursor, "4000000000");  //  past the end: an empty last page
    CHECK_EQ(s_ask(&q), 0);
    CHECK(s_ok());
    CHECK_EQ(s_count("users"), 0);
    CHECK(!s_has("next"));
    strcpy(q.cursor, "ann");  //  not a cursor the broker gave
    CHECK_EQ(s_ask(&q), 0);
    CHECK(!s_ok());
    CHECK_STR(s_str("error"), "bad cursor");
}

static void
test_account_and_errors(void)
{
    //  account on the query socket: refused (the admin endpoint only).
    pres_query_t q = {.op = PRES_Q_ACCOUNT, .status = PRES_ACC_SUSPENDED};
    strcpy(q.user, "ann");
    CHECK_EQ(s_ask(&q), 0);
    CHECK(!s_ok());
    CHECK_STR(s_str("error"), "forbidden");
    //  On the admin endpoint: handed back to the caller (1), nothing
    //  written; the server applies it and answers.
    uint8_t buf[PRES_MSG_MAX];
    size_t len = pres_query_encode(&q, buf, sizeof(buf));
    CHECK(len > 0);
    msgpack_sbuffer_clear(&s_out);
    pres_query_t got;
    CHECK_EQ(broker_query_admin(buf, len, &got, &s_out), 1);
    CHECK_EQ(s_out.size, 0);
    CHECK_STR(got.user, "ann");
    CHECK_EQ(got.status, PRES_ACC_SUSPENDED);
    q.op = PRES_Q_STATS;  //  anything else is an error there
    len = pres_query_encode(&q, buf, sizeof(buf));
    CHECK_EQ(broker_query_admin(buf, len, &got, &s_out), 0);
    CHECK(!s_ok());
    msgpack_sbuffer_clear(&s_out);
    q.op = PRES_Q_ACCOUNT;
    broker_query_account_reply(&q, 0, 77, &s_out);
    CHECK(s_ok());
    CHECK_STR(s_str("account"), "suspended");
    CHECK_EQ(s_uint("seq"), 77);
    msgpack_sbuffer_clear(&s_out);
    broker_query_account_reply(&q, -1, 0, &s_out);
    CHECK(!s_ok());

    //  Malformed requests: an error reply each.
    static const struct {
        const char *bytes;
        size_t len;
    } bad[] = {
        {"", 0},                                //  empty
        {"\xc1", 1},                            //  never-used byte
        {"\x91\x01", 2},                        //  array, not a map
        {"\x81\xa2op\xa4nope", 9},              //  unknown op
        {"\x81\xa2op\xa3get", 8},               //  get without user
        {"\x82\xa2op\xa3get\xa4user\x01", 14},  //  user not a string
        {"\x81\xa2op", 4},                      //  truncated
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        msgpack_sbuffer_clear(&s_out);
        CHECK_EQ(broker_query_answer(s_state, bad[i].bytes, bad[i].len, &got,
                                     &s_out),
                 0);
        CHECK(s_out.size > 0);
        CHECK(!s_ok());
        CHECK(s_has("error"));
    }
}

int
main(void)
{
    st_tmpdir(s_dir, sizeof(s_dir), "query");
    pres_config_t cfg;
    pres_config_defaults(&cfg);
    CHECK_EQ(pres_config_finish(&cfg), 0);
    broker_store_t *store;
    st_open(s_dir, 1 << 20, &cfg, &store, &s_state);
    msgpack_sbuffer_init(&s_out);
    //  ann online (2 sessions), bea away, cid offline and banned, dot online.
    s_apply(PRES_EV_LOGIN, "ann", "a1", 1000);
    s_apply(PRES_EV_LOGIN, "ann", "a2", 1001);
    s_apply(PRES_EV_LOGIN, "bea", "b1", 1002);
    pres_event_t hb = {
        .type = PRES_EV_HEARTBEAT, .has_state = true, .state = PRES_AWAY};
    strcpy(hb.user, "bea");
    strcpy(hb.session, "b1");
    strcpy(hb.src, "gateway-q-1");
    hb.seq = ++s_seq;
    broker_state_begin(s_state, 1002);
    CHECK_EQ(broker_state_apply(s_state, &hb), 0);
    CHECK_EQ(broker_state_commit(s_state), 0);
    s_apply(PRES_EV_LOGIN, "cid", "c1", 1003);
    s_apply(PRES_EV_LOGOUT, "cid", NULL, 1004);
    broker_state_begin(s_state, 1005);
    CHECK_EQ(
        broker_state_account(s_state, "cid", PRES_ACC_BANNED, "", "test", NULL),
        0);
    CHECK_EQ(broker_state_commit(s_state), 0);
    s_apply(PRES_EV_LOGIN, "dot", "d1", 1006);

    test_get();
    test_list();
    test_stats_snapshot();
    test_account_and_errors();

    msgpack_sbuffer_destroy(&s_out);
    st_close(&store, &s_state);
    st_rmtree(s_dir);
    printf("unit.broker_query: ok\n");
    return 0;
}

/*  unit.broker_bounds: the broker's per-user and per-publisher bounds on
    broker_state directly. 2,000 logins of one user leave at most
    max_sessions_per_user live sessions, in memory and in LMDB; a change
    of a user writes only the session it changed (its cost is printed for
    1 and 16 sessions: a figure, not an assertion); the publisher table
    stays within publishers_max and forgets idle entries, in LMDB too. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker_pubs.h"
#include "broker_state.h"
#include "broker_store.h"
#include "pres_log.h"
#include "storeutil.h"
#include "testutil.h"

typedef struct {
    char dir[64];
    pres_config_t cfg;
    broker_store_t *store;
    broker_state_t *state;
    uint64_t now;
    uint64_t seq;
} s_env_t;

static void
s_open(s_env_t *e)
{
    st_open(e->dir, 64 << 20, &e->cfg, &e->store, &e->state);
}

static void
s_close(s_env_t *e)
{
    st_close(&e->store, &e->state);
}

static void
s_init(s_env_t *e, const char *name)
{
    st_tmpdir(e->dir, sizeof(e->dir), name);
    pres_config_defaults(&e->cfg);
    CHECK(pres_config_finish(&e->cfg) == 0);
    e->now = 1700000000000ULL;
    s_open(e);
}

static void
s_fini(s_env_t *e)
{
    s_close(e);
    st_rmtree(e->dir);
}

static void
s_event(s_env_t *e, pres_ev_type_t type, const char *src, const char *user,
        const char *session, int state)
{
    pres_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    snprintf(ev.src, sizeof(ev.src), "%s", src);
    ev.seq = ++e->seq;
    snprintf(ev.user, sizeof(ev.user), "%s", user);
    snprintf(ev.session, sizeof(ev.session), "%s", session);
    if (state >= 0) {
        ev.has_state = true;
        ev.state = (pres_state_t)state;
    }
    CHECK_EQ(broker_state_apply(e->state, &ev), 0);
}

static int
s_count_session(const char *user, size_t ulen, const char *session, size_t slen,
                const broker_session_rec_t *rec, void *arg)
{
    (void)user;
    (void)ulen;
    (void)session;
    (void)slen;
    (void)rec;
    (*(int *)arg)++;
    return 0;
}

static int
s_stored_sessions(s_env_t *e)
{
    int n = 0;
    CHECK(broker_store_read_begin(e->store) == 0);
    CHECK(broker_store_each_session(e->store, s_count_session, &n) == 0);
    broker_store_read_end(e->store);
    return n;
}

static void
s_session_cap(void)
{
    s_env_t e;
    s_init(&e, "cap");
    char sid[32];
    //  2,000 logins of one user, in batches of 100.
    for (int b = 0; b < 20; b++) {
        broker_state_begin(e.state, e.now += 10);
        for (int i = 0; i < 100; i++) {
            snprintf(sid, sizeof(sid), "s%04d", b * 100 + i);
            s_event(&e, PRES_EV_LOGIN, "gw", "mallory", sid, -1);
        }
        CHECK(broker_state_commit(e.state) == 0);
    }
    //  The outbox (never cleared here): 16 logins, then per login beyond
    //  the cap the ended session (logout, no deadline, 15 left) and the
    //  login (16).
    size_t n = broker_state_outbox_count(e.state);
    CHECK_EQ(n, 16 + 2 * (2000 - 16));
    for (size_t i = 16; i < n; i += 2) {
        pres_change_t ended, login;
        const char *topic;
        size_t tlen, blen;
        const void *body;
        broker_state_outbox_get(e.state, i, &topic, &tlen, &body, &blen);
        CHECK(pres_change_decode(&ended, body, blen, NULL) == 0);
        broker_state_outbox_get(e.state, i + 1, &topic, &tlen, &body, &blen);
        CHECK(pres_change_decode(&login, body, blen, NULL) == 0);
        CHECK_EQ(ended.reason, PRES_RSN_LOGOUT);
        CHECK_EQ(ended.deadline, 0);
        CHECK_EQ(ended.sessions, 15);
        CHECK_EQ(ended.state, PRES_ONLINE);
        CHECK(strcmp(ended.session, login.session) != 0);
        CHECK_EQ(login.reason, PRES_RSN_LOGIN);
        CHECK_EQ(login.sessions, 16);
        CHECK(login.deadline > 0);
        CHECK_EQ(login.seq, ended.seq + 1);
    }
    broker_live_t *live = broker_state_live(e.state);
    uint32_t u = broker_live_user_find(live, "mallory", 7);
    CHECK(u != BROKER_LIVE_NONE);
    CHECK_EQ(broker_live_user(live, u)->nsessions, 16);
    CHECK_EQ(broker_state_meta(e.state)->sessions, 16);
    CHECK_EQ(broker_live_session_count(live), 16);
    //  The newest logins stayed; the oldest were ended.
    CHECK(broker_live_session_find(live, u, "s1999", 5) != BROKER_LIVE_NONE);
    CHECK(broker_live_session_find(live, u, "s0000", 5) == BROKER_LIVE_NONE);
    CHECK_EQ(s_stored_sessions(&e), 16);
    //  And after a reopen.
    s_close(&e);
    s_open(&e);
    CHECK_EQ(broker_state_meta(e.state)->sessions, 16);
    CHECK_EQ(s_stored_sessions(&e), 16);
    s_fini(&e);
}

static double
s_secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

//  Per-change cost with `sessions` live sessions per user: 1,000 users,
//  each flips one session's state once per batch (a durable change).
//  *puts gets the LMDB records written per change (deterministic).
static double
s_change_cost(int sessions, double *puts)
{
    s_env_t e;
    s_init(&e, "cost");
    char user[32], sid[32];
    enum { USERS = 1000, ROUNDS = 10 };
    broker_state_begin(e.state, e.now += 10);
    for (int i = 0; i < USERS; i++)
        for (int s = 0; s < sessions; s++) {
            snprintf(user, sizeof(user), "u%04d", i);
            snprintf(sid, sizeof(sid), "s%02d", s);
            s_event(&e, PRES_EV_LOGIN, "gw", user, sid, -1);
        }
    CHECK(broker_state_commit(e.state) == 0);
    double t0 = s_secs();
    uint64_t puts0 = broker_store_puts(e.store);
    for (int r = 0; r < ROUNDS; r++) {
        broker_state_begin(e.state, e.now += 10);
        for (int i = 0; i < USERS; i++) {
            snprintf(user, sizeof(user), "u%04d", i);
            s_event(&e, PRES_EV_HEARTBEAT, "gw", user, "s00",
                    r % 2 ? PRES_ONLINE : PRES_AWAY);
        }
        CHECK(broker_state_commit(e.state) == 0);
    }
    double per_change = (s_secs() - t0) / (USERS * ROUNDS) * 1e6;
    *puts = (double)(broker_store_puts(e.store) - puts0) / (USERS * ROUNDS);
    CHECK_EQ(broker_state_meta(e.state)->sessions,
             (uint64_t)USERS * (uint64_t)sessions);
    s_fini(&e);
    return per_change;
}

static void
s_publishers(void)
{
    s_env_t e;
    s_init(&e, "pubs");
    s_close(&e);
    e.cfg.publishers_max = 64;
    e.cfg.publishers_idle = 60;
    s_open(&e);
    char src[32];
    //  3,000 one-shot publishers.
    for (int b = 0; b < 30; b++) {
        broker_state_begin(e.state, e.now += 10);
        for (int i = 0; i < 100; i++) {
            snprintf(src, sizeof(src), "oneshot-%04d", b * 100 + i);
            s_event(&e, PRES_EV_HEARTBEAT, src, "u", "s", -1);
        }
        CHECK(broker_state_commit(e.state) == 0);
        CHECK(broker_pubs_count(broker_state_pubs(e.state)) <= 64);
    }
    CHECK(broker_state_flush(e.state) == 0);
    size_t kept = broker_pubs_count(broker_state_pubs(e.state));
    CHECK(kept <= 64 && kept >= 16);
    //  LMDB holds the same table (forgotten entries were deleted).
    s_close(&e);
    s_open(&e);
    CHECK_EQ(broker_pubs_count(broker_state_pubs(e.state)), kept);
    //  Idle for longer than publishers_idle: forgotten.
    broker_pubs_t *pubs = broker_state_pubs(e.state);
    CHECK_EQ(broker_pubs_expire(pubs, (uint64_t)pres_now_ms() + 61000), kept);
    CHECK_EQ(broker_pubs_count(pubs), 0);
    s_fini(&e);
}

int
main(void)
{
    s_session_cap();
    s_publishers();
    double puts1, puts16;
    double one = s_change_cost(1, &puts1);
    double sixteen = s_change_cost(16, &puts16);
    printf("per-change cost (1,000 users, batch commit incl. fsync): "
           "%.2f us and %.2f LMDB puts with 1 session, %.2f us and %.2f "
           "puts with 16 sessions per user\n",
           one, puts1, sixteen, puts16);
    //  Not a timing: the records a change writes must not grow with the
    //  user's session count.
    CHECK(puts16 <= puts1 + 0.5);
    return 0;
}

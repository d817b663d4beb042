/*  unit.broker_state: the presence rules in process, on a temp store, with
    a synthetic clock: decoded events in, the outbox (changes and deadline
    notices) checked message by message. No sockets, no sleeps. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_state.h"
#include "broker_store.h"
#include "storeutil.h"
#include "testutil.h"

static char s_dir[64];
static pres_config_t s_cfg;
static broker_store_t *s_store;
static broker_state_t *s_state;
static uint64_t s_pub_seq;  //  our publisher's seq
static size_t s_next;       //  next outbox message to check

static void
s_open(void)
{
    st_open(s_dir, 1 << 20, &s_cfg, &s_store, &s_state);
}

static void
s_close(void)
{
    st_close(&s_store, &s_state);
}

//  One event as the server hands it over (already decoded).
static int
s_event(pres_ev_type_t type, const char *user, const char *session,
        const char *src)
{
    pres_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    snprintf(ev.user, sizeof(ev.user), "%s", user);
    snprintf(ev.session, sizeof(ev.session), "%s", session ? session : "");
    snprintf(ev.src, sizeof(ev.src), "%s", src ? src : "gateway-unit-1");
    ev.seq = src ? 1 : ++s_pub_seq;
    return broker_state_apply(s_state, &ev);
}

//  A batch of one event at broker time now; returns apply's code.
static int
s_batch(uint64_t now, pres_ev_type_t type, const char *user,
        const char *session)
{
    broker_state_outbox_clear(s_state);
    s_next = 0;
    broker_state_begin(s_state, now);
    int rc = s_event(type, user, session, NULL);
    CHECK_EQ(broker_state_commit(s_state), 0);
    return rc;
}

static int
s_heartbeat(uint64_t now, const char *user, const char *session,
            const char *state)
{
    broker_state_outbox_clear(s_state);
    s_next = 0;
    broker_state_begin(s_state, now);
    pres_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = PRES_EV_HEARTBEAT;
    snprintf(ev.user, sizeof(ev.user), "%s", user);
    snprintf(ev.session, sizeof(ev.session), "%s", session);
    snprintf(ev.src, sizeof(ev.src), "gateway-unit-1");
    ev.seq = ++s_pub_seq;
    if (state) {
        ev.has_state = true;
        CHECK_EQ(pres_state_parse(state, strlen(state), &ev.state), 0);
    }
    int rc = broker_state_apply(s_state, &ev);
    CHECK_EQ(broker_state_commit(s_state), 0);
    return rc;
}

static int
s_expire(uint64_t now, const char *user, const char *session)
{
    broker_state_outbox_clear(s_state);
    s_next = 0;
    broker_state_begin(s_state, now);
    pres_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = PRES_EV_EXPIRE;
    snprintf(ev.user, sizeof(ev.user), "%s", user);
    snprintf(ev.session, sizeof(ev.session), "%s", session);
    snprintf(ev.src, sizeof(ev.src), "sweeper-unit-1");
    ev.seq = 1;  //  a restarted publisher each time: nothing counted lost
    ev.deadline = now;
    int rc = broker_state_apply(s_state, &ev);
    CHECK_EQ(broker_state_commit(s_state), 0);
    return rc;
}

//  The next outbox message, whose topic must be want (wlen bytes): its
//  body, *blen its length.
static const void *
s_next_msg(const char *want, size_t wlen, size_t *blen)
{
    CHECK(s_next < broker_state_outbox_count(s_state));
    const char *topic;
    const void *body;
    size_t tlen;
    broker_state_outbox_get(s_state, s_next++, &topic, &tlen, &body, blen);
    CHECK(tlen == wlen && memcmp(topic, want, tlen) == 0);
    return body;
}

//  The next outbox message must be a change about user; returns it.
static pres_change_t
s_change(const char *user, const char *state, const char *reason,
         uint32_t sessions)
{
    char want[PRES_TOPIC_MAX];
    size_t blen;
    const void *body = s_next_msg(want, pres_change_topic(user, want), &blen);
    pres_change_t ch;
    const char *why = NULL;
    CHECK_EQ(pres_change_decode(&ch, body, blen, &why), 0);
    CHECK_STR(ch.user, user);
    CHECK_STR(pres_state_name(ch.state), state);
    CHECK_STR(pres_reason_name(ch.reason), reason);
    CHECK_EQ(ch.sessions, sessions);
    return ch;
}

//  The next outbox message must be a deadline notice; returns it.
static pres_deadline_t
s_gone(const char *user, const char *session)
{
    char want[PRES_TOPIC_MAX];
    size_t blen;
    const void *body = s_next_msg(want, pres_deadline_topic(user, want), &blen);
    pres_deadline_t dl;
    const char *why = NULL;
    CHECK_EQ(pres_deadline_decode(&dl, body, blen, &why), 0);
    CHECK_STR(dl.user, user);
    CHECK_STR(dl.session, session);
    return dl;
}

//  Due notices handed out by the last s_due().
#define S_DUES_MAX 8
static pres_deadline_t s_dues[S_DUES_MAX];
static size_t s_ndues;

static void
s_collect(const void *topic, size_t tlen, const void *body, size_t blen,
          void *arg)
{
    (void)arg;
    CHECK(s_ndues < S_DUES_MAX);
    pres_deadline_t *dl = &s_dues[s_ndues++];
    const char *why = NULL;
    CHECK_EQ(pres_deadline_decode(dl, body, blen, &why), 0);
    char want[PRES_TOPIC_MAX];
    size_t wlen = pres_deadline_topic(dl->user, want);
    CHECK(tlen == wlen && memcmp(topic, want, tlen) == 0);
}

//  Walk the deadline wheel at now; the number of due notices.
static size_t
s_due(uint64_t now)
{
    s_ndues = 0;
    size_t n = broker_state_due(s_state, now, s_collect, NULL);
    CHECK_EQ(n, s_ndues);
    return n;
}

static void
s_outbox_done(void)
{
    CHECK_EQ(s_next, broker_state_outbox_count(s_state));
}

static const broker_meta_t *
s_meta(void)
{
    return broker_state_meta(s_state);
}

//  Sessions, state and last_seen of a resident user (NONE: not resident).
static const broker_user_t *
s_user(const char *id)
{
    broker_live_t *live = broker_state_live(s_state);
    uint32_t u = broker_live_user_find(live, id, strlen(id));
    return u == BROKER_LIVE_NONE ? NULL : broker_live_user(live, u);
}

static void
test_sessions(void)
{
    //  Login: offline -> online, deadline = at + timeout.
    CHECK_EQ(s_batch(1000, PRES_EV_LOGIN, "alice", "s1"), 0);
    pres_change_t ch = s_change("alice", "online", "login", 1);
    CHECK_EQ(ch.prev, PRES_OFFLINE);
    CHECK_EQ(ch.at, 1000);
    CHECK_EQ(ch.deadline, 1000 + 120000);
    CHECK_STR(ch.session, "s1");
    s_outbox_done();
    uint64_t seq = ch.seq;
    CHECK_EQ(s_meta()->seq, seq);
    CHECK_EQ(s_meta()->online, 1);

    //  Second session: online -> online, seq + 1.
    CHECK_EQ(s_batch(1100, PRES_EV_LOGIN, "alice", "s2"), 0);
    ch = s_change("alice", "online", "login", 2);
    CHECK_EQ(ch.seq, seq + 1);
    s_outbox_done();

    //  A heartbeat that changes nothing: no change, last_seen moves,
    //  the user is dirty (lazy flush), the flush clears it.
    CHECK_EQ(s_heartbeat(1200, "alice", "s1", NULL), 0);
    s_outbox_done();
    CHECK_EQ(s_user("alice")->last_seen, 1200);
    CHECK(broker_state_dirty(s_state));
    CHECK_EQ(broker_state_flush(s_state), 0);

    //  away on one session: online wins across sessions.
    CHECK_EQ(s_heartbeat(1300, "alice", "s1", "away"), 0);
    s_outbox_done();  //  s2 is still online
    CHECK_EQ(s_batch(1400, PRES_EV_LOGOUT, "alice", "s2"), 0);
    ch = s_change("alice", "away", "logout", 1);
    CHECK_EQ(ch.prev, PRES_ONLINE);
    s_outbox_done();
    CHECK_EQ(s_meta()->online, 0);
    CHECK_EQ(s_meta()->away, 1);

    //  A heartbeat for a session the broker does not know: a reconnect.
    CHECK_EQ(s_heartbeat(1500, "alice", "s3", NULL), 0);
    ch = s_change("alice", "online", "login", 2);
    s_outbox_done();

    //  Logout of everything: offline; the user leaves memory.
    CHECK_EQ(s_batch(1600, PRES_EV_LOGOUT, "alice", NULL), 0);
    ch = s_change("alice", "offline", "logout", 0);
    CHECK_STR(ch.session, "");
    s_outbox_done();
    CHECK(s_user("alice") == NULL);
    CHECK_EQ(s_meta()->sessions, 0);
    CHECK_EQ(s_meta()->away, 0);

    //  A logout of a user never seen: nothing to end, nothing published.
    CHECK_EQ(s_batch(1700, PRES_EV_LOGOUT, "nobody", NULL), 0);
    s_outbox_done();
    CHECK_EQ(s_meta()->users, 1);
}

static void
test_expire(void)
{
    CHECK_EQ(s_batch(10000, PRES_EV_LOGIN, "carol", "c1"), 0);
    pres_change_t login = s_change("carol", "online", "login", 1);
    s_outbox_done();
    //  Nothing is due before the deadline; a beat moves the deadline
    //  without moving the session on the wheel.
    CHECK_EQ(s_due(70000), 0);
    CHECK_EQ(s_heartbeat(20000, "carol", "c1", NULL), 0);
    uint64_t deadline = 20000 + 120000;
    CHECK_EQ(s_due(login.deadline + 100), 0);  //  filed again at deadline
    //  An expire before the real deadline is left alone, silently; one
    //  for a session or a user that is not there creates nothing and is
    //  answered with a deadline-0 notice (a publisher's round trip).
    CHECK_EQ(s_expire(login.deadline, "carol", "c1"), 0);
    s_outbox_done();
    CHECK_EQ(s_expire(30000, "carol", "nope"), 0);
    CHECK_EQ(s_gone("carol", "nope").deadline, 0);
    s_outbox_done();
    CHECK_EQ(s_expire(30000, "ghost", "g1"), 0);
    CHECK_EQ(s_gone("ghost", "g1").deadline, 0);
    s_outbox_done();
    CHECK(s_user("ghost") == NULL);
    //  Due within a wheel slot of the deadline: one notice carrying it,
    //  then one a second while the session lives (lost notice or expire).
    CHECK_EQ(s_due(deadline + BROKER_WHEEL_SLOT_MS + 4), 1);
    CHECK_STR(s_dues[0].user, "carol");
    CHECK_STR(s_dues[0].session, "c1");
    CHECK_EQ(s_dues[0].deadline, deadline);
    CHECK_EQ(s_due(deadline + 500), 0);
    CHECK_EQ(s_due(deadline + BROKER_DUE_AGAIN_MS + 100), 1);
    CHECK_EQ(s_dues[0].deadline, deadline);
    CHECK_EQ(broker_state_quality(s_state)->due_notices, 2);
    //  Once due, the expire ends the session, and the wheel forgets it.
    CHECK_EQ(s_expire(deadline + 1200, "carol", "c1"), 0);
    pres_change_t ch = s_change("carol", "offline", "timeout", 0);
    CHECK_STR(ch.session, "c1");
    CHECK_EQ(ch.seq, login.seq + 1);
    s_outbox_done();
    CHECK_EQ(s_due(deadline + 10000), 0);
}

static void
test_account(void)
{
    CHECK_EQ(s_batch(40000, PRES_EV_LOGIN, "bob", "b1"), 0);
    CHECK_EQ(s_batch(40001, PRES_EV_LOGIN, "bob", "b2"), 0);
    uint64_t refused = s_meta()->refused;
    //  Suspension ends every session at once: one change.
    broker_state_outbox_clear(s_state);
    s_next = 0;
    broker_state_begin(s_state, 40100);
    uint64_t seq = 0;
    CHECK_EQ(broker_state_account(s_state, "bob", PRES_ACC_SUSPENDED, "spam",
                                  "test", &seq),
             0);
    CHECK_EQ(broker_state_commit(s_state), 0);
    pres_change_t ch = s_change("bob", "offline", "suspended", 0);
    CHECK_EQ(ch.seq, seq);
    CHECK_EQ(ch.account, PRES_ACC_SUSPENDED);
    s_outbox_done();
    CHECK_EQ(s_meta()->accounts[PRES_ACC_SUSPENDED], 1);
    //  The same status again: nothing changes, the current seq returned.
    broker_state_outbox_clear(s_state);
    s_next = 0;
    broker_state_begin(s_state, 40150);
    uint64_t again = 0;
    CHECK_EQ(broker_state_account(s_state, "bob", PRES_ACC_SUSPENDED, "spam",
                                  "test", &again),
             0);
    CHECK_EQ(broker_state_commit(s_state), 0);
    CHECK_EQ(again, seq);
    s_outbox_done();
    //  Logins and heartbeats are refused and counted; nothing published.
    CHECK_EQ(s_batch(40200, PRES_EV_LOGIN, "bob", "b3"), 1);
    s_outbox_done();
    CHECK_EQ(s_heartbeat(40300, "bob", "b4", NULL), 1);
    s_outbox_done();
    CHECK_EQ(s_meta()->refused, refused + 2);
    //  Reactivation: reason account, logins work again.
    broker_state_outbox_clear(s_state);
    s_next = 0;
    broker_state_begin(s_state, 40400);
    CHECK_EQ(broker_state_account(s_state, "bob", PRES_ACC_ACTIVE, NULL, "test",
                                  &seq),
             0);
    CHECK_EQ(broker_state_commit(s_state), 0);
    s_change("bob", "offline", "account", 0);
    s_outbox_done();
    CHECK_EQ(s_batch(40500, PRES_EV_LOGIN, "bob", "b5"), 0);
    s_change("bob", "online", "login", 1);
    s_outbox_done();
}

//  Several events in one batch: one commit, changes in order, seq
//  consecutive, and the lost count of a publisher's gap.
static void
test_batch(void)
{
    broker_state_outbox_clear(s_state);
    s_next = 0;
    uint64_t lost = s_meta()->lost, seq = s_meta()->seq;
    broker_state_begin(s_state, 50000);
    CHECK_EQ(s_event(PRES_EV_LOGIN, "d1", "s", NULL), 0);
    CHECK_EQ(s_event(PRES_EV_LOGIN, "d2", "s", NULL), 0);
    s_pub_seq += 3;  //  three events of ours never arrive
    CHECK_EQ(s_event(PRES_EV_LOGOUT, "d1", "s", NULL), 0);
    CHECK_EQ(broker_state_commit(s_state), 0);
    CHECK_EQ(s_change("d1", "online", "login", 1).seq, seq + 1);
    CHECK_EQ(s_change("d2", "online", "login", 1).seq, seq + 2);
    CHECK_EQ(s_change("d1", "offline", "logout", 0).seq, seq + 3);
    s_outbox_done();
    CHECK_EQ(s_meta()->lost, lost + 3);
}

//  What was committed comes back after a reopen (the cold start reads the
//  live sessions, counters and publisher table).
static void
test_reopen(void)
{
    uint64_t seq = s_meta()->seq, sessions = s_meta()->sessions;
    uint64_t online = s_meta()->online, users = s_meta()->users;
    CHECK_EQ(s_heartbeat(60000, "bob", "b5", NULL), 0);
    CHECK_EQ(broker_state_flush(s_state), 0);
    s_close();
    s_open();
    CHECK_EQ(s_meta()->seq, seq);
    CHECK_EQ(s_meta()->sessions, sessions);
    CHECK_EQ(s_meta()->online, online);
    CHECK_EQ(s_meta()->users, users);
    const broker_user_t *bob = s_user("bob");
    CHECK(bob);
    CHECK_EQ(bob->nsessions, 1);
    CHECK_EQ(bob->state, PRES_ONLINE);
    CHECK_EQ(bob->last_seen, 60000);
    //  The next change continues the seq.
    CHECK_EQ(s_batch(61000, PRES_EV_LOGOUT, "bob", NULL), 0);
    CHECK_EQ(s_change("bob", "offline", "logout", 0).seq, seq + 1);
    s_outbox_done();
}

//  unknown_users = deny: a login of a user never seen is refused.
static void
test_deny_unknown(void)
{
    s_close();
    CHECK_EQ(pres_config_set(&s_cfg, "unknown_users", "deny"), 0);
    s_open();
    CHECK_EQ(s_batch(70000, PRES_EV_LOGIN, "stranger", "x"), 1);
    s_outbox_done();
    CHECK(s_user("stranger") == NULL);
    //  A known user still logs in.
    CHECK_EQ(s_batch(70001, PRES_EV_LOGIN, "bob", "b6"), 0);
    s_change("bob", "online", "login", 1);
    s_outbox_done();
}

int
main(void)
{
    st_tmpdir(s_dir, sizeof(s_dir), "state");
    pres_config_defaults(&s_cfg);
    CHECK_EQ(pres_config_finish(&s_cfg), 0);
    s_open();
    test_sessions();
    test_expire();
    test_account();
    test_batch();
    test_reopen();
    test_deny_unknown();
    s_close();
    st_rmtree(s_dir);
    printf("unit.broker_state: ok\n");
    return 0;
}

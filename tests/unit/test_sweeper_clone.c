/*  unit.sweeper_clone: the sweeper's Clone state machine, fed with
    snapshot replies, changes and deadline notices built by the codec. */
#include <stdio.h>
#include <string.h>

#include "pres_mp.h"
#include "pres_msg.h"
#include "sweeper_clone.h"
#include "testutil.h"

typedef struct {
    const char *user;
    const char *sessions[3];  //  NULL-terminated
    uint64_t deadlines[3];
} snap_user_t;

//  Build {ok:true, seq, users:[{user, state, last_seen, sessions, account,
//  live:[{session, state, deadline}]}], next?}; `live_first` puts `live`
//  before `user` to check key order does not matter.
static size_t
s_page(char *buf, size_t cap, uint64_t seq, const snap_user_t *users, int n,
       bool live_first, const char *next)
{
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, cap);
    msgpack_pack_map(&w.pk, next ? 5 : 4);
    if (next)
        pres_mp_pack_kv_str(&w, "next", next);
    pres_mp_pack_cstr(&w, "ok");
    msgpack_pack_true(&w.pk);
    pres_mp_pack_kv_uint(&w, "seq", seq);
    pres_mp_pack_cstr(&w, "extra");  //  unknown keys are skipped
    msgpack_pack_array(&w.pk, 1);
    msgpack_pack_nil(&w.pk);
    pres_mp_pack_cstr(&w, "users");
    msgpack_pack_array(&w.pk, (size_t)n);
    for (int i = 0; i < n; i++) {
        int live = 0;
        while (live < 3 && users[i].sessions[live])
            live++;
        msgpack_pack_map(&w.pk, 6);
        if (!live_first)
            pres_mp_pack_kv_str(&w, "user", users[i].user);
        pres_mp_pack_kv_str(&w, "state", "online");
        pres_mp_pack_kv_uint(&w, "last_seen", 1);
        pres_mp_pack_kv_uint(&w, "sessions", (uint64_t)live);
        pres_mp_pack_kv_str(&w, "account", "active");
        pres_mp_pack_cstr(&w, "live");
        msgpack_pack_array(&w.pk, (size_t)live);
        for (int j = 0; j < live; j++) {
            msgpack_pack_map(&w.pk, 3);
            pres_mp_pack_kv_str(&w, "session", users[i].sessions[j]);
            pres_mp_pack_kv_str(&w, "state", "online");
            pres_mp_pack_kv_uint(&w, "deadline", users[i].deadlines[j]);
        }
        if (live_first)
            pres_mp_pack_kv_str(&w, "user", users[i].user);
    }
    CHECK(!w.overflow);
    return w.len;
}

static size_t
s_snapshot(char *buf, size_t cap, uint64_t seq, const snap_user_t *users, int n,
           bool live_first)
{
    return s_page(buf, cap, seq, users, n, live_first, NULL);
}

//  Feed one change.
static sweeper_clone_result_t
s_change(sweeper_clone_t *c, uint64_t seq, const char *user,
         const char *session, uint64_t deadline, uint32_t sessions,
         pres_reason_t reason)
{
    pres_change_t ch;
    memset(&ch, 0, sizeof(ch));
    ch.seq = seq;
    snprintf(ch.user, sizeof(ch.user), "%s", user);
    snprintf(ch.session, sizeof(ch.session), "%s", session);
    ch.deadline = deadline;
    ch.sessions = sessions;
    ch.state = sessions ? PRES_ONLINE : PRES_OFFLINE;
    ch.prev = PRES_ONLINE;
    ch.at = 1;
    ch.reason = reason;
    ch.account = PRES_ACC_ACTIVE;
    char buf[PRES_MSG_MAX], topic[PRES_TOPIC_MAX];
    size_t len = pres_change_encode(&ch, buf, sizeof(buf));
    CHECK(len > 0);
    size_t tlen = pres_change_topic(user, topic);
    return sweeper_clone_recv(c, topic, tlen, buf, len, 1000);
}

static sweeper_clone_result_t
s_notice(sweeper_clone_t *c, const char *user, const char *session,
         uint64_t deadline, uint64_t now)
{
    pres_deadline_t dl;
    memset(&dl, 0, sizeof(dl));
    snprintf(dl.user, sizeof(dl.user), "%s", user);
    snprintf(dl.session, sizeof(dl.session), "%s", session);
    dl.deadline = deadline;
    char buf[PRES_MSG_MAX], topic[PRES_TOPIC_MAX];
    size_t len = pres_deadline_encode(&dl, buf, sizeof(buf));
    CHECK(len > 0);
    size_t tlen = pres_deadline_topic(user, topic);
    return sweeper_clone_recv(c, topic, tlen, buf, len, now);
}

static void
test_snapshot_and_changes(bool live_first)
{
    sweeper_tick_t *t = sweeper_tick_new();
    sweeper_clone_t *c = sweeper_clone_new(t);
    CHECK(t && c);
    CHECK(!sweeper_clone_synced(c));
    //  Before any snapshot: changes are ignored, notices still applied.
    CHECK_EQ(s_change(c, 5, "alice", "a1", 100, 1, PRES_RSN_LOGIN),
             SWEEPER_CLONE_IGNORED);
    CHECK_EQ(sweeper_tick_size(t), 0);

    snap_user_t users[] = {
        {"alice", {"a1", "a2", NULL}, {1000, 2000, 0}},
        {"bob", {"b1", NULL, NULL}, {1500, 0, 0}},
    };
    char buf[8192];
    size_t len = s_snapshot(buf, sizeof(buf), 10, users, 2, live_first);
    CHECK_EQ(sweeper_clone_load(c, buf, len), 0);
    CHECK(sweeper_clone_synced(c));
    CHECK_EQ(sweeper_clone_seq(c), 10);
    CHECK_EQ(sweeper_tick_size(t), 3);
    CHECK_EQ(sweeper_tick_deadline(t, "alice", "a2"), 2000);
    CHECK_EQ(sweeper_tick_next_due(t), 1000);

    //  Changes queued before the snapshot: dropped, table untouched.
    CHECK_EQ(s_change(c, 9, "bob", "b1", 0, 0, PRES_RSN_LOGOUT),
             SWEEPER_CLONE_DROPPED);
    CHECK_EQ(s_change(c, 10, "bob", "b1", 0, 0, PRES_RSN_LOGOUT),
             SWEEPER_CLONE_DROPPED);
    CHECK_EQ(sweeper_tick_size(t), 3);

    //  11: a new login of carol.
    CHECK_EQ(s_change(c, 11, "carol", "c1", 3000, 1, PRES_RSN_LOGIN),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(sweeper_tick_deadline(t, "carol", "c1"), 3000);
    //  12: a heartbeat state flip moves alice/a1's deadline.
    CHECK_EQ(s_change(c, 12, "alice", "a1", 4000, 2, PRES_RSN_HEARTBEAT),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(sweeper_tick_deadline(t, "alice", "a1"), 4000);
    //  13: alice/a2 times out, alice stays online with 1 session.
    CHECK_EQ(s_change(c, 13, "alice", "a2", 0, 1, PRES_RSN_TIMEOUT),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(sweeper_tick_user_sessions(t, "alice"), 1);
    //  14: alice suspended: every session ends (no session field).
    CHECK_EQ(s_change(c, 14, "alice", "", 0, 0, PRES_RSN_SUSPENDED),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(sweeper_tick_user_sessions(t, "alice"), 0);
    CHECK_EQ(sweeper_tick_size(t), 2);
    CHECK_EQ(sweeper_clone_seq(c), 14);

    //  Deadline notices: live with a new deadline, or unknown (removed).
    CHECK_EQ(s_notice(c, "bob", "b1", 9000, 2000), SWEEPER_CLONE_APPLIED);
    CHECK_EQ(sweeper_tick_deadline(t, "bob", "b1"), 9000);
    CHECK_EQ(s_notice(c, "carol", "c1", 0, 2000), SWEEPER_CLONE_APPLIED);
    CHECK_EQ(sweeper_tick_size(t), 1);

    //  After a live change, an old seq means the broker lost history.
    CHECK_EQ(s_change(c, 14, "bob", "b1", 0, 0, PRES_RSN_LOGOUT),
             SWEEPER_CLONE_RESYNC);
    CHECK(!sweeper_clone_synced(c));
    CHECK_STR(sweeper_clone_why(c), "seq went backwards");

    sweeper_clone_stats_t st;
    sweeper_clone_stats(c, &st);
    CHECK_EQ(st.changes, 4);
    CHECK_EQ(st.dropped, 2);
    CHECK_EQ(st.notices, 2);
    CHECK_EQ(st.snapshots, 1);
    sweeper_clone_destroy(&c);
    sweeper_tick_destroy(&t);
    CHECK(c == NULL);
}

static void
test_gap_and_resync(void)
{
    sweeper_tick_t *t = sweeper_tick_new();
    sweeper_clone_t *c = sweeper_clone_new(t);
    CHECK(t && c);
    snap_user_t users[] = {{"bob", {"b1", NULL, NULL}, {1500, 0, 0}}};
    char buf[4096];
    size_t len = s_snapshot(buf, sizeof(buf), 100, users, 1, false);
    CHECK_EQ(sweeper_clone_load(c, buf, len), 0);
    //  101 ok, then 103: gap.
    CHECK_EQ(s_change(c, 101, "dave", "d1", 500, 1, PRES_RSN_LOGIN),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(s_change(c, 103, "dave", "d1", 0, 0, PRES_RSN_LOGOUT),
             SWEEPER_CLONE_RESYNC);
    CHECK_STR(sweeper_clone_why(c), "seq gap");
    //  Out of sync: further changes are ignored until the next snapshot.
    CHECK_EQ(s_change(c, 104, "erin", "e1", 500, 1, PRES_RSN_LOGIN),
             SWEEPER_CLONE_IGNORED);
    //  The new snapshot replaces the table (dave's session is gone).
    len = s_snapshot(buf, sizeof(buf), 104, users, 1, false);
    CHECK_EQ(sweeper_clone_load(c, buf, len), 0);
    CHECK_EQ(sweeper_tick_size(t), 1);
    CHECK_EQ(sweeper_tick_deadline(t, "dave", "d1"), 0);
    CHECK_EQ(s_change(c, 103, "dave", "d1", 0, 0, PRES_RSN_LOGOUT),
             SWEEPER_CLONE_DROPPED);
    CHECK_EQ(s_change(c, 105, "bob", "b2", 700, 2, PRES_RSN_LOGIN),
             SWEEPER_CLONE_APPLIED);

    //  A count that disagrees with ours asks for a resync.
    CHECK_EQ(s_change(c, 106, "bob", "b3", 800, 5, PRES_RSN_LOGIN),
             SWEEPER_CLONE_RESYNC);
    CHECK_STR(sweeper_clone_why(c), "session count differs");

    //  Head checks: behind ours, or a head we never reach.
    len = s_snapshot(buf, sizeof(buf), 200, users, 1, false);
    CHECK_EQ(sweeper_clone_load(c, buf, len), 0);
    CHECK(!sweeper_clone_check_head(c, 200));
    CHECK(!sweeper_clone_check_head(c, 202));  //  in flight, maybe
    CHECK_EQ(s_change(c, 201, "bob", "b1", 1600, 1, PRES_RSN_HEARTBEAT),
             SWEEPER_CLONE_APPLIED);
    CHECK(sweeper_clone_check_head(c, 202));  //  202 never came
    CHECK_STR(sweeper_clone_why(c), "changes missing at the head");
    len = s_snapshot(buf, sizeof(buf), 202, users, 1, false);
    CHECK_EQ(sweeper_clone_load(c, buf, len), 0);
    CHECK(sweeper_clone_check_head(c, 150));
    CHECK_STR(sweeper_clone_why(c), "broker seq behind ours");
    CHECK(!sweeper_clone_check_head(c, 300));  //  not synced: no verdict

    sweeper_clone_destroy(&c);
    sweeper_tick_destroy(&t);
}

static void
test_malformed(void)
{
    sweeper_tick_t *t = sweeper_tick_new();
    sweeper_clone_t *c = sweeper_clone_new(t);
    CHECK(t && c);
    char buf[4096];
    snap_user_t users[] = {{"bob", {"b1", NULL, NULL}, {1500, 0, 0}}};
    size_t len = s_snapshot(buf, sizeof(buf), 7, users, 1, false);
    //  Every truncation of a valid snapshot is refused.
    for (size_t cut = 0; cut < len; cut++) {
        CHECK_EQ(sweeper_clone_load(c, buf, cut), -1);
        CHECK(!sweeper_clone_synced(c));
    }
    //  A reply with ok:false.
    pres_mp_writer_t w;
    pres_mp_writer_init(&w, buf, sizeof(buf));
    msgpack_pack_map(&w.pk, 2);
    pres_mp_pack_cstr(&w, "ok");
    msgpack_pack_false(&w.pk);
    pres_mp_pack_kv_str(&w, "error", "busy");
    CHECK_EQ(sweeper_clone_load(c, buf, w.len), -1);
    //  An invalid user id inside.
    snap_user_t bad[] = {{"bad user", {"b1", NULL, NULL}, {1, 0, 0}}};
    len = s_snapshot(buf, sizeof(buf), 7, bad, 1, false);
    CHECK_EQ(sweeper_clone_load(c, buf, len), -1);

    //  Frames that are not changes or notices.
    len = s_snapshot(buf, sizeof(buf), 7, users, 1, false);
    CHECK_EQ(sweeper_clone_load(c, buf, len), 0);
    CHECK_EQ(sweeper_clone_recv(c, "presence.bob", 12, "\xc1", 1, 0),
             SWEEPER_CLONE_BAD);
    CHECK_EQ(sweeper_clone_recv(c, "other.bob", 9, buf, len, 0),
             SWEEPER_CLONE_BAD);
    //  A change whose topic names another user.
    pres_change_t ch;
    memset(&ch, 0, sizeof(ch));
    ch.seq = 8;
    snprintf(ch.user, sizeof(ch.user), "bob");
    ch.sessions = 0;
    char cb[PRES_MSG_MAX];
    size_t cl = pres_change_encode(&ch, cb, sizeof(cb));
    CHECK(cl > 0);
    CHECK_EQ(sweeper_clone_recv(c, "presence.eve", 12, cb, cl, 0),
             SWEEPER_CLONE_BAD);
    CHECK_EQ(sweeper_clone_recv(c, "presence.bob", 12, cb, cl, 0),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(sweeper_tick_size(t), 0);
    sweeper_clone_stats_t st;
    sweeper_clone_stats(c, &st);
    CHECK_EQ(st.bad, 3);
    CHECK(sweeper_clone_synced(c));
    sweeper_clone_destroy(&c);
    sweeper_tick_destroy(&t);
}

//  A snapshot in pages, changes made while the pages were taken: the
//  replay from the first page's seq ends with the broker's state.
static void
test_paged(void)
{
    sweeper_tick_t *t = sweeper_tick_new();
    sweeper_clone_t *c = sweeper_clone_new(t);
    CHECK(t && c);
    char buf[4096], next[PRES_ID_MAX + 1];
    //  Page 1 at seq 10: alice. Then 11 carol logs in, 12 bob adds b2,
    //  13 alice logs out, 14 bob adds b3.
    snap_user_t p1[] = {{"alice", {"a1", NULL, NULL}, {1000, 0, 0}}};
    size_t len = s_page(buf, sizeof(buf), 10, p1, 1, false, "1");
    CHECK_EQ(sweeper_clone_load_page(c, buf, len, next, sizeof next), 0);
    CHECK_STR(next, "1");
    CHECK(!sweeper_clone_synced(c));
    CHECK_EQ(sweeper_tick_size(t), 1);  //  due expiries can go out already
    //  Page 2 at seq 14: bob with all three sessions.
    snap_user_t p2[] = {{"bob", {"b1", "b2", "b3"}, {1500, 2500, 3500}}};
    len = s_page(buf, sizeof(buf), 14, p2, 1, true, "2");
    CHECK_EQ(sweeper_clone_load_page(c, buf, len, next, sizeof next), 0);
    CHECK_STR(next, "2");
    //  Page 3 at seq 14: carol; the last.
    snap_user_t p3[] = {{"carol", {"c1", NULL, NULL}, {3000, 0, 0}}};
    len = s_page(buf, sizeof(buf), 14, p3, 1, false, NULL);
    CHECK_EQ(sweeper_clone_load_page(c, buf, len, next, sizeof next), 0);
    CHECK_STR(next, "");
    CHECK(sweeper_clone_synced(c));
    CHECK_EQ(sweeper_clone_seq(c), 10);
    CHECK_EQ(sweeper_tick_size(t), 5);
    //  The replay: 10 is held; 12 counts 2 sessions where the table has
    //  three (page 2 is ahead of it): no resync.
    CHECK_EQ(s_change(c, 10, "alice", "a1", 1000, 1, PRES_RSN_LOGIN),
             SWEEPER_CLONE_DROPPED);
    CHECK_EQ(s_change(c, 11, "carol", "c1", 3000, 1, PRES_RSN_LOGIN),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(s_change(c, 12, "bob", "b2", 2500, 2, PRES_RSN_LOGIN),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(s_change(c, 13, "alice", "a1", 0, 0, PRES_RSN_LOGOUT),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(s_change(c, 14, "bob", "b3", 3500, 3, PRES_RSN_LOGIN),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(sweeper_tick_deadline(t, "alice", "a1"), 0);
    CHECK_EQ(sweeper_tick_user_sessions(t, "bob"), 3);
    CHECK_EQ(sweeper_tick_size(t), 4);
    //  Past the last page, counts are checked again.
    CHECK_EQ(s_change(c, 15, "dave", "d1", 4000, 1, PRES_RSN_LOGIN),
             SWEEPER_CLONE_APPLIED);
    CHECK_EQ(s_change(c, 16, "bob", "b4", 4500, 9, PRES_RSN_LOGIN),
             SWEEPER_CLONE_RESYNC);
    CHECK_STR(sweeper_clone_why(c), "session count differs");

    //  A resync in pages keeps the old table firing until the last page:
    //  after the first, bob (not on it) is still due; after the last, only
    //  what the pages set is left.
    size_t held = sweeper_tick_size(t);
    CHECK(held > 1);
    len = s_page(buf, sizeof(buf), 17, p3, 1, false, "1");
    CHECK_EQ(sweeper_clone_load_page(c, buf, len, next, sizeof next), 0);
    CHECK_EQ(sweeper_tick_size(t), held);
    CHECK_EQ(sweeper_tick_deadline(t, "bob", "b1"), 1500);
    snap_user_t p4[] = {{"erin", {"e1", NULL, NULL}, {5000, 0, 0}}};
    len = s_page(buf, sizeof(buf), 17, p4, 1, false, NULL);
    CHECK_EQ(sweeper_clone_load_page(c, buf, len, next, sizeof next), 0);
    CHECK(sweeper_clone_synced(c));
    CHECK_EQ(sweeper_tick_size(t), 2);  //  carol (page 1) and erin
    CHECK_EQ(sweeper_tick_deadline(t, "bob", "b1"), 0);
    CHECK_EQ(sweeper_tick_deadline(t, "erin", "e1"), 5000);

    //  A page whose seq is below the previous one's: the broker restarted
    //  between them; the next page call starts over.
    len = s_page(buf, sizeof(buf), 20, p1, 1, false, "1");
    CHECK_EQ(sweeper_clone_load_page(c, buf, len, next, sizeof next), 0);
    len = s_page(buf, sizeof(buf), 5, p2, 1, false, "2");
    CHECK_EQ(sweeper_clone_load_page(c, buf, len, next, sizeof next), -1);
    CHECK(!sweeper_clone_synced(c));
    len = s_page(buf, sizeof(buf), 6, p3, 1, false, NULL);
    CHECK_EQ(sweeper_clone_load_page(c, buf, len, next, sizeof next), 0);
    CHECK(sweeper_clone_synced(c));
    CHECK_EQ(sweeper_clone_seq(c), 6);
    CHECK_EQ(sweeper_tick_size(t), 1);  //  carol only
    //  A `next` that is not a string, or too long for the cursor.
    len = s_page(buf, sizeof(buf), 7, p3, 1, false, "");
    CHECK_EQ(sweeper_clone_load_page(c, buf, len, next, sizeof next), -1);
    len = s_page(buf, sizeof(buf), 7, p3, 1, false, "123456789");
    CHECK_EQ(sweeper_clone_load_page(c, buf, len, next, 4), -1);
    //  A whole snapshot must not carry `next`.
    len = s_page(buf, sizeof(buf), 7, p3, 1, false, "1");
    CHECK_EQ(sweeper_clone_load(c, buf, len), -1);
    sweeper_clone_stats_t st;
    sweeper_clone_stats(c, &st);
    CHECK_EQ(st.snapshots, 3);
    sweeper_clone_destroy(&c);
    sweeper_tick_destroy(&t);
}

int
main(void)
{
    test_paged();
    test_snapshot_and_changes(false);
    test_snapshot_and_changes(true);
    test_gap_and_resync();
    test_malformed();
    printf("unit.sweeper_clone: ok\n");
    return 0;
}

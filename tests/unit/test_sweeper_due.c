/*  unit.sweeper_due: a due notice maps to the expire that answers it;
    deadline 0 is ignored; anything else is refused with a reason, never
    read past its end. Frames are built by the pres_msg codec. */
#include <stdio.h>
#include <string.h>

#include "pres_msg.h"
#include "sweeper_due.h"
#include "testutil.h"

static size_t
s_notice(char *buf, size_t cap, const char *user, const char *session,
         uint64_t deadline)
{
    pres_deadline_t dl;
    memset(&dl, 0, sizeof(dl));
    snprintf(dl.user, sizeof(dl.user), "%s", user);
    snprintf(dl.session, sizeof(dl.session), "%s", session);
    dl.deadline = deadline;
    size_t n = pres_deadline_encode(&dl, buf, cap);
    CHECK(n > 0);
    return n;
}

static sweeper_due_t
s_map(const char *topic, const void *body, size_t len, pres_event_t *ev,
      const char **why)
{
    *why = NULL;
    return sweeper_due_map(topic, strlen(topic), body, len, ev, why);
}

int
main(void)
{
    char buf[512], topic[PRES_TOPIC_MAX];
    pres_event_t ev;
    const char *why;

    //  A due notice: one expire with its user, session and deadline, and
    //  nothing else set (the publisher stamps src, seq and at).
    size_t n = s_notice(buf, sizeof buf, "alice", "s1", 1700000000123ULL);
    pres_deadline_topic("alice", topic);
    memset(&ev, 0xa5, sizeof(ev));
    CHECK_EQ(s_map(topic, buf, n, &ev, &why), SWEEPER_DUE_EXPIRE);
    CHECK_EQ(ev.type, PRES_EV_EXPIRE);
    CHECK_STR(ev.user, "alice");
    CHECK_STR(ev.session, "s1");
    CHECK_EQ(ev.deadline, 1700000000123ULL);
    CHECK_EQ(ev.seq, 0);
    CHECK_EQ(ev.at, 0);
    CHECK_STR(ev.src, "");
    //  It encodes as a valid expire (what pres_pub_send will do).
    snprintf(ev.src, sizeof ev.src, "sweeper-test-1");
    ev.seq = 1;
    ev.at = 1;
    char out[512];
    size_t on = pres_event_encode(&ev, out, sizeof out);
    CHECK(on > 0);
    pres_event_t back;
    CHECK_EQ(pres_event_decode(&back, "expire", 6, out, on, &why), 0);
    CHECK_EQ(back.deadline, 1700000000123ULL);
    CHECK_STR(back.session, "s1");

    //  why may be NULL.
    CHECK_EQ(sweeper_due_map(topic, strlen(topic), buf, n, &ev, NULL),
             SWEEPER_DUE_EXPIRE);

    //  Deadline 0, a "gone" notice (the answer to some publisher's expire
    //  of a session the broker does not have): nothing to send.
    n = s_notice(buf, sizeof buf, "bob", "s2", 0);
    pres_deadline_topic("bob", topic);
    CHECK_EQ(s_map(topic, buf, n, &ev, &why), SWEEPER_DUE_IGNORED);

    //  The topic names another user than the body.
    n = s_notice(buf, sizeof buf, "carol", "s1", 5);
    CHECK_EQ(s_map("deadline.carl", buf, n, &ev, &why), SWEEPER_DUE_BAD);
    CHECK_STR(why, "topic_mismatch");
    CHECK_EQ(s_map("deadline.carol2", buf, n, &ev, &why), SWEEPER_DUE_BAD);
    CHECK_EQ(s_map("deadline.", buf, n, &ev, &why), SWEEPER_DUE_BAD);
    //  Not a notice topic at all (a change, or nothing).
    CHECK_EQ(s_map("presence.carol", buf, n, &ev, &why), SWEEPER_DUE_BAD);
    CHECK_STR(why, "unknown_topic");
    CHECK_EQ(s_map("", buf, n, &ev, &why), SWEEPER_DUE_BAD);
    CHECK_EQ(s_map("deadline", buf, n, &ev, &why), SWEEPER_DUE_BAD);

    //  Bodies that are not notices: a change, garbage, every truncation.
    pres_change_t ch;
    memset(&ch, 0, sizeof(ch));
    ch.seq = 7;
    snprintf(ch.user, sizeof ch.user, "carol");
    ch.state = PRES_OFFLINE;
    ch.prev = PRES_ONLINE;
    ch.reason = PRES_RSN_TIMEOUT;
    ch.at = 1;
    size_t cn = pres_change_encode(&ch, out, sizeof out);
    CHECK(cn > 0);
    CHECK_EQ(s_map("deadline.carol", out, cn, &ev, &why), SWEEPER_DUE_BAD);
    CHECK(why && *why);
    static const char garbage[] = "\xc1\xff\x00not msgpack";
    CHECK_EQ(s_map("deadline.carol", garbage, sizeof garbage, &ev, &why),
             SWEEPER_DUE_BAD);
    CHECK(why && *why);
    CHECK_EQ(s_map("deadline.carol", "", 0, &ev, &why), SWEEPER_DUE_BAD);
    for (size_t cut = 0; cut < n; cut++) {
        char part[512];
        memcpy(part, buf, cut);  //  a copy of exactly cut bytes: ASan
        CHECK_EQ(s_map("deadline.carol", part, cut, &ev, &why),
                 SWEEPER_DUE_BAD);
    }
    //  A session id the protocol refuses.
    n = s_notice(buf, sizeof buf, "dave", "s1", 9);
    size_t at = 0;
    while (at + 2 <= n && memcmp(buf + at, "s1", 2) != 0)
        at++;
    CHECK(at + 2 <= n);
    buf[at] = ' ';
    CHECK_EQ(s_map("deadline.dave", buf, n, &ev, &why), SWEEPER_DUE_BAD);

    printf("unit.sweeper_due: ok\n");
    return 0;
}

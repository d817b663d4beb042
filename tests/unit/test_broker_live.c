/*  unit.broker_live: the resident users / live sessions hash tables:
    add, find, remove (backward-shift deletion), growth, aggregation; the
    deadline wheel: every session comes due once, in its slot, over laps,
    removals and a clock that goes back. */
#include <stdio.h>
#include <stdlib.h>

#include "broker_live.h"
#include "testutil.h"

//  Random times over more than two laps of the wheel; a third of the
//  sessions removed before they come due. Taken like broker_state_due
//  does: a session not due yet is filed again at its time.
static void
test_wheel(void)
{
    enum { M = 20000 };
    const uint64_t t0 = 1764633600000;  //  2025-12-02, ms
    const uint64_t span = 300000;
    broker_live_t *live = broker_live_new();
    CHECK(live);
    uint64_t *at = calloc(M, sizeof(*at));
    uint64_t *seen = calloc(M, sizeof(*seen));
    bool *gone = calloc(M, sizeof(*gone));
    uint32_t *idx = calloc(M, sizeof(*idx));
    CHECK(at && seen && gone && idx);
    //  A session taken before its first filing (session_add files it for
    //  the next take) is filed again at its time.
    CHECK_EQ(broker_live_wheel_take(live, t0), BROKER_LIVE_NONE);
    srand(7);
    char id[32];
    for (int i = 0; i < M; i++) {
        int n = snprintf(id, sizeof(id), "w%d", i);
        uint32_t u = broker_live_user_add(live, id, (size_t)n);
        CHECK(u != BROKER_LIVE_NONE);
        idx[i] = broker_live_session_add(live, u, "x", 1);
        CHECK(idx[i] != BROKER_LIVE_NONE);
        at[i] = t0 + 1 + (uint64_t)rand() % span;
        if (i % 2)  //  half filed now, half at their first take
            broker_live_wheel_file(live, idx[i], at[i]);
    }
    //  The unfiled ones are due at the end of the next slot.
    CHECK(broker_live_wheel_wait(live, t0, 1000) <= BROKER_WHEEL_SLOT_MS);
    uint64_t now = t0;
    while (now < t0 + span + 2 * BROKER_WHEEL_SLOT_MS) {
        now += 1 + (uint64_t)rand() % 40;
        uint64_t wait = broker_live_wheel_wait(live, now, 1000);
        CHECK(wait <= 1000);
        uint32_t next;
        for (uint32_t s = broker_live_wheel_take(live, now);
             s != BROKER_LIVE_NONE; s = next) {
            next = broker_live_session(live, s)->wnext;
            //  Entries map back to i through the user id "w<i>".
            int i = atoi(broker_live_id(
                             live, broker_live_user(
                                       live, broker_live_session(live, s)->user)
                                       ->id) +
                         1);
            CHECK(!gone[i] && !seen[i]);
            if (at[i] > now) {
                broker_live_wheel_file(live, s, at[i]);
                continue;
            }
            //  Due within its slot's end plus one step of the clock.
            CHECK(now - at[i] <= BROKER_WHEEL_SLOT_MS + 40);
            seen[i] = now;
            broker_live_session_remove(live, s);
        }
        //  Remove a few live sessions (anywhere on the wheel).
        for (int k = 0; k < 3; k++) {
            int i = rand() % M;
            if (!gone[i] && !seen[i] && i % 3 == 0) {
                broker_live_session_remove(live, idx[i]);
                gone[i] = true;
            }
        }
    }
    for (int i = 0; i < M; i++)
        CHECK(gone[i] || seen[i]);
    CHECK_EQ(broker_live_session_count(live), 0);
    CHECK_EQ(broker_live_wheel_wait(live, now, 1000), 1000);
    //  A clock that goes back takes nothing, and starts the wheel there.
    uint32_t u = broker_live_user_find(live, "w0", 2);
    uint32_t s = broker_live_session_add(live, u, "y", 1);
    broker_live_wheel_file(live, s, now + 100);
    CHECK_EQ(broker_live_wheel_take(live, now - 5000), BROKER_LIVE_NONE);
    broker_live_wheel_file(live, s, now - 4000);
    CHECK_EQ(broker_live_wheel_take(live, now - 4100), BROKER_LIVE_NONE);
    CHECK_EQ(broker_live_wheel_take(live, now - 3900), s);
    free(at);
    free(seen);
    free(gone);
    free(idx);
    broker_live_destroy(&live);
}

int
main(void)
{
    test_wheel();
    broker_live_t *live = broker_live_new();
    CHECK(live);
    CHECK_EQ(broker_live_user_find(live, "a", 1), BROKER_LIVE_NONE);
    uint32_t a = broker_live_user_add(live, "alice", 5);
    CHECK(a != BROKER_LIVE_NONE);
    CHECK_EQ(broker_live_user_find(live, "alice", 5), a);
    CHECK_EQ(broker_live_user_find(live, "alic", 4), BROKER_LIVE_NONE);
    CHECK_EQ(broker_live_user_state(live, a), PRES_OFFLINE);
    //  Ids are out of line (the id arena), NUL-terminated.
    CHECK_STR(broker_live_id(live, broker_live_user(live, a)->id), "alice");
    CHECK_EQ(broker_live_user(live, a)->len, 5);

    //  Sessions: same ids under different users stay apart.
    uint32_t b = broker_live_user_add(live, "bob", 3);
    uint32_t s1 = broker_live_session_add(live, a, "s1", 2);
    uint32_t s2 = broker_live_session_add(live, a, "s2", 2);
    uint32_t t1 = broker_live_session_add(live, b, "s1", 2);
    CHECK(s1 != s2 && s1 != t1);
    CHECK_EQ(broker_live_session_find(live, a, "s1", 2), s1);
    CHECK_EQ(broker_live_session_find(live, b, "s1", 2), t1);
    CHECK_EQ(broker_live_session_find(live, b, "s2", 2), BROKER_LIVE_NONE);
    CHECK_STR(broker_live_id(live, broker_live_session(live, t1)->id), "s1");
    CHECK_STR(broker_live_id(live, broker_live_user(live, b)->id), "bob");
    CHECK_EQ(broker_live_user(live, a)->nsessions, 2);
    CHECK_EQ(broker_live_user_state(live, a), PRES_ONLINE);
    broker_live_session(live, s1)->state = PRES_AWAY;
    CHECK_EQ(broker_live_user_state(live, a), PRES_ONLINE);
    broker_live_session(live, s2)->state = PRES_AWAY;
    CHECK_EQ(broker_live_user_state(live, a), PRES_AWAY);
    CHECK(broker_live_session_set_device(live, s1, "phone") == 0);
    broker_live_session_remove(live, s1);
    CHECK_EQ(broker_live_session_find(live, a, "s1", 2), BROKER_LIVE_NONE);
    CHECK_EQ(broker_live_session_find(live, a, "s2", 2), s2);
    broker_live_session_remove(live, s2);
    CHECK_EQ(broker_live_user(live, a)->nsessions, 0);
    CHECK_EQ(broker_live_user_state(live, a), PRES_OFFLINE);
    CHECK(broker_live_user_set_reason(live, a, "spam") == 0);
    broker_live_user_remove(live, a);
    CHECK_EQ(broker_live_user_find(live, "alice", 5), BROKER_LIVE_NONE);
    CHECK_EQ(broker_live_user_find(live, "bob", 3), b);

    //  Many users and sessions: growth past the initial tables, removal
    //  of every other one (exercises backward shifting), all still found.
    enum { N = 50000 };
    char id[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(id, sizeof(id), "user%d", i);
        uint32_t u = broker_live_user_add(live, id, (size_t)n);
        CHECK(u != BROKER_LIVE_NONE);
        CHECK(broker_live_session_add(live, u, "x", 1) != BROKER_LIVE_NONE);
    }
    CHECK_EQ(broker_live_user_count(live), N + 1);
    CHECK_EQ(broker_live_session_count(live), N + 1);
    for (int i = 0; i < N; i += 2) {
        int n = snprintf(id, sizeof(id), "user%d", i);
        uint32_t u = broker_live_user_find(live, id, (size_t)n);
        CHECK(u != BROKER_LIVE_NONE);
        uint32_t s = broker_live_session_find(live, u, "x", 1);
        CHECK(s != BROKER_LIVE_NONE);
        broker_live_session_remove(live, s);
        broker_live_user_remove(live, u);
    }
    for (int i = 0; i < N; i++) {
        int n = snprintf(id, sizeof(id), "user%d", i);
        uint32_t u = broker_live_user_find(live, id, (size_t)n);
        if (i % 2) {
            CHECK(u != BROKER_LIVE_NONE);
            CHECK(broker_live_session_find(live, u, "x", 1) !=
                  BROKER_LIVE_NONE);
        } else
            CHECK_EQ(u, BROKER_LIVE_NONE);
    }
    size_t count = 0;
    for (uint32_t u = broker_live_user_next(live, BROKER_LIVE_NONE);
         u != BROKER_LIVE_NONE; u = broker_live_user_next(live, u))
        count++;
    CHECK_EQ(count, N / 2 + 1);
    //  Freed entries are reused.
    uint32_t again = broker_live_user_add(live, "again", 5);
    CHECK(again < (uint32_t)N + 2);
    broker_live_destroy(&live);
    CHECK(live == NULL);
    broker_live_destroy(&live);
    return 0;
}

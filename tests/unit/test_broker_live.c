/*  unit.broker_live: the resident users / live sessions hash tables:
    add, find, remove (backward-shift deletion), growth, aggregation. */
#include <stdio.h>

#include "broker_live.h"
#include "testutil.h"

int
main(void)
{
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

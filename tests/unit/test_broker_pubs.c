/*  unit.broker_pubs: the per-publisher loss accounting: in order, gaps,
    restarts, slow joiners, the dirty set, the table growing past its
    first allocation, and idle entries forgotten. */
#include <stdio.h>
#include <string.h>

#include "broker_pubs.h"
#include "testutil.h"

static broker_pub_t *
s_find(broker_pubs_t *pubs, const char *src)
{
    for (size_t i = 0; i < broker_pubs_count(pubs); i++)
        if (strcmp(broker_pubs_at(pubs, i)->src, src) == 0)
            return broker_pubs_at(pubs, i);
    return NULL;
}

int
main(void)
{
    broker_pubs_t *pubs = broker_pubs_new(2000, 60000);
    CHECK(pubs);
    CHECK(!broker_pubs_dirty(pubs));

    //  In order from seq 1: nothing lost.
    for (uint64_t seq = 1; seq <= 10; seq++)
        CHECK_EQ(broker_pubs_arrive(pubs, "gw-1", seq, 1000), 0);
    broker_pub_t *gw = s_find(pubs, "gw-1");
    CHECK(gw);
    CHECK_EQ(gw->last, 10);
    CHECK_EQ(gw->lost, 0);
    CHECK(gw->dirty && broker_pubs_dirty(pubs));

    //  A gap counts each missing event once.
    CHECK_EQ(broker_pubs_arrive(pubs, "gw-1", 14, 1000), 3);
    CHECK_EQ(broker_pubs_arrive(pubs, "gw-1", 15, 1000), 0);
    CHECK_EQ(gw->lost, 3);
    //  seq <= last: the publisher restarted; nothing counted, start over.
    CHECK_EQ(broker_pubs_arrive(pubs, "gw-1", 1, 1000), 0);
    CHECK_EQ(gw->last, 1);
    CHECK_EQ(broker_pubs_arrive(pubs, "gw-1", 2, 1000), 0);
    CHECK_EQ(gw->lost, 3);
    //  A never-seen src starting at n: n - 1 lost (slow joiner).
    CHECK_EQ(broker_pubs_arrive(pubs, "late-1", 5, 1000), 4);

    //  Clean after a write; one arrival makes it dirty again.
    broker_pubs_clean(pubs);
    CHECK(!broker_pubs_dirty(pubs));
    CHECK(!gw->dirty);
    CHECK_EQ(broker_pubs_arrive(pubs, "late-1", 6, 1000), 0);
    CHECK(broker_pubs_dirty(pubs));
    CHECK(!s_find(pubs, "gw-1")->dirty);

    //  Loaded entries are clean and go on from their stored seq.
    CHECK_EQ(broker_pubs_load(pubs, "stored-1", 8, 100, 7, 1000), 0);
    broker_pub_t *st = s_find(pubs, "stored-1");
    CHECK(st && !st->dirty);
    CHECK_EQ(broker_pubs_arrive(pubs, "stored-1", 102, 1000), 1);
    CHECK_EQ(st->lost, 8);

    //  Many publishers: the table grows, every entry stays reachable.
    char src[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(src, sizeof(src), "many-%d", i);
        CHECK_EQ(broker_pubs_arrive(pubs, src, 1, 1000), 0);
    }
    CHECK_EQ(broker_pubs_count(pubs), 3 + 1000);
    for (int i = 0; i < 1000; i += 97) {
        snprintf(src, sizeof(src), "many-%d", i);
        CHECK(s_find(pubs, src));
        CHECK_EQ(broker_pubs_arrive(pubs, src, 3, 1000), 1);
    }
    CHECK_EQ(s_find(pubs, "gw-1")->last, 2);

    //  Idle entries go; the names wait for the next clean (LMDB deletes).
    broker_pubs_clean(pubs);
    CHECK_EQ(broker_pubs_arrive(pubs, "gw-1", 3, 50000), 0);
    size_t before = broker_pubs_count(pubs);
    CHECK_EQ(broker_pubs_expire(pubs, 1000 + 60001), before - 1);
    CHECK_EQ(broker_pubs_count(pubs), 1);
    CHECK(s_find(pubs, "gw-1"));
    CHECK(broker_pubs_forgotten_count(pubs) > 0);
    CHECK(broker_pubs_dirty(pubs));
    broker_pubs_clean(pubs);
    CHECK_EQ(broker_pubs_forgotten_count(pubs), 0);
    //  A forgotten src that comes back is new again (slow-joiner rule).
    CHECK_EQ(broker_pubs_arrive(pubs, "late-1", 10, 61002), 9);

    broker_pubs_destroy(&pubs);
    CHECK(pubs == NULL);
    broker_pubs_destroy(&pubs);  //  NULL-safe
    printf("unit.broker_pubs: ok\n");
    return 0;
}

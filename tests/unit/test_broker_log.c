/*  unit.broker_log: the change log, history, audit and series records of
    broker_store: append and trim of the log, history trimmed to
    BROKER_HISTORY_KEEP per user and walked newest first without touching
    the next user's, audit entries newest first with every field, series
    points and their 30-day trim, a session's login time across a reopen,
    and a short meta record (older broker) read with later counters 0. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_store.h"
#include "storeutil.h"
#include "testutil.h"

static int
s_fill_log(broker_store_t *store, void *arg)
{
    (void)arg;
    char body[32];
    for (uint64_t seq = 1; seq <= 300; seq++) {
        int n = snprintf(body, sizeof(body), "change %llu",
                         (unsigned long long)seq);
        if (broker_store_put_change(store, seq, body, (size_t)n))
            return -1;
        broker_hist_rec_t h = {.seq = seq,
                               .at = 1000 + seq,
                               .state = PRES_ONLINE,
                               .prev = PRES_OFFLINE,
                               .reason = PRES_RSN_LOGIN};
        //  "ann" gets 200 transitions, "anna" (a longer id with ann as
        //  prefix) gets 100: trimming one must not touch the other.
        if (broker_store_put_history(store, seq % 3 ? "ann" : "anna", &h))
            return -1;
    }
    return broker_store_trim_changes(store, 101, 1000);
}

typedef struct {
    uint64_t first, last, count;
    bool ordered;
} s_walk_t;

static int
s_change(uint64_t seq, const void *body, size_t len, void *arg)
{
    s_walk_t *w = arg;
    char want[32];
    int n =
        snprintf(want, sizeof(want), "change %llu", (unsigned long long)seq);
    CHECK_EQ(len, n);
    CHECK(memcmp(body, want, len) == 0);
    if (!w->count)
        w->first = seq;
    else if (seq != w->last + 1)
        w->ordered = false;
    w->last = seq;
    return ++w->count >= 50 ? 1 : 0;
}

static int
s_hist(const broker_hist_rec_t *rec, void *arg)
{
    s_walk_t *w = arg;
    CHECK_EQ(rec->at, 1000 + rec->seq);
    CHECK_EQ(rec->reason, PRES_RSN_LOGIN);
    if (w->count && rec->seq >= w->last)
        w->ordered = false;  //  newest first
    w->last = rec->seq;
    w->count++;
    return 0;
}

static int
s_fill_audit(broker_store_t *store, void *arg)
{
    (void)arg;
    broker_audit_rec_t a = {
        .at = 5, .old = PRES_ACC_ACTIVE, .status = PRES_ACC_BANNED};
    strcpy(a.by, "root");
    strcpy(a.reason, "fraud");
    broker_audit_rec_t b = {
        .at = 6, .old = PRES_ACC_BANNED, .status = PRES_ACC_ACTIVE};
    strcpy(b.by, "unix:ops");
    return broker_store_put_audit(store, "bob", 1, &a) ||
           broker_store_put_audit(store, "bo", 2, &b) ||
           broker_store_put_audit(store, "bob", 3, &b);
}

static int
s_audit(const broker_audit_rec_t *rec, void *arg)
{
    broker_audit_rec_t *out = arg;
    out[out[0].at ? (out[1].at ? 2 : 1) : 0] = *rec;
    return 0;
}

static uint64_t s_minute0 = 1700000000000ull - 1700000000000ull % 60000;

static int
s_fill_series(broker_store_t *store, void *arg)
{
    int n = *(int *)arg;
    for (int i = 0; i < n; i++)
        if (broker_store_put_point(store, s_minute0 + (uint64_t)i * 60000,
                                   (uint64_t)i, 1))
            return -1;
    return 0;
}

static int
s_point(uint64_t minute, uint64_t online, uint64_t away, void *arg)
{
    s_walk_t *w = arg;
    CHECK_EQ(away, 1);
    CHECK_EQ(minute, s_minute0 + online * 60000);
    if (!w->count)
        w->first = minute;
    w->last = minute;
    w->count++;
    return 0;
}

static int
s_fill_session(broker_store_t *store, void *arg)
{
    (void)arg;
    broker_session_rec_t s = {
        .last_hb = 900, .since = 777, .state = PRES_ONLINE};
    strcpy(s.device, "laptop");
    return broker_store_put_session(store, "ann", "s9", &s);
}

int
main(void)
{
    char dir[64];
    st_tmpdir(dir, sizeof(dir), "log");
    broker_store_t *store = broker_store_new(dir, 1 << 20);
    CHECK(store);

    //  Log: 1..300 appended, then everything below 101 trimmed.
    CHECK(broker_store_write(store, true, s_fill_log, NULL) == 0);
    CHECK(broker_store_read_begin(store) == 0);
    uint64_t first = 0;
    CHECK_EQ(broker_store_first_change(store, &first), 0);
    CHECK_EQ(first, 101);
    s_walk_t w = {.ordered = true};
    CHECK(broker_store_each_change(store, 250, s_change, &w) == 0);
    CHECK_EQ(w.first, 250);
    CHECK_EQ(w.last, 299);  //  the callback stopped after 50
    CHECK(w.ordered);
    //  History: at least 100 kept (128), newest first, per user.
    w = (s_walk_t){.ordered = true};
    CHECK(broker_store_each_history(store, "ann", s_hist, &w) == 0);
    CHECK_EQ(w.count, BROKER_HISTORY_KEEP);
    CHECK(w.ordered);
    w = (s_walk_t){.ordered = true};
    CHECK(broker_store_each_history(store, "anna", s_hist, &w) == 0);
    CHECK_EQ(w.count, 100);
    CHECK(w.ordered);
    w = (s_walk_t){.ordered = true};
    CHECK(broker_store_each_history(store, "an", s_hist, &w) == 0);
    CHECK_EQ(w.count, 0);
    broker_store_read_end(store);

    //  Audit: newest first, every field, one user only.
    CHECK(broker_store_write(store, true, s_fill_audit, NULL) == 0);
    CHECK(broker_store_read_begin(store) == 0);
    broker_audit_rec_t got[3];
    memset(got, 0, sizeof(got));
    CHECK(broker_store_each_audit(store, "bob", s_audit, got) == 0);
    CHECK_EQ(got[0].at, 6);
    CHECK_STR(got[0].by, "unix:ops");
    CHECK_STR(got[0].reason, "");
    CHECK_EQ(got[0].status, PRES_ACC_ACTIVE);
    CHECK_EQ(got[1].at, 5);
    CHECK_STR(got[1].by, "root");
    CHECK_STR(got[1].reason, "fraud");
    CHECK_EQ(got[1].old, PRES_ACC_ACTIVE);
    CHECK_EQ(got[1].status, PRES_ACC_BANNED);
    CHECK_EQ(got[2].at, 0);  //  "bo" is another user
    broker_store_read_end(store);

    //  Series: 30 days kept; the oldest go as new minutes come.
    int n = BROKER_SERIES_KEEP + 10;
    CHECK(broker_store_write(store, true, s_fill_series, &n) == 0);
    CHECK(broker_store_read_begin(store) == 0);
    w = (s_walk_t){0};
    CHECK(broker_store_each_point(store, 0, s_point, &w) == 0);
    CHECK_EQ(w.count, BROKER_SERIES_KEEP);
    CHECK_EQ(w.last, s_minute0 + (uint64_t)(n - 1) * 60000);
    CHECK_EQ(w.first, s_minute0 + 10 * 60000);
    w = (s_walk_t){0};
    CHECK(broker_store_each_point(store, s_minute0 + 43000 * 60000ull, s_point,
                                  &w) == 0);
    CHECK_EQ(w.count, n - 43000);
    broker_store_read_end(store);

    //  A session's login time survives a reopen.
    CHECK(broker_store_write(store, true, s_fill_session, NULL) == 0);
    broker_store_destroy(&store);
    store = broker_store_new(dir, 1 << 20);
    CHECK(store);
    CHECK(broker_store_read_begin(store) == 0);
    broker_session_rec_t s;
    CHECK_EQ(broker_store_get_session(store, "ann", "s9", &s), 0);
    CHECK_EQ(s.since, 777);
    CHECK_EQ(s.last_hb, 900);
    CHECK_STR(s.device, "laptop");
    CHECK_EQ(broker_store_first_change(store, &first), 0);
    CHECK_EQ(first, 101);
    broker_store_read_end(store);
    broker_store_destroy(&store);
    st_rmtree(dir);
    printf("unit.broker_log: ok\n");
    return 0;
}

/*  unit.broker_store: the LMDB layer and the state on top of it: open and
    close, users and sessions, the live index, seq and counters across a
    reopen, the publisher table (MDB_MAP_FULL growth has its own file,
    test_broker_store_fault.c). */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_pubs.h"
#include "broker_state.h"
#include "broker_store.h"
#include "storeutil.h"
#include "testutil.h"

static int
s_fill_basic(broker_store_t *store, void *arg)
{
    (void)arg;
    broker_user_rec_t u = {.account = PRES_ACC_SUSPENDED,
                           .state = PRES_OFFLINE,
                           .last_seen = 1234};
    strcpy(u.reason, "spam");
    broker_session_rec_t s = {.last_hb = 99, .state = PRES_AWAY};
    strcpy(s.device, "phone");
    broker_meta_t m = {.seq = 42, .users = 1, .sessions = 1};
    m.accounts[PRES_ACC_SUSPENDED] = 1;
    return broker_store_put_user(store, "alice", 5, &u) ||
           broker_store_put_session(store, "alice", "s1", &s) ||
           broker_store_set_state(store, "alice", 5, PRES_OFFLINE, PRES_AWAY) ||
           broker_store_put_pub(store, "gw-1", 10, 3) ||
           broker_store_put_meta(store, &m);
}

static int
s_count_user(const char *user, size_t len, void *arg)
{
    (void)user;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

static int
s_count_pub(const char *src, size_t len, uint64_t last, uint64_t lost,
            void *arg)
{
    CHECK(len == 4 && memcmp(src, "gw-1", 4) == 0);
    CHECK_EQ(last, 10);
    CHECK_EQ(lost, 3);
    (*(int *)arg)++;
    return 0;
}

int
main(void)
{
    char dir[64];
    st_tmpdir(dir, sizeof(dir), "store");
    broker_store_t *store = broker_store_new(dir, 1 << 20);
    CHECK(store);
    CHECK(broker_store_write(store, true, s_fill_basic, NULL) == 0);
    broker_store_destroy(&store);
    CHECK(store == NULL);

    //  Reopen: everything is there.
    store = broker_store_new(dir, 1 << 20);
    CHECK(store);
    CHECK(broker_store_read_begin(store) == 0);
    broker_user_rec_t u;
    CHECK_EQ(broker_store_get_user(store, "alice", 5, &u), 0);
    CHECK_EQ(u.account, PRES_ACC_SUSPENDED);
    CHECK_EQ(u.last_seen, 1234);
    CHECK_STR(u.reason, "spam");
    CHECK_EQ(broker_store_get_user(store, "bob", 3, &u), BROKER_STORE_NOTFOUND);
    broker_session_rec_t s;
    CHECK_EQ(broker_store_get_session(store, "alice", "s1", &s), 0);
    CHECK_EQ(s.last_hb, 99);
    CHECK_EQ(s.state, PRES_AWAY);
    CHECK_STR(s.device, "phone");
    broker_meta_t m;
    CHECK(broker_store_get_meta(store, &m) == 0);
    CHECK_EQ(m.seq, 42);
    CHECK_EQ(m.accounts[PRES_ACC_SUSPENDED], 1);
    int n = 0;
    CHECK(broker_store_each_user(store, true, PRES_AWAY, "", s_count_user,
                                 &n) == 0);
    CHECK_EQ(n, 1);
    n = 0;
    CHECK(broker_store_each_user(store, true, PRES_ONLINE, "", s_count_user,
                                 &n) == 0);
    CHECK_EQ(n, 0);
    n = 0;
    CHECK(broker_store_each_user(store, true, PRES_AWAY, "alice", s_count_user,
                                 &n) == 0);
    CHECK_EQ(n, 0);  //  strictly after the cursor
    n = 0;
    CHECK(broker_store_each_pub(store, s_count_pub, &n) == 0);
    CHECK_EQ(n, 1);
    broker_store_read_end(store);
    //  Giving the map's pages back loses nothing: they are read again.
    CHECK(broker_store_release(store) == 0);
    CHECK(broker_store_read_begin(store) == 0);
    CHECK_EQ(broker_store_get_user(store, "alice", 5, &u), 0);
    CHECK_STR(u.reason, "spam");
    CHECK_EQ(broker_store_get_session(store, "alice", "s1", &s), 0);
    CHECK_STR(s.device, "phone");
    broker_store_read_end(store);

    broker_store_destroy(&store);

    //  The state over the store: seq and counters continue after reopen.
    pres_config_t cfg;
    pres_config_defaults(&cfg);
    CHECK(pres_config_finish(&cfg) == 0);
    broker_state_t *state;
    st_open(dir, 1 << 20, &cfg, &store, &state);
    CHECK_EQ(broker_state_meta(state)->seq, 42);
    pres_event_t ev = {.type = PRES_EV_LOGIN, .seq = 1};
    strcpy(ev.user, "carol");
    strcpy(ev.session, "c1");
    strcpy(ev.src, "gateway-x");
    broker_state_begin(state, 1000);
    CHECK_EQ(broker_state_apply(state, &ev), 0);
    ev.type = PRES_EV_HEARTBEAT;
    ev.seq = 5;  //  3 lost
    CHECK_EQ(broker_state_apply(state, &ev), 0);
    strcpy(ev.user, "alice");  //  suspended: refused
    ev.seq = 6;
    CHECK_EQ(broker_state_apply(state, &ev), 1);
    CHECK(broker_state_commit(state) == 0);
    CHECK_EQ(broker_state_outbox_count(state), 1);
    broker_state_outbox_clear(state);
    const broker_meta_t *meta = broker_state_meta(state);
    CHECK_EQ(meta->seq, 43);
    CHECK_EQ(meta->online, 1);
    CHECK_EQ(meta->users, 2);
    CHECK_EQ(meta->lost, 3);
    CHECK_EQ(meta->refused, 1);
    CHECK_EQ(meta->applied, 2);
    st_close(&store, &state);

    st_open(dir, 1 << 20, &cfg, &store, &state);
    meta = broker_state_meta(state);
    CHECK_EQ(meta->seq, 43);
    CHECK_EQ(meta->online, 1);
    CHECK_EQ(meta->sessions, 2);  //  alice's stored session + carol's
    CHECK_EQ(meta->lost, 3);
    broker_pubs_t *pubs = broker_state_pubs(state);
    bool found = false;
    for (size_t i = 0; i < broker_pubs_count(pubs); i++)
        if (strcmp(broker_pubs_at(pubs, i)->src, "gateway-x") == 0) {
            CHECK_EQ(broker_pubs_at(pubs, i)->last, 6);
            found = true;
        }
    CHECK(found);
    //  The publisher table's rules.
    CHECK_EQ(broker_pubs_arrive(pubs, "gateway-x", 7, 1), 0);
    CHECK_EQ(broker_pubs_arrive(pubs, "gateway-x", 10, 1), 2);
    CHECK_EQ(broker_pubs_arrive(pubs, "gateway-x", 1, 1), 0);  //  restart
    CHECK_EQ(broker_pubs_arrive(pubs, "fresh", 5, 1), 4);      //  slow joiner
    st_close(&store, &state);
    st_rmtree(dir);
    return 0;
}

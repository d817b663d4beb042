/*  unit.broker_store_fault: MDB_MAP_FULL growth. A write that overflows a
    1 MiB map is aborted, the map doubled and the fill replayed, both in
    the store alone and for a state batch (every change of the batch is
    kept, in order, and durable after a reopen). */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_state.h"
#include "broker_store.h"
#include "testutil.h"

#define S_USERS 20000

static int
s_rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int s_fills;  //  calls of s_fill_big (replays show as > 1)

static int
s_fill_big(broker_store_t *store, void *arg)
{
    (void)arg;
    s_fills++;
    broker_user_rec_t u = {.last_seen = 1};
    memset(u.reason, 'r', 200);
    char id[32];
    for (int i = 0; i < S_USERS; i++) {
        int n = snprintf(id, sizeof(id), "big%07d", i);
        if (broker_store_put_user(store, id, (size_t)n, &u))
            return -1;
    }
    return 0;
}

static int
s_count_user(const char *user, size_t len, void *arg)
{
    (void)user;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

static void
test_store(const char *dir)
{
    broker_store_t *store = broker_store_new(dir, 1 << 20);
    CHECK(store);
    size_t before = broker_store_map_size(store);
    CHECK_EQ(before, 1 << 20);
    CHECK_EQ(broker_store_write(store, true, s_fill_big, NULL), 0);
    CHECK(broker_store_map_size(store) > before);
    CHECK(s_fills > 1);  //  aborted and replayed
    CHECK_EQ(broker_store_commits(store), 1);
    broker_store_destroy(&store);
    //  Reopened with the old size: the env keeps the grown map.
    store = broker_store_new(dir, 1 << 20);
    CHECK(store);
    CHECK(broker_store_map_size(store) > before);
    CHECK_EQ(broker_store_read_begin(store), 0);
    broker_user_rec_t u;
    CHECK_EQ(broker_store_get_user(store, "big0019999", 10, &u), 0);
    int n = 0;
    CHECK_EQ(broker_store_each_user(store, false, PRES_OFFLINE, "",
                                    s_count_user, &n),
             0);
    CHECK_EQ(n, S_USERS);
    broker_store_read_end(store);
    broker_store_destroy(&store);
}

//  One state batch of 20000 logins on a fresh 1 MiB map.
static void
test_state(const char *dir)
{
    pres_config_t cfg;
    pres_config_defaults(&cfg);
    CHECK_EQ(pres_config_finish(&cfg), 0);
    broker_store_t *store = broker_store_new(dir, 1 << 20);
    CHECK(store);
    broker_state_t *state = broker_state_new(&cfg, store);
    CHECK(state);
    broker_state_begin(state, 1000);
    pres_event_t ev = {.type = PRES_EV_LOGIN};
    strcpy(ev.src, "gateway-fault-1");
    strcpy(ev.session, "a-rather-long-session-identifier-0123456789");
    for (int i = 0; i < S_USERS; i++) {
        snprintf(ev.user, sizeof(ev.user), "user-%05d-with-a-longer-id", i);
        ev.seq = (uint64_t)i + 1;
        CHECK_EQ(broker_state_apply(state, &ev), 0);
    }
    CHECK_EQ(broker_state_commit(state), 0);
    CHECK(broker_store_map_size(store) > (1 << 20));
    CHECK_EQ(broker_state_outbox_count(state), S_USERS);
    for (size_t i = 0; i < S_USERS; i += 1999) {
        const char *topic;
        const void *body;
        size_t tlen, blen;
        broker_state_outbox_get(state, i, &topic, &tlen, &body, &blen);
        pres_change_t ch;
        const char *why;
        CHECK_EQ(pres_change_decode(&ch, body, blen, &why), 0);
        CHECK_EQ(ch.seq, i + 1);
    }
    broker_state_destroy(&state);
    broker_store_destroy(&store);
    store = broker_store_new(dir, 1 << 20);
    CHECK(store);
    state = broker_state_new(&cfg, store);
    CHECK(state);
    CHECK_EQ(broker_state_meta(state)->seq, S_USERS);
    CHECK_EQ(broker_state_meta(state)->sessions, S_USERS);
    CHECK_EQ(broker_state_meta(state)->online, S_USERS);
    broker_state_destroy(&state);
    broker_store_destroy(&store);
}

int
main(void)
{
    char dir[] = "/tmp/pres-unit-fault-XXXXXX";
    CHECK(mkdtemp(dir));
    char sub[64];
    snprintf(sub, sizeof(sub), "%s/store", dir);
    CHECK_EQ(mkdir(sub, 0700), 0);
    test_store(sub);
    snprintf(sub, sizeof(sub), "%s/state", dir);
    CHECK_EQ(mkdir(sub, 0700), 0);
    test_state(sub);
    nftw(dir, s_rm, 8, FTW_DEPTH | FTW_PHYS);
    printf("unit.broker_store_fault: ok\n");
    return 0;
}

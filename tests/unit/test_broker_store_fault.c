/*  unit.broker_store_fault: MDB_MAP_FULL growth, and a disk that refuses
    writes. A write that overflows a 1 MiB map is aborted, the map doubled
    and the fill replayed, both in the store alone and for a state batch
    (every change of the batch is kept, in order, and durable after a
    reopen). A batch whose write fails (RLIMIT_FSIZE stands in for a full
    disk: writes past it fail with EFBIG) publishes nothing, counts its
    events refused, leaves the durable state as it was, and the next batch
    works once writes succeed again. */
#define _XOPEN_SOURCE 700
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "broker_state.h"
#include "broker_store.h"
#include "storeutil.h"
#include "testutil.h"

#define S_USERS 20000

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
    broker_store_t *store;
    broker_state_t *state;
    st_open(dir, 1 << 20, &cfg, &store, &state);
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
    st_close(&store, &state);
    st_open(dir, 1 << 20, &cfg, &store, &state);
    CHECK_EQ(broker_state_meta(state)->seq, S_USERS);
    CHECK_EQ(broker_state_meta(state)->sessions, S_USERS);
    CHECK_EQ(broker_state_meta(state)->online, S_USERS);
    st_close(&store, &state);
}

static void
s_login_batch(broker_state_t *state, int first, int n, uint64_t *pub_seq)
{
    broker_state_begin(state, 5000 + (uint64_t)first);
    pres_event_t ev = {.type = PRES_EV_LOGIN};
    strcpy(ev.src, "gateway-fault-2");
    strcpy(ev.session, "a-rather-long-session-identifier-0123456789");
    for (int i = first; i < first + n; i++) {
        snprintf(ev.user, sizeof(ev.user), "full-%05d-with-a-longer-id", i);
        ev.seq = ++*pub_seq;
        CHECK_EQ(broker_state_apply(state, &ev), 0);
    }
}

static void
s_fsize(rlim_t bytes)
{
    struct rlimit rl = {bytes, RLIM_INFINITY};
    CHECK_EQ(setrlimit(RLIMIT_FSIZE, &rl), 0);
}

static void
test_write_fails(const char *dir)
{
    signal(SIGXFSZ, SIG_IGN);  //  EFBIG instead of a signal
    pres_config_t cfg;
    pres_config_defaults(&cfg);
    CHECK_EQ(pres_config_finish(&cfg), 0);
    broker_store_t *store;
    broker_state_t *state;
    st_open(dir, 64 << 20, &cfg, &store, &state);
    uint64_t pub_seq = 0;
    s_login_batch(state, 0, 100, &pub_seq);
    CHECK_EQ(broker_state_commit(state), 0);
    CHECK_EQ(broker_state_outbox_count(state), 100);
    broker_state_outbox_clear(state);
    broker_meta_t before = *broker_state_meta(state);

    //  The data file may not grow: a big batch cannot be written.
    char path[128];
    snprintf(path, sizeof(path), "%s/data.mdb", dir);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    s_fsize((rlim_t)st.st_size);
    s_login_batch(state, 100, 5000, &pub_seq);
    CHECK_EQ(broker_state_commit(state), 1);
    CHECK_EQ(broker_state_outbox_count(state), 0);  //  nothing to publish
    const broker_meta_t *m = broker_state_meta(state);
    CHECK_EQ(m->seq, before.seq);
    CHECK_EQ(m->online, before.online);
    CHECK_EQ(m->sessions, before.sessions);
    CHECK_EQ(m->users, before.users);
    CHECK_EQ(m->applied, before.applied);
    CHECK_EQ(m->refused, before.refused + 5000);
    CHECK_EQ(m->lost, 0);
    broker_live_t *live = broker_state_live(state);
    CHECK_EQ(broker_live_session_count(live), 100);
    CHECK(broker_live_user_find(live, "full-00100-with-a-longer-id", 27) ==
          BROKER_LIVE_NONE);
    //  The last_seen flush fails the same way and keeps its work.
    pres_event_t hb = {.type = PRES_EV_HEARTBEAT, .seq = ++pub_seq};
    strcpy(hb.src, "gateway-fault-2");
    strcpy(hb.user, "full-00000-with-a-longer-id");
    strcpy(hb.session, "a-rather-long-session-identifier-0123456789");

    //  Space returns: the same batch goes through, seq continues.
    s_fsize(RLIM_INFINITY);
    s_login_batch(state, 100, 5000, &pub_seq);
    CHECK_EQ(broker_state_commit(state), 0);
    CHECK_EQ(broker_state_outbox_count(state), 5000);
    const char *topic;
    const void *body;
    size_t tlen, blen;
    broker_state_outbox_get(state, 0, &topic, &tlen, &body, &blen);
    pres_change_t ch;
    const char *why;
    CHECK_EQ(pres_change_decode(&ch, body, blen, &why), 0);
    CHECK_EQ(ch.seq, before.seq + 1);
    broker_state_outbox_clear(state);
    broker_state_begin(state, 9000);
    CHECK_EQ(broker_state_apply(state, &hb), 0);
    CHECK_EQ(broker_state_commit(state), 0);
    CHECK(broker_state_dirty(state));
    CHECK_EQ(broker_state_flush(state), 0);
    st_close(&store, &state);

    //  Reopen: exactly the durable batches.
    st_open(dir, 64 << 20, &cfg, &store, &state);
    CHECK_EQ(broker_state_meta(state)->seq, before.seq + 5000);
    CHECK_EQ(broker_state_meta(state)->sessions, 5100);
    st_close(&store, &state);
}

int
main(void)
{
    char dir[64];
    st_tmpdir(dir, sizeof(dir), "fault");
    char sub[sizeof(dir) + 16];
    snprintf(sub, sizeof(sub), "%s/store", dir);
    CHECK_EQ(mkdir(sub, 0700), 0);
    test_store(sub);
    snprintf(sub, sizeof(sub), "%s/state", dir);
    CHECK_EQ(mkdir(sub, 0700), 0);
    test_state(sub);
    snprintf(sub, sizeof(sub), "%s/full", dir);
    CHECK_EQ(mkdir(sub, 0700), 0);
    test_write_fails(sub);
    st_rmtree(dir);
    printf("unit.broker_store_fault: ok\n");
    return 0;
}

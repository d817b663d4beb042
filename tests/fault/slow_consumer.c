/*  fault.slow_consumer: subscribers that stop reading (a stuck admin
    console: presencectl watch under SIGSTOP; a raw SUB that never reads;
    an SSE client that stops reading) while the broker publishes a burst
    of changes. The broker applies the whole burst and a subscriber that
    keeps reading receives every change, without a gap (PUB drops for the
    stuck ones, it never waits for them). The stuck ones see their loss as
    a seq gap (SSE: an `event: resync`) and resync: watch and the SSE
    client end at the broker's head. bus_hwm is small here so the loss
    comes quickly, and the burst is paced so that the reading subscriber
    keeps up even on a busy machine. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ithttp.h"
#include "pres_jwt.h"
#include "testutil.h"

#define S_BURST 30000    //  changes in a burst (> the SSE ring, > 2 x S_HWM)
#define S_RATE  5000     //  changes a second
#define S_HWM   "10000"  //  bus_hwm: the reader may stall S_HWM / S_RATE s

static it_env_t env;
static it_proc_t broker, gateway, watch;
static pres_config_t cfg;

//  The reading subscriber, in its own thread.
static atomic_bool stop;
static atomic_uint_fast64_t fast_last, fast_count, fast_gaps;

static void *
s_fast(void *arg)
{
    zsock_t *sub = arg;
    while (!atomic_load(&stop)) {
        pres_change_t ch;
        int rc = it_recv(sub, &ch, NULL, 100);
        CHECK(rc >= 0);
        if (rc != 1 || strcmp(ch.user, IT_SYNC_USER) == 0)
            continue;
        uint64_t last = atomic_load(&fast_last);
        if (last && ch.seq != last + 1)
            atomic_fetch_add(&fast_gaps, 1);
        atomic_store(&fast_last, ch.seq);
        atomic_fetch_add(&fast_count, 1);
    }
    return NULL;
}

int
main(void)
{
    signal(SIGPIPE, SIG_IGN);
    CHECK_EQ(it_env_init(&env, "slow-consumer"), 0);
    it_env_set(&env, "bus_hwm", S_HWM);
    it_env_set(&env, "timeout", "600");
    it_env_set(&env, "rate_limit", "0");
    it_env_set(&env, "sse_keepalive", "1");
    CHECK_EQ(it_env_config(&env, &cfg), 0);
    CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
    int port = ith_gateway_start(&env, NULL, &gateway);
    CHECK(port > 0);
    static const char *const watch_argv[] = {"--json", "watch", NULL};
    CHECK_EQ(it_spawn(&env, "presencectl", watch_argv, NULL, &watch), 0);
    IT_POLL_UNTIL(it_proc_log_has(&watch, "watching changes"), 20000);
    CHECK(it_proc_log_has(&watch, "watching changes"));
    char *admin = ith_token(&env, "slow-admin", true, 3600);
    CHECK(admin);
    ith_follower_t *sse_fast = ith_follower_new(port, admin);
    ith_follower_t *sse_stuck = ith_follower_new(port, admin);
    CHECK(sse_fast && sse_stuck);

    //  Subscribers: one that reads, one that never does.
    pres_pub_t *pub = it_pub_new(&cfg, "slow-frontend-1");
    CHECK(pub);
    //  The reader: no HWM on its side (set before connecting: a pipe takes
    //  the HWM of its socket when it is made), so only the broker's HWM
    //  and our I/O thread matter, not how often the box runs our thread.
    zsock_t *fast = zsock_new(ZMQ_SUB);
    CHECK(fast);
    zsock_set_rcvhwm(fast, 0);
    zsock_set_subscribe(fast, "");
    CHECK_EQ(zsock_connect(fast, "%s", cfg.changes_endpoint), 0);
    zsock_t *stuck = pres_bus_sub_changes(&cfg, PRES_CHANGE_PREFIX);
    CHECK(stuck);
    CHECK_EQ(it_sync(fast, pub, 10000), 0);
    CHECK_EQ(it_sync(stuck, pub, 10000), 0);
    pthread_t fast_t;
    CHECK_EQ(pthread_create(&fast_t, NULL, s_fast, fast), 0);

    //  Everyone is at the head before the consoles get stuck. An SSE
    //  follower attaches in its own thread: a warm-up change made before
    //  its stream is open never reaches it, so log in one more warm-up
    //  user each round until every consumer has seen the head.
    uint64_t head0 = 0;
    for (int round = 0; round < 20; round++) {
        char user[32];
        snprintf(user, sizeof(user), "slow-warmup-%d", round);
        CHECK_EQ(it_send_login(pub, user, "w1"), 0);
        CHECK(it_wait_user(&cfg, user, "online", 10000));
        head0 = it_stat(&cfg, "seq");
        IT_POLL_UNTIL(ith_follower_last(sse_stuck) >= head0 &&
                          ith_follower_last(sse_fast) >= head0 &&
                          ith_watch_position(&watch) >= head0,
                      1000);
        if (ith_follower_last(sse_stuck) >= head0 &&
            ith_follower_last(sse_fast) >= head0 &&
            ith_watch_position(&watch) >= head0)
            break;
    }
    CHECK(ith_follower_last(sse_stuck) >= head0);
    CHECK(ith_watch_position(&watch) >= head0);
    CHECK_EQ(it_proc_signal(&watch, SIGSTOP), 0);
    ith_follower_stall(sse_stuck, true);

    //  The burst: logins and logouts, each a change, at S_RATE a second:
    //  a reader that keeps up stays well inside bus_hwm even when the box
    //  deschedules it for a while; the stuck ones fall behind regardless.
    int64_t t0 = pres_mono_ms();
    char user[32];
    for (int i = 0; i < S_BURST; i++) {
        if (i % 100 == 0) {  //  pacing, not a wait for the system
            int64_t due = t0 + (int64_t)i * 1000 / S_RATE;
            if (due > pres_mono_ms())
                it_sleep_ms((int)(due - pres_mono_ms()));
        }
        snprintf(user, sizeof user, "slow-%04d", i % 1000);
        if ((i / 1000) % 2 == 0)
            CHECK_EQ(it_send_login(pub, user, "s"), 0);
        else
            CHECK_EQ(it_send_logout(pub, user, "s"), 0);
    }
    uint64_t head = head0 + S_BURST;
    CHECK_EQ(it_wait_stat(&cfg, "seq", head, 60000), head);
    int64_t applied_ms = pres_mono_ms() - t0;
    //  The reader got every change, in order.
    IT_POLL_UNTIL(atomic_load(&fast_last) >= head, 20000);
    fprintf(stderr,
            "burst of %d changes applied in %" PRId64 " ms with three stuck "
            "subscribers; the reading one got %" PRIu64 ", gaps %" PRIu64 "\n",
            S_BURST, applied_ms, (uint64_t)atomic_load(&fast_count),
            (uint64_t)atomic_load(&fast_gaps));
    CHECK_EQ(atomic_load(&fast_last), head);
    CHECK_EQ(atomic_load(&fast_gaps), 0);
    CHECK(atomic_load(&fast_count) >= S_BURST);
    CHECK_EQ(it_stat(&cfg, "events.lost"), 0);
    //  The reading SSE client is at the head too.
    IT_POLL_UNTIL(ith_follower_last(sse_fast) >= head, 20000);
    fprintf(stderr,
            "reading SSE client at %" PRIu64 " (head %" PRIu64
            "), resyncs %" PRIu64 "\n",
            ith_follower_last(sse_fast), head, ith_follower_resyncs(sse_fast));
    CHECK(ith_follower_last(sse_fast) >= head);

    //  The raw SUB that never read: what it has shows the loss as a gap.
    uint64_t prev = 0, got = 0, gaps = 0;
    pres_change_t ch;
    while (it_recv(stuck, &ch, NULL, 200) == 1) {
        if (prev && ch.seq != prev + 1)
            gaps++;
        prev = ch.seq;
        got++;
    }
    //  The next change shows it the loss as a gap.
    CHECK_EQ(it_send_login(pub, "slow-after", "s"), 0);
    head++;
    CHECK_EQ(it_wait_change(stuck, "slow-after", &ch, 10000), 0);
    CHECK_EQ(ch.seq, head);
    gaps += prev + 1 != ch.seq;
    fprintf(stderr,
            "stuck SUB: %" PRIu64 " of %d changes queued, then a "
            "gap %" PRIu64 " -> %" PRIu64 "\n",
            got, S_BURST, prev, ch.seq);
    CHECK(got < S_BURST);
    CHECK(gaps > 0);

    //  The stuck console and the stalled SSE client resume and resync.
    CHECK_EQ(it_proc_signal(&watch, SIGCONT), 0);
    ith_follower_stall(sse_stuck, false);
    IT_POLL_UNTIL(ith_watch_position(&watch) >= head, 20000);
    CHECK(ith_watch_position(&watch) >= head);
    CHECK(it_proc_log_has(&watch, "\"resync\":true"));
    IT_POLL_UNTIL(ith_follower_last(sse_stuck) >= head, 20000);
    fprintf(stderr, "stalled SSE client: at %" PRIu64 ", resyncs %" PRIu64 "\n",
            ith_follower_last(sse_stuck), ith_follower_resyncs(sse_stuck));
    CHECK(ith_follower_last(sse_stuck) >= head);
    CHECK(ith_follower_resyncs(sse_stuck) > 0);
    CHECK(it_proc_alive(&broker) && it_proc_alive(&gateway) &&
          it_proc_alive(&watch));

    //  The gateway itself stuck (SIGSTOP) while changes go on: its own
    //  subscription loses the tail, which no later change reveals. Once it
    //  runs again it must notice (the broker's head) and bring its SSE
    //  clients to the head (replayed from the change log, or a resync)
    //  rather than leave them waiting.
    uint64_t resyncs0 = ith_follower_resyncs(sse_fast);
    uint64_t gaps0 = ith_follower_gaps(sse_fast);
    CHECK_EQ(it_proc_signal(&gateway, SIGSTOP), 0);
    t0 = pres_mono_ms();
    for (int i = 0; i < S_BURST; i++) {
        if (i % 100 == 0) {  //  pacing
            int64_t due = t0 + (int64_t)i * 1000 / S_RATE;
            if (due > pres_mono_ms())
                it_sleep_ms((int)(due - pres_mono_ms()));
        }
        snprintf(user, sizeof user, "slow-%04d", i % 1000);
        if ((i / 1000) % 2 == 0)
            CHECK_EQ(it_send_login(pub, user, "g"), 0);
        else
            CHECK_EQ(it_send_logout(pub, user, "g"), 0);
    }
    head += S_BURST;
    CHECK_EQ(it_wait_stat(&cfg, "seq", head, 60000), head);
    CHECK_EQ(it_proc_signal(&gateway, SIGCONT), 0);
    IT_POLL_UNTIL(ith_follower_last(sse_fast) >= head, 20000);
    fprintf(stderr,
            "after the gateway's stall: SSE client at %" PRIu64
            " (head %" PRIu64 "), resyncs %" PRIu64 "\n",
            ith_follower_last(sse_fast), head,
            ith_follower_resyncs(sse_fast) - resyncs0);
    CHECK(ith_follower_last(sse_fast) >= head);
    //  Either the gateway filled the hole from the broker's change log
    //  (every id in order) or it told the client to resync; never a silent
    //  gap.
    CHECK(ith_follower_gaps(sse_fast) == gaps0 ||
          ith_follower_resyncs(sse_fast) > resyncs0);

    atomic_store(&stop, true);
    pthread_join(fast_t, NULL);
    ith_follower_destroy(&sse_fast);
    ith_follower_destroy(&sse_stuck);
    free(admin);
    pres_pub_destroy(&pub);
    zsock_destroy(&fast);
    zsock_destroy(&stuck);
    it_proc_stop(&watch, 5000);
    CHECK_EQ(it_proc_stop(&gateway, 5000), 0);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    printf("fault.slow_consumer: ok\n");
    return 0;
}

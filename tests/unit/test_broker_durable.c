/*  unit.broker_durable: the stage between commit and publication. With a
    sync callback that blocks until the test opens a gate: nothing held
    after a commit is released before the fsync of that commit returned;
    what was held before any pending commit goes out at once; changes go
    out in the order held, then the replies of the same or earlier
    commits; commits that pile up during one fsync share the next; a
    failed fsync releases nothing more. With publish_on_thread: the sync
    thread publishes a batch's changes as soon as its fsync returns (no
    release call), before the loop is told about the replies; a change
    held after its commit became durable goes out from release. No
    timing: the test waits on the sync thread's calls, never sleeps. */
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker_durable.h"
#include "testutil.h"

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int entered;  //  sync calls started
    int opened;   //  sync calls allowed to return (1..opened)
    int fail_at;  //  call number (1-based) that fails, 0 = none
    int only;     //  one more call allowed to return ahead of the others
} s_gate_t;

static s_gate_t s_gate = {
    PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0};

static int
s_sync(void *arg)
{
    s_gate_t *g = arg;
    pthread_mutex_lock(&g->mu);
    int me = ++g->entered;
    pthread_cond_broadcast(&g->cv);
    while (g->opened < me && g->only != me)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return me == g->fail_at ? -1 : 0;
}

//  Wait until the sync threads have entered their n-th call.
static void
s_wait_entered(int n)
{
    pthread_mutex_lock(&s_gate.mu);
    while (s_gate.entered < n)
        pthread_cond_wait(&s_gate.cv, &s_gate.mu);
    pthread_mutex_unlock(&s_gate.mu);
}

//  Let the sync calls 1..n return (no wait).
static void
s_gate_open(int n)
{
    pthread_mutex_lock(&s_gate.mu);
    s_gate.opened = n;
    pthread_cond_broadcast(&s_gate.cv);
    pthread_mutex_unlock(&s_gate.mu);
}

//  Let the sync call n alone return ahead of the others (no wait).
static void
s_gate_only(int n)
{
    pthread_mutex_lock(&s_gate.mu);
    s_gate.only = n;
    pthread_cond_broadcast(&s_gate.cv);
    pthread_mutex_unlock(&s_gate.mu);
}

//  Wait for the stage's fd: a finished fsync signalled it.
static void
s_wait_signal(broker_durable_t *d)
{
    struct pollfd p = {.fd = broker_durable_fd(d), .events = POLLIN};
    CHECK_EQ(poll(&p, 1, 60000), 1);
}

//  Let the sync thread's n-th call return, and wait for its signal.
static void
s_open(broker_durable_t *d, int n)
{
    s_gate_open(n);
    s_wait_signal(d);
}

static char s_q[] = "q";    //  the "socket" of held replies
static char s_out[64][16];  //  what was released, in order
static int s_nout;          //  under s_gate.mu once the thread publishes

static void
s_pub(const void *topic, size_t tlen, const void *body, size_t blen, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&s_gate.mu);
    if (s_nout < 64)
        snprintf(s_out[s_nout], 16, "%.*s:%.*s", (int)tlen, (const char *)topic,
                 (int)blen, (const char *)body);
    s_nout++;
    pthread_cond_broadcast(&s_gate.cv);
    pthread_mutex_unlock(&s_gate.mu);
}

//  Wait until n items were published (by the sync thread).
static void
s_wait_out(int n)
{
    pthread_mutex_lock(&s_gate.mu);
    while (s_nout < n)
        pthread_cond_wait(&s_gate.cv, &s_gate.mu);
    pthread_mutex_unlock(&s_gate.mu);
}

static void
s_reply(void *sock, void *msg, void *arg)
{
    (void)arg;
    CHECK(s_nout < 64);
    snprintf(s_out[s_nout++], 16, "%s>%s", (const char *)sock,
             (const char *)msg);
    free(msg);
}

static void
s_hold(broker_durable_t *d, const char *topic, const char *body)
{
    CHECK_EQ(
        broker_durable_hold_msg(d, topic, strlen(topic), body, strlen(body)),
        0);
}

static int
s_release(broker_durable_t *d)
{
    return broker_durable_release(d, s_pub, s_reply, NULL);
}

//  Release until want items came out (each finished fsync signals the
//  fd; a signal may be left over from one that released nothing new).
static void
s_release_until(broker_durable_t *d, int want)
{
    int got = 0;
    while (got < want) {
        s_wait_signal(d);
        int n = s_release(d);
        CHECK(n >= 0);
        got += n;
    }
    CHECK_EQ(got, want);
}

//  The fixture: a fresh gate (no call entered, none open, none failing),
//  nothing released yet, and a new stage over it; with on_thread, the sync
//  thread publishes.
static broker_durable_t *
s_stage_new(bool on_thread)
{
    pthread_mutex_lock(&s_gate.mu);
    s_gate.entered = s_gate.opened = s_gate.only = s_gate.fail_at = 0;
    s_nout = 0;
    pthread_mutex_unlock(&s_gate.mu);
    broker_durable_t *d = broker_durable_new(s_sync, &s_gate, free);
    CHECK(d);
    if (on_thread)
        broker_durable_publish_on_thread(d, s_pub, NULL);
    return d;
}

int
main(void)
{
    broker_durable_t *d = s_stage_new(false);

    //  Nothing pending: a held notice goes out at the next release.
    s_hold(d, "n", "0");
    CHECK_EQ(s_release(d), 1);
    CHECK_STR(s_out[0], "n:0");

    //  Batch 1 committed: its change waits for the first fsync.
    broker_durable_committed(d);
    s_hold(d, "c", "1");
    CHECK(broker_durable_busy(d));
    s_wait_entered(1);
    //  The loop goes on: batch 2 commits during that fsync and starts its
    //  own at once (a login waits only for its own fsync); a query
    //  answered after it is held behind it.
    broker_durable_committed(d);
    s_hold(d, "c", "2");
    CHECK_EQ(broker_durable_hold_reply(d, s_q, strdup("r2")), 0);
    s_wait_entered(2);
    broker_durable_committed(d);
    s_hold(d, "c", "3");
    s_wait_entered(3);
    CHECK_EQ(s_release(d), 0);  //  every fsync still running: nothing out
    CHECK_EQ(s_nout, 1);

    //  fsync 2 returns first: batches 1 and 2 are durable (both were
    //  written before it started), batch 3 is not; the changes go out in
    //  order, then the reply.
    s_gate_only(2);
    s_wait_signal(d);
    CHECK_EQ(s_release(d), 3);
    CHECK_EQ(s_nout, 4);
    CHECK_STR(s_out[1], "c:1");
    CHECK_STR(s_out[2], "c:2");
    CHECK_STR(s_out[3], "q>r2");
    //  fsync 1 returns late: nothing moves backwards.
    s_open(d, 1);
    CHECK_EQ(s_release(d), 0);
    s_open(d, 3);
    CHECK_EQ(s_release(d), 1);
    CHECK_EQ(s_nout, 5);
    CHECK_STR(s_out[4], "c:3");
    CHECK(!broker_durable_busy(d));

    //  Every sync thread busy: the commits that pile up meanwhile share
    //  the next fsync.
    s_nout = 0;
    for (int i = 4; i <= 7; i++) {
        broker_durable_committed(d);
        s_hold(d, "b", "x");
        s_wait_entered(i);
    }
    broker_durable_committed(d);
    s_hold(d, "p", "8");
    broker_durable_committed(d);
    s_hold(d, "p", "9");
    CHECK_EQ(s_release(d), 0);
    s_gate_open(7);  //  calls 4..7 return; one thread takes 8 and 9
    s_wait_entered(8);
    s_release_until(d, 4);
    s_gate_open(8);
    s_release_until(d, 2);
    CHECK_STR(s_out[4], "p:8");
    CHECK_STR(s_out[5], "p:9");
    CHECK(!broker_durable_busy(d));
    pthread_mutex_lock(&s_gate.mu);
    CHECK_EQ(s_gate.entered, 8);  //  9 commits, 8 fsyncs
    pthread_mutex_unlock(&s_gate.mu);
    broker_durable_stats_t st;
    broker_durable_stats(d, &st);
    CHECK_EQ(st.commits, 9);

    //  Many batches with every fsync let through: held items survive the
    //  compaction of the queue and come out in order.
    s_gate_open(1 << 30);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3000; i++) {
            broker_durable_committed(d);
            s_hold(d, "m", "x");
        }
        s_nout = 0;
        CHECK_EQ(broker_durable_drain(d, s_pub, s_reply, NULL), 3000);
        CHECK(!broker_durable_busy(d));
    }

    //  Idle: the buffers go, and the stage works on from scratch.
    broker_durable_shrink(d);
    s_nout = 0;
    s_hold(d, "n", "9");
    CHECK_EQ(s_release(d), 1);
    CHECK_STR(s_out[0], "n:9");

    //  A failed fsync: what it covered is never released, and release
    //  reports the failure.
    pthread_mutex_lock(&s_gate.mu);
    s_gate.fail_at = s_gate.entered + 1;
    pthread_mutex_unlock(&s_gate.mu);
    broker_durable_committed(d);
    s_hold(d, "c", "lost");
    s_wait_signal(d);
    s_nout = 0;
    CHECK_EQ(s_release(d), -1);
    CHECK_EQ(s_nout, 0);
    CHECK_EQ(broker_durable_hold_reply(d, s_q, strdup("never")), 0);
    broker_durable_destroy(&d);  //  frees the held reply (ASan: no leak)
    CHECK(!d);

    //  The sync thread publishes.
    d = s_stage_new(true);
    s_hold(d, "n", "0");  //  nothing pending: out from release
    CHECK_EQ(s_release(d), 1);
    //  Batch 1 with a reply answered after it; batch 2 during its fsync.
    broker_durable_committed(d);
    s_hold(d, "c", "1");
    CHECK_EQ(broker_durable_hold_reply(d, s_q, strdup("r1")), 0);
    s_wait_entered(1);
    broker_durable_committed(d);
    s_hold(d, "c", "2");
    //  fsync 1 returns: the thread publishes c:1 before it signals the fd
    //  (s_open waits for the signal), and leaves the reply to the loop.
    s_open(d, 1);
    CHECK_EQ(s_nout, 2);
    CHECK_STR(s_out[1], "c:1");
    CHECK_EQ(s_release(d), 1);
    CHECK_EQ(s_nout, 3);
    CHECK_STR(s_out[2], "q>r1");
    //  fsync 2, no reply held: c:2 goes out with no release call.
    s_wait_entered(2);
    s_gate_open(2);
    s_wait_out(4);
    CHECK_STR(s_out[3], "c:2");
    //  A change held after its commit is durable (the thread published
    //  and went idle before it was held): release publishes it.
    broker_durable_committed(d);
    s_wait_entered(3);
    s_gate_open(3);
    CHECK_EQ(broker_durable_drain(d, s_pub, s_reply, NULL), 0);
    s_hold(d, "c", "late");
    CHECK(broker_durable_ready(d));
    CHECK_EQ(s_release(d), 1);
    CHECK_EQ(s_nout, 5);
    CHECK_STR(s_out[4], "c:late");
    CHECK(!broker_durable_busy(d));
    broker_durable_stats(d, &st);
    CHECK_EQ(st.published, 4);
    CHECK_EQ(st.by_thread, 2);
    CHECK_EQ(st.syncs, 3);
    broker_durable_destroy(&d);
    printf("unit.broker_durable: ok\n");
    return 0;
}

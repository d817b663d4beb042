/*  it.sweeper_fake_broker: the real sweeper against a scripted broker
    (the test binds the broker's three sockets). The sweeper subscribes to
    due notices only, is ready once the broker answered its `stats`, and
    answers each due notice with one expire (user, session, the notice's
    deadline; its own src, consecutive seq); frames that are not notices,
    a notice with deadline 0 and a change make it send nothing, and it
    stays up. */
#include "itfake.h"
#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static it_proc_t sweeper;
static pres_config_t cfg;
static it_fake_t *fake;            //  the scripted broker
static char src[PRES_ID_MAX + 1];  //  the sweeper's, from its first expire
static uint64_t last_seq;          //  of its last expire

//  The next event the sweeper published within timeout_ms: 0 and *ev
//  (an expire, checked), or -1 on timeout.
static int
s_next_expire(pres_event_t *ev, int timeout_ms)
{
    zsock_t *sub = it_fake_events(fake);
    zsock_set_rcvtimeo(sub, timeout_ms);
    zmsg_t *m = zmsg_recv(sub);
    if (!m)
        return -1;
    CHECK_EQ(zmsg_size(m), 2);
    char *topic = zmsg_popstr(m);
    zframe_t *body = zmsg_pop(m);
    const char *why;
    CHECK_EQ(pres_event_decode(ev, topic, strlen(topic), zframe_data(body),
                               zframe_size(body), &why),
             0);
    CHECK_EQ(ev->type, PRES_EV_EXPIRE);
    free(topic);
    zframe_destroy(&body);
    zmsg_destroy(&m);
    return 0;
}

//  Publish a due notice and check the expire that answers it comes next,
//  within 1 s (the contract's bound on the whole expiry), from the same
//  src with the next seq.
static void
s_due(const char *user, const char *session, uint64_t deadline)
{
    int64_t sent = pres_mono_ms();
    it_fake_notice(fake, user, session, deadline);
    pres_event_t ev;
    CHECK_EQ(s_next_expire(&ev, 5000), 0);
    int64_t took = pres_mono_ms() - sent;
    fprintf(stderr,
            "  notice %s/%s: expire seq %" PRIu64 " after %" PRId64 " ms\n",
            user, session, ev.seq, took);
    CHECK_STR(ev.user, user);
    CHECK_STR(ev.session, session);
    CHECK_EQ(ev.deadline, deadline);
    CHECK(!strncmp(ev.src, "sweeper-", 8));
    if (!*src)
        snprintf(src, sizeof src, "%s", ev.src);
    CHECK_STR(ev.src, src);
    CHECK_EQ(ev.seq, last_seq + 1);
    last_seq = ev.seq;
    CHECK(took <= 1000);
}

//  The next query within timeout_ms, or NULL. Meanwhile the events SUB is
//  touched as a broker's loop does (a bound SUB sends its subscription
//  only then, and the sweeper waits for it before asking): nothing may
//  have been published on it yet.
static zframe_t *
s_next_request(pres_query_t *q, int timeout_ms)
{
    int64_t until = pres_mono_ms() + timeout_ms;
    do {
        pres_event_t ev;
        CHECK_EQ(s_next_expire(&ev, 0), -1);
        zframe_t *id = it_fake_request(fake, q, 20);
        if (id)
            return id;
    } while (pres_mono_ms() < until);
    return NULL;
}

int
main(void)
{
    CHECK(it_env_init(&env, "sweeper-fake") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    fake = it_fake_new(&cfg);
    static const char *const argv[] = {"-v", NULL};
    CHECK(it_spawn(&env, "presence-sweeper", argv, NULL, &sweeper) == 0);

    //  1. It subscribes to the due notices and to nothing else (changes
    //     would be most of the bus at scale): the first subscription is
    //     "deadline.", and no other is seen before it is ready.
    CHECK(it_fake_wait_subscription(fake, PRES_DEADLINE_PREFIX, 20000));

    //  2. Ready once the broker answered its `stats` (asked again if the
    //     broker is slow: only the first few are left unanswered here).
    pres_query_t q;
    zframe_t *id = s_next_request(&q, 20000);  //  ASan, busy box
    CHECK(id);
    CHECK_EQ(q.op, PRES_Q_STATS);
    CHECK(!it_proc_log_has(&sweeper, "ready:"));
    it_fake_reply(fake, &id, 42, NULL, NULL, 0);
    IT_POLL_UNTIL(
        it_proc_log_has(&sweeper, "ready:") || !it_proc_alive(&sweeper), 10000);
    CHECK(it_proc_log_has(&sweeper, "ready: broker answered (seq 42)"));
    //  Nothing more asked: the query client is closed once ready.
    CHECK(s_next_request(&q, 300) == NULL);
    CHECK(!it_fake_wait_subscription(fake, "", 10));

    //  3. A due notice: one expire with its session and deadline. The
    //     broker notifies again every ~1 s while the session is live: one
    //     more expire each time, the same, with the next seq.
    uint64_t d1 = (uint64_t)pres_now_ms() - 150;
    s_due("alice", "s1", d1);
    s_due("alice", "s1", d1);

    //  4. Frames that are not notices are counted and skipped: a body
    //     that does not decode, a topic naming another user than the
    //     body, a message of three frames and one of one frame; and a
    //     "gone" notice (deadline 0: the answer to someone's expire of a
    //     session the broker does not have) is ignored. The next notice
    //     is answered as usual.
    static const char garbage[] = "\xc1 not msgpack";
    const void *bad[] = {"deadline.eve", garbage};
    size_t bad_sizes[] = {12, sizeof garbage};
    it_fake_raw(fake, 2, bad, bad_sizes);
    char body[256];
    pres_deadline_t dl = {.user = "mallory", .session = "s1", .deadline = 7};
    size_t n = pres_deadline_encode(&dl, body, sizeof body);
    CHECK(n > 0);
    const void *mismatch[] = {"deadline.trent", body};
    size_t mismatch_sizes[] = {14, n};
    it_fake_raw(fake, 2, mismatch, mismatch_sizes);
    const void *three[] = {"deadline.mallory", body, body};
    size_t three_sizes[] = {16, n, n};
    it_fake_raw(fake, 3, three, three_sizes);
    const void *one[] = {"deadline.mallory"};
    size_t one_sizes[] = {16};
    it_fake_raw(fake, 1, one, one_sizes);
    it_fake_notice(fake, "bob", "s9", 0);
    s_due("bob", "s2", (uint64_t)pres_now_ms() - 10);
    CHECK(it_proc_alive(&sweeper));

    //  5. A change, even one ending a session, makes it send nothing (the
    //     sweeper is not subscribed: its XPUB filter drops it here).
    pres_change_t ch;
    memset(&ch, 0, sizeof(ch));
    ch.seq = 11;
    snprintf(ch.user, sizeof ch.user, "carol");
    snprintf(ch.session, sizeof ch.session, "s1");
    ch.state = PRES_OFFLINE;
    ch.prev = PRES_ONLINE;
    ch.reason = PRES_RSN_TIMEOUT;
    ch.at = (uint64_t)pres_now_ms();
    it_fake_change(fake, &ch);
    ch.seq = 12;
    ch.state = PRES_ONLINE;
    ch.reason = PRES_RSN_LOGIN;
    ch.sessions = 1;
    ch.deadline = (uint64_t)pres_now_ms() - 1000;  //  even one overdue
    it_fake_change(fake, &ch);
    //  A sentinel: its expire comes next, with nothing before it.
    s_due("dave", "d1", (uint64_t)pres_now_ms() - 1);

    //  6. SIGTERM: a clean stop and the figures: 5 well-formed notices
    //     (alice twice, bob's deadline 0, bob, dave), 4 expires, 1
    //     ignored, 4 bad frames.
    CHECK_EQ(it_proc_stop(&sweeper, 10000), 0);
    if (getenv("IT_VERBOSE"))
        it_proc_dump_log(&sweeper);
    bool figures = it_proc_log_has(
        &sweeper, "notices 5, expires sent 4, ignored 1, bad frames 4");
    if (!figures)
        it_proc_dump_log(&sweeper);
    CHECK(figures);
    CHECK(it_proc_log_has(&sweeper, "refused a frame on topic 'deadline.eve'"));
    CHECK(it_proc_log_has(&sweeper, "stopped"));
    it_fake_destroy(&fake);
    it_env_cleanup(&env);
    printf("it.sweeper_fake_broker: ok\n");
    return 0;
}

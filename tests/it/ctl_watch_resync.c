/*  it.ctl_watch_resync: `presencectl --json watch` against a scripted
    broker (the test binds the query ROUTER and the changes PUB): changes
    at or below the snapshot are skipped, the next ones printed one JSON
    object per line, and a seq gap prints a resync line and takes a new
    snapshot, after which printing goes on from the new seq. A second run
    loses the last changes of a quiet stream: the broker's head (`stats`)
    shows them owed, and watch resyncs without waiting for a later change. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

#include "itfake.h"
#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static pres_config_t cfg;
static it_fake_t *fake;  //  the scripted broker
static it_proc_t watch;  //  presencectl watch: itutil kills and reaps it on
                         //  every failure (abort, crash, alarm)

//  Start `presencectl --json watch --count <count>`; its stdout is read
//  through the returned FILE, its stderr goes to watch.log_path.
static FILE *
s_watch_start(const char *count)
{
    const char *argv[] = {"--json", "watch", "--count", count, NULL};
    FILE *out = NULL;
    CHECK(it_spawn_piped(&env, "presencectl", argv, NULL, &watch, &out) == 0);
    return out;
}

//  Its output is read to the end: it exits 0 by itself (--count).
static void
s_watch_end(FILE *out)
{
    fclose(out);
    CHECK_EQ(it_proc_wait(&watch, 20000), 0);
}

//  Wait for a request of kind op and answer {ok, seq, users: []}. This
//  scripted broker keeps no change log: a changes_since on the way (watch
//  tries the log first after a gap) is answered `resync`.
static void
s_serve(pres_query_op_t op, uint64_t seq)
{
    pres_query_t q;
    zframe_t *id;
    while (true) {
        id = it_fake_request(fake, &q, 20000);  //  ASan on a busy box
        CHECK(id);
        if (q.op != PRES_Q_CHANGES_SINCE || op == PRES_Q_CHANGES_SINCE)
            break;
        it_fake_error(fake, &id, "resync");
    }
    CHECK_EQ(q.op, op);
    it_fake_reply(fake, &id, seq, NULL, NULL, 0);
}

static void
s_serve_snapshot(uint64_t seq)
{
    s_serve(PRES_Q_SNAPSHOT, seq);
}

static void
s_change(uint64_t seq)
{
    pres_change_t ch;
    memset(&ch, 0, sizeof(ch));
    ch.seq = seq;
    snprintf(ch.user, sizeof(ch.user), "u%" PRIu64, seq);
    ch.state = PRES_ONLINE;
    ch.prev = PRES_OFFLINE;
    ch.reason = PRES_RSN_LOGIN;
    ch.sessions = 1;
    ch.at = (uint64_t)pres_now_ms();
    it_fake_change(fake, &ch);
}

int
main(void)
{
    CHECK(it_env_init(&env, "ctl-watch") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    fake = it_fake_new(&cfg);
    FILE *p = s_watch_start("4");
    alarm(45);  //  a hung watch fails the test (ctest allows 60 s)

    CHECK(it_fake_wait_subscriber(fake, 10000));
    s_serve_snapshot(10);
    s_change(9);   //  held by the snapshot: skipped
    s_change(10);  //  same
    s_change(11);
    s_change(12);
    s_change(14);  //  gap: resync
    s_serve_snapshot(20);
    s_change(19);  //  held by the new snapshot
    s_change(20);
    s_change(21);
    s_change(22);

    const char *want[] = {"\"seq\":11,", "\"seq\":12,", "\"resync\":true",
                          "\"seq\":21,", "\"seq\":22,"};
    char line[4096];
    for (int i = 0; i < 5; i++) {
        CHECK(fgets(line, sizeof(line), p));
        fprintf(stderr, "  %s", line);
        CHECK(line[0] == '{' && line[strlen(line) - 2] == '}');
        CHECK(strstr(line, want[i]));
    }
    CHECK(strstr(line, "\"user\":\"u22\""));
    CHECK(!fgets(line, sizeof(line), p));  //  --count 4: done
    s_watch_end(p);
    alarm(0);
    it_proc_dump_log(&watch);
    CHECK(it_proc_log_has(&watch, "resync: seq gap (expected seq 13, got 14)"));

    //  Changes 32 and 33 are lost and nothing follows them.
    p = s_watch_start("2");
    alarm(45);
    CHECK(it_fake_wait_subscriber(fake, 10000));
    s_serve_snapshot(30);
    s_change(31);
    s_serve(PRES_Q_STATS, 33);  //  after ~2 s quiet: the head is 33
    s_serve_snapshot(33);       //  ~2 s later, still owed: resync
    s_change(34);
    const char *want2[] = {"\"seq\":31,", "\"resync\":true", "\"seq\":34,"};
    for (int i = 0; i < 3; i++) {
        CHECK(fgets(line, sizeof(line), p));
        fprintf(stderr, "  %s", line);
        CHECK(strstr(line, want2[i]));
    }
    CHECK(!fgets(line, sizeof(line), p));  //  --count 2: done
    s_watch_end(p);
    alarm(0);

    it_fake_destroy(&fake);
    it_env_cleanup(&env);
    printf("it.ctl_watch_resync: ok\n");
    return 0;
}

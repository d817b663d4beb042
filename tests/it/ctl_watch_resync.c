/*  it.ctl_watch_resync: `presencectl --json watch` against a scripted
    broker (the test binds the query ROUTER and the changes PUB): changes
    at or below the snapshot are skipped, the next ones printed one JSON
    object per line, and a seq gap prints a resync line and takes a new
    snapshot, after which printing goes on from the new seq. A second run
    loses the last changes of a quiet stream: the broker's head (`stats`)
    shows them owed, and watch resyncs without waiting for a later change. */
#include <signal.h>
#include <unistd.h>

#include "itutil.h"
#include "pres_mp.h"
#include "testutil.h"

static it_env_t env;
static pres_config_t cfg;
static zsock_t *router, *pub;

//  Wait for a request of kind op and answer {ok, seq, users: []}. This
//  scripted broker keeps no change log: a changes_since on the way (watch
//  tries the log first after a gap) is answered `resync`.
static void
s_serve(pres_query_op_t op, uint64_t seq)
{
    zsock_set_rcvtimeo(router, 5000);
    zmsg_t *m;
    zframe_t *id, *empty, *req;
    pres_query_t q;
    const char *why;
    char buf[64];
    pres_mp_writer_t w;
    while (true) {
        m = zmsg_recv(router);
        CHECK(m);
        CHECK_EQ(zmsg_size(m), 3);
        id = zmsg_pop(m);
        empty = zmsg_pop(m);
        req = zmsg_pop(m);
        CHECK_EQ(
            pres_query_decode(&q, zframe_data(req), zframe_size(req), &why), 0);
        if (q.op != PRES_Q_CHANGES_SINCE || op == PRES_Q_CHANGES_SINCE)
            break;
        pres_mp_writer_init(&w, buf, sizeof(buf));
        msgpack_pack_map(&w.pk, 2);
        pres_mp_pack_cstr(&w, "ok");
        msgpack_pack_false(&w.pk);
        pres_mp_pack_kv_str(&w, "error", "resync");
        zmsg_t *r = zmsg_new();
        zmsg_append(r, &id);
        zmsg_append(r, &empty);
        zmsg_addmem(r, buf, w.len);
        CHECK_EQ(zmsg_send(&r, router), 0);
        zframe_destroy(&req);
        zmsg_destroy(&m);
    }
    CHECK_EQ(q.op, op);
    pres_mp_writer_init(&w, buf, sizeof(buf));
    msgpack_pack_map(&w.pk, 3);
    pres_mp_pack_cstr(&w, "ok");
    msgpack_pack_true(&w.pk);
    pres_mp_pack_kv_uint(&w, "seq", seq);
    pres_mp_pack_cstr(&w, "users");
    msgpack_pack_array(&w.pk, 0);
    zmsg_t *r = zmsg_new();
    zmsg_append(r, &id);
    zmsg_append(r, &empty);
    zmsg_addmem(r, buf, w.len);
    CHECK_EQ(zmsg_send(&r, router), 0);
    zframe_destroy(&req);
    zmsg_destroy(&m);
    usleep(200 * 1000);  //  let the reply land before changes follow
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
    char buf[PRES_MSG_MAX], topic[PRES_TOPIC_MAX];
    size_t len = pres_change_encode(&ch, buf, sizeof(buf));
    CHECK(len > 0);
    pres_change_topic(ch.user, topic);
    CHECK_EQ(zstr_sendm(pub, topic), 0);
    CHECK_EQ(zsock_send(pub, "b", buf, len), 0);
}

int
main(void)
{
    CHECK(it_env_init(&env, "ctl-watch") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    char ep[PRES_ENDPOINT_MAX + 1], ctl[IT_PATH_MAX + 32];
    snprintf(ep, sizeof(ep), "@%s", cfg.query_endpoint);
    router = zsock_new_router(ep);
    snprintf(ep, sizeof(ep), "@%s", cfg.changes_endpoint);
    pub = zsock_new_pub(ep);
    CHECK(router && pub);
    CHECK(it_build_path("presencectl", ctl, sizeof(ctl)) == 0);
    setenv("PRESENCE_DATA_DIR", env.data_dir, 1);
    setenv("PRESENCE_RUN_DIR", env.run_dir, 1);

    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s --json watch --count 4 2>%s/watch.err", ctl,
             env.dir);
    FILE *p = popen(cmd, "r");
    CHECK(p);
    alarm(20);  //  a hung watch fails the test

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
    CHECK_EQ(pclose(p), 0);
    alarm(0);

    char errpath[IT_PATH_MAX + 16], err[2048] = "";
    snprintf(errpath, sizeof(errpath), "%s/watch.err", env.dir);
    FILE *f = fopen(errpath, "r");
    CHECK(f);
    size_t n = fread(err, 1, sizeof(err) - 1, f);
    err[n] = '\0';
    fclose(f);
    fprintf(stderr, "%s", err);
    CHECK(strstr(err, "resync: seq gap (expected seq 13, got 14)"));

    //  Changes 32 and 33 are lost and nothing follows them.
    snprintf(cmd, sizeof(cmd), "%s --json watch --count 2 2>%s/watch2.err", ctl,
             env.dir);
    p = popen(cmd, "r");
    CHECK(p);
    alarm(20);
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
    CHECK_EQ(pclose(p), 0);
    alarm(0);

    zsock_destroy(&pub);
    zsock_destroy(&router);
    it_env_cleanup(&env);
    printf("it.ctl_watch_resync: ok\n");
    return 0;
}

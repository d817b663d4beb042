/*  it.broker_authority: account status changes only through the admin
    endpoint. From outside: an `account` event from a publisher naming
    itself gateway-x is refused and counted; the `account` query op is
    refused ("forbidden") and counted; an admin peer changes the account
    and is recorded; a peer not in admin_peers is refused (as another
    admin_peers setting, and as root also from a child that setuid()s to
    nobody); requests with more than one body frame get ONE error frame
    on the query and admin endpoints; the broker refuses to start on a
    group-writable run_dir or on insecure tcp:// beyond loopback. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itutil.h"
#include "testutil.h"

static it_env_t env;
static pres_config_t cfg;
static it_proc_t broker;

//  Wait until the stat at path reaches want (10 s).
static uint64_t
s_wait_stat(const char *path, uint64_t want)
{
    return it_wait_stat(&cfg, path, want, 10000);
}

static const char *
s_account_of(const char *user)
{
    static char account[16];
    char state[16];
    if (it_get_user(&cfg, user, state, NULL, NULL, account) != 0)
        return "unknown";
    return account;
}

//  Send frames on a DEALER to endpoint and collect the reply's frames
//  (up to 8) for 500 ms after the first one. Returns the frame count.
static int
s_dealer(const char *endpoint, int nframes, const char *const *frames,
         const size_t *sizes, zframe_t **reply)
{
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    CHECK(dealer);
    zsock_set_linger(dealer, 0);
    CHECK(zsock_connect(dealer, "%s", endpoint) == 0);
    for (int i = 0; i < nframes; i++)
        CHECK(zmq_send(zsock_resolve(dealer), frames[i], sizes[i],
                       i + 1 < nframes ? ZMQ_SNDMORE : 0) >= 0);
    int n = 0;
    zmq_pollitem_t item = {zsock_resolve(dealer), 0, ZMQ_POLLIN, 0};
    int wait = 3000;
    while (n < 8 && zmq_poll(&item, 1, wait) > 0) {
        reply[n++] = zframe_recv(dealer);
        wait = 500;  //  anything more must come right behind
    }
    zsock_destroy(&dealer);
    return n;
}

//  Requests of several body frames: exactly the delimiter and one error
//  frame come back.
static void
s_framing(const char *endpoint)
{
    uint8_t req[256];
    pres_query_t q = {.op = PRES_Q_STATS};
    size_t len = pres_query_encode(&q, req, sizeof(req));
    CHECK(len > 0);
    const char *frames[4] = {"", (const char *)req, (const char *)req, "x"};
    size_t sizes[4] = {0, len, len, 1};
    zframe_t *reply[8] = {NULL};
    int n = s_dealer(endpoint, 4, frames, sizes, reply);
    CHECK_EQ(n, 2);
    CHECK_EQ(zframe_size(reply[0]), 0);
    bool ok = true;
    CHECK(it_mp_bool(reply[1], "ok", &ok) == 0 && !ok);
    CHECK_STR(it_str(reply[1], "error"), "a request is one frame");
    for (int i = 0; i < n; i++)
        zframe_destroy(&reply[i]);
    //  Without a delimiter (a bare DEALER) the envelope is the identity:
    //  still one error frame for two body frames.
    n = s_dealer(endpoint, 2, frames + 1, sizes + 1, reply);
    CHECK_EQ(n, 1);
    CHECK(it_mp_bool(reply[0], "ok", &ok) == 0 && !ok);
    zframe_destroy(&reply[0]);
}

//  Copy the file at from to to, mode 0755: the build tree may sit below a
//  directory nobody cannot enter (/root in a fresh checkout).
static void
s_copy_exe(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    FILE *out = fopen(to, "wb");
    CHECK(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        CHECK(fwrite(buf, 1, n, out) == n);
    CHECK(!ferror(in));
    fclose(in);
    CHECK(fclose(out) == 0);
    CHECK(chmod(to, 0755) == 0);
}

//  As root: a child that setuid()s to nobody runs `presencectl account`
//  against the admin endpoint; the broker (admin_peers = its own user,
//  root) must refuse it. The socket and its directories are opened to
//  everyone for this, so only the peer check stands in the way.
static void
s_refuse_nobody(void)
{
    struct passwd *nobody = getpwnam("nobody");
    if (geteuid() != 0 || !nobody) {
        printf("skipped: setuid child (needs root and a 'nobody' user)\n");
        return;
    }
    const char *sock = cfg.admin_endpoint + 6;
    CHECK(chmod(env.dir, 0755) == 0);
    CHECK(chmod(env.run_dir, 0755) == 0);
    CHECK(chmod(sock, 0777) == 0);
    char built[IT_PATH_MAX * 2], ctl[IT_PATH_MAX * 2];
    CHECK(it_build_path("presencectl", built, sizeof(built)) == 0);
    snprintf(ctl, sizeof(ctl), "%s/presencectl", env.dir);
    s_copy_exe(built, ctl);
    uint64_t peers = it_stat(&cfg, "forbidden.peers");
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        if (setgid(nobody->pw_gid) || setuid(nobody->pw_uid))
            _exit(100);
        setenv("PRESENCE_RUN_DIR", env.run_dir, 1);
        setenv("PRESENCE_DATA_DIR", env.data_dir, 1);
        execl(ctl, "presencectl", "--timeout", "1500", "account", "bob",
              "banned", (char *)NULL);
        _exit(101);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 3);  //  no answer: refused
    CHECK(s_wait_stat("forbidden.peers", peers + 1) >= peers + 1);
    CHECK_STR(s_account_of("bob"), "active");
}

int
main(void)
{
    CHECK(it_env_init(&env, "broker-authority") == 0);
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    pres_pub_t *pub = it_pub_new(&cfg, "gateway-x");
    CHECK(pub);
    CHECK(it_send_login(pub, "bob", "b1") == 0);
    CHECK(s_wait_stat("events.applied", 1) == 1);

    //  1. A publisher that names itself gateway-x cannot ban anyone.
    CHECK(it_send_account(pub, "bob", "banned") == 0);
    CHECK_EQ(s_wait_stat("forbidden.events", 1), 1);
    CHECK_EQ(it_stat(&cfg, "events.refused"), 1);
    CHECK_STR(s_account_of("bob"), "active");

    //  2. The account op on the query endpoint is forbidden and counted.
    pres_query_t q = {.op = PRES_Q_ACCOUNT, .status = PRES_ACC_BANNED};
    strcpy(q.user, "bob");
    zframe_t *rep = it_query(&cfg, &q);
    CHECK(rep);
    bool ok = true;
    CHECK(it_mp_bool(rep, "ok", &ok) == 0 && !ok);
    CHECK_STR(it_str(rep, "error"), "forbidden");
    zframe_destroy(&rep);
    CHECK_EQ(it_stat(&cfg, "forbidden.queries"), 1);
    CHECK_STR(s_account_of("bob"), "active");

    //  3. An admin peer (this process runs as the broker's user) can, and
    //  the broker records who asked.
    q.status = PRES_ACC_SUSPENDED;
    strcpy(q.by, "admin-alice");
    rep = it_admin(&cfg, &q);
    CHECK(rep);
    CHECK(it_mp_bool(rep, "ok", &ok) == 0 && ok);
    zframe_destroy(&rep);
    CHECK_STR(s_account_of("bob"), "suspended");
    CHECK(it_proc_log_has(&broker, "by admin-alice"));
    CHECK(it_admin_account(&cfg, "bob", "active") == 0);
    CHECK_STR(s_account_of("bob"), "active");
    char me[64];
    struct passwd *pw = getpwuid(geteuid());
    snprintf(me, sizeof(me), "by unix:%s", pw ? pw->pw_name : "?");
    CHECK(it_proc_log_has(&broker, me));
    //  A change whose asker gave up (its `until` has passed) is refused
    //  and changes nothing: it must not undo a newer change later.
    q.status = PRES_ACC_BANNED;
    q.until = (uint64_t)pres_now_ms() - 1;
    rep = it_admin(&cfg, &q);
    CHECK(rep);
    CHECK(it_mp_bool(rep, "ok", &ok) == 0 && !ok);
    CHECK_STR(it_str(rep, "error"), "expired");
    zframe_destroy(&rep);
    CHECK_STR(s_account_of("bob"), "active");
    q.until = (uint64_t)pres_now_ms() + 60000;  //  in time: applied
    rep = it_admin(&cfg, &q);
    CHECK(rep);
    CHECK(it_mp_bool(rep, "ok", &ok) == 0 && ok);
    zframe_destroy(&rep);
    CHECK_STR(s_account_of("bob"), "banned");
    CHECK(it_admin_account(&cfg, "bob", "active") == 0);
    q.until = 0;
    //  Other ops are not taken there.
    q.op = PRES_Q_STATS;
    rep = it_admin(&cfg, &q);
    CHECK(rep);
    CHECK(it_mp_bool(rep, "ok", &ok) == 0 && !ok);
    zframe_destroy(&rep);

    //  4. Framing: one error frame for a request of several frames.
    s_framing(cfg.query_endpoint);
    s_framing(cfg.admin_endpoint);

    //  5. As root, a setuid(nobody) child is refused.
    s_refuse_nobody();
    pres_pub_destroy(&pub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);

    //  6. admin_peers naming another user: this process is refused (no
    //  answer at all) and counted.
    const char *other = geteuid() == 65534 ? "0" : "65534";
    it_env_set(&env, "admin_peers", other);
    CHECK(it_env_config(&env, &cfg) == 0);
    CHECK(it_broker_start(&env, NULL, &broker) == 0);
    CHECK(it_admin_account_refused(&cfg, "bob", "banned"));
    CHECK(s_wait_stat("forbidden.peers", 1) >= 1);
    CHECK_STR(s_account_of("bob"), "active");
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);

    //  7. Start-up refusals: a group-writable run_dir, and tcp:// without
    //  CURVE on a non-loopback address.
    CHECK(chmod(env.run_dir, 0770) == 0);
    CHECK(it_spawn(&env, "presence-broker", NULL, NULL, &broker) == 0);
    CHECK_EQ(it_proc_wait(&broker, 5000), 1);
    CHECK(it_proc_log_has(&broker, "group- or world-writable"));
    CHECK(chmod(env.run_dir, 0750) == 0);
    const char *insecure[] = {"PRESENCE_BUS_INSECURE_TCP=yes",
                              "PRESENCE_EVENTS_ENDPOINT=tcp://0.0.0.0:5599",
                              NULL};
    CHECK(it_spawn(&env, "presence-broker", NULL, insecure, &broker) == 0);
    CHECK_EQ(it_proc_wait(&broker, 5000), 1);
    CHECK(it_proc_log_has(&broker, "loopback addresses only"));

    it_env_cleanup(&env);
    return 0;
}

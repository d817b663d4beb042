/*  fault.full_disk: the data directory on a small tmpfs, filled up while
    users log in over HTTP. The broker must refuse what it cannot commit
    (logins answer 503 at the gateway, the refused events are counted),
    never publish a change it could not commit, keep the environment
    intact (mdb_stat, a restart with the same state), and carry on by
    itself once space returns. Needs root for the mount: exit 77 if not. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ithttp.h"
#include "testutil.h"

#define S_USERS_MAX 4000

static it_env_t env;
static it_proc_t broker, gateway;
static pres_config_t cfg;
static bool mounted;

//  Every change the broker published, by user: the last one seen.
typedef struct {
    char user[32];
    bool published;  //  a login change about it was seen
    bool answered;   //  HTTP said 200
    bool refused;    //  HTTP said 503 while the disk was full
    bool slow;       //  HTTP said 503 while the disk had room
} s_user_t;
static s_user_t users[S_USERS_MAX];
static int nusers;
static uint64_t max_seq;

static void
s_umount(void)
{
    if (mounted && umount2(env.data_dir, MNT_DETACH) == 0)
        mounted = false;
}

//  A failing CHECK aborts: unmount, then itutil's handler kills the
//  children and the default action ends us.
static struct sigaction s_itutil_abort;

static void
s_on_abort(int sig)
{
    if (mounted)
        umount2(env.data_dir, MNT_DETACH);
    sigaction(sig, &s_itutil_abort, NULL);
    raise(sig);
}

//  Take in every change waiting on sub.
static void
s_collect(zsock_t *sub, int timeout_ms)
{
    pres_change_t ch;
    int rc;
    while ((rc = it_recv(sub, &ch, NULL, timeout_ms)) != 0) {
        CHECK(rc > 0);
        if (rc != 1)
            continue;
        if (ch.seq > max_seq)
            max_seq = ch.seq;
        for (int i = 0; i < nusers; i++)
            if (strcmp(users[i].user, ch.user) == 0 &&
                ch.reason == PRES_RSN_LOGIN)
                users[i].published = true;
        timeout_ms = 0;
    }
}

//  Collect until the subscriber has every change the broker made (its
//  seq): s_collect alone stops at the first moment nothing is queued,
//  which on a busy box falls between two changes in flight.
static void
s_collect_all(zsock_t *sub)
{
    uint64_t head = it_stat(&cfg, "seq");
    IT_POLL_UNTIL((s_collect(sub, 50), max_seq >= head), 10000);
    if (max_seq < head)
        fprintf(stderr, "subscriber at seq %llu, broker at %llu\n",
                (unsigned long long)max_seq, (unsigned long long)head);
}

//  Log a new user in over HTTP; returns the status.
static int
s_login(int port)
{
    CHECK(nusers < S_USERS_MAX);
    s_user_t *u = &users[nusers++];
    snprintf(u->user, sizeof u->user, "fd-%05d", nusers);
    char *token = ith_token(&env, u->user, false, 600);
    CHECK(token);
    static ith_resp_t r;
    int status = ith_request(port, "POST", "/v1/login", token,
                             "{\"device\":\"disk-test\"}", &r, 10000);
    free(token);
    u->answered = status == 200;
    u->refused = status == 503;
    if (status != 200 && status != 503)
        fprintf(stderr, "login %s: %d %s\n", u->user, status, r.body);
    return status;
}

//  With room on the disk: log new users in until n answered 200. A 503
//  then is the gateway's bus_timeout_ms (200 ms) passing on a busy box,
//  or its fail-fast after a slow probe: such a user is marked slow (its
//  change may still come), and no event may be refused meanwhile (the
//  broker wrote every batch). At most 200 tries.
static void
s_logins_with_room(int port, int n)
{
    uint64_t refused0 = it_stat(&cfg, "events.refused");
    int ok = 0, slow = 0;
    for (int i = 0; i < 200 && ok < n; i++) {
        int status = s_login(port);
        CHECK(status == 200 || status == 503);
        if (status == 200) {
            ok++;
        } else {
            users[nusers - 1].refused = false;
            users[nusers - 1].slow = true;
            slow++;
        }
    }
    if (slow)
        fprintf(stderr, "with room: %d logins answered 503 (slow), %d 200\n",
                slow, ok);
    CHECK_EQ(ok, n);
    CHECK_EQ(it_stat(&cfg, "events.refused"), refused0);
}

//  Fill the tmpfs with a file until write() says ENOSPC.
static void
s_fill(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    static char block[4096];
    memset(block, 0xAB, sizeof block);
    while (write(fd, block, sizeof block) > 0)
        ;
    CHECK_EQ(errno, ENOSPC);
    //  Page-sized leftovers too.
    while (write(fd, block, 512) > 0)
        ;
    close(fd);
}

static bool
s_mdb_stat_ok(void)
{
    char cmd[IT_PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "mdb_stat -a %s >/dev/null 2>&1", env.data_dir);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "mdb_stat on %s: %d\n", env.data_dir, rc);
    return rc == 0;
}

int
main(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "fault.full_disk: needs root to mount a tmpfs\n");
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    CHECK_EQ(it_env_init(&env, "full-disk"), 0);
    //  4 MiB: room for LMDB's first pages, the lock file and the secret.
    if (mount("tmpfs", env.data_dir, "tmpfs", MS_NOSUID | MS_NODEV,
              "size=4m,mode=0750") != 0) {
        fprintf(stderr, "fault.full_disk: mount(tmpfs): %s: skipped\n",
                strerror(errno));
        return 77;
    }
    mounted = true;
    atexit(s_umount);
    struct sigaction sa = {.sa_handler = s_on_abort};
    sigaction(SIGABRT, &sa, &s_itutil_abort);
    it_env_set(&env, "bus_timeout_ms", "200");
    it_env_set(&env, "timeout", "600");
    it_env_set(&env, "rate_limit", "0");
    CHECK_EQ(it_env_config(&env, &cfg), 0);
    CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
    int port = ith_gateway_start(&env, NULL, &gateway);
    CHECK(port > 0);
    zsock_t *sub = pres_bus_sub_changes(&cfg, PRES_CHANGE_PREFIX);
    CHECK(sub);
    pres_pub_t *pub = it_pub_new(&cfg, "gateway-disk-probe");
    CHECK(pub);
    CHECK_EQ(it_sync(sub, pub, 10000), 0);

    //  1. Space: logins work.
    s_logins_with_room(port, 20);

    //  2. The disk fills up: new users cannot be written. LMDB first
    //  reuses its free pages, so a few more may pass; then they fail.
    char filler[IT_PATH_MAX + 16];
    snprintf(filler, sizeof filler, "%s/filler", env.data_dir);
    s_fill(filler);
    //  A 503 is either a login the broker refused or, on a busy box, one
    //  whose change came after bus_timeout_ms (200 ms) or that the gateway
    //  turned away after a failed probe: go on until the broker counted
    //  10 refused (the last one maybe only after the gateway gave up on
    //  it).
    uint64_t refused0 = it_stat(&cfg, "events.refused");
    uint64_t refused = 0;
    int ok_after_full = 0, n503 = 0;
    while (refused < 10 && nusers < S_USERS_MAX / 2) {
        int status = s_login(port);
        CHECK(status == 200 || status == 503);
        if (status == 200)
            ok_after_full++;
        else
            n503++;
        if (n503 >= 10)
            refused = it_wait_stat(&cfg, "events.refused", refused0 + 10,
                                   status == 503 ? 1000 : 0) -
                      refused0;
    }
    fprintf(stderr,
            "full disk: %d logins passed (LMDB reuses free pages; batches "
            "that fit still commit), %d answered 503, events.refused +%llu\n",
            ok_after_full, n503, (unsigned long long)refused);
    CHECK(refused >= 10);
    //  Each refused event is one of our logins, and none answered 200.
    CHECK(n503 >= (int)refused);
    CHECK(it_proc_alive(&broker));
    //  /healthz still answers (the broker is up and answering queries).
    static ith_resp_t r;
    CHECK_EQ(ith_request(port, "GET", "/healthz", NULL, NULL, &r, 5000), 200);

    //  3. Every login answered 200 was published; of those answered 503,
    //  at least the refused ones were not (a slow one may have been: its
    //  change came after the gateway's 503). That nothing was published
    //  that was not committed is checked by the restart in 5.
    s_collect_all(sub);
    int unpublished503 = 0, published503 = 0;
    for (int i = 0; i < nusers; i++) {
        if (users[i].refused && users[i].published)
            published503++;
        if (users[i].refused && !users[i].published)
            unpublished503++;
        if (users[i].answered)
            CHECK(users[i].published);
    }
    if (published503)
        fprintf(stderr, "%d logins answered 503 were published (slow)\n",
                published503);
    CHECK(unpublished503 >= (int)refused);

    //  4. Space returns: the broker carries on by itself (no restart).
    CHECK_EQ(unlink(filler), 0);
    int first_ok = -1;
    for (int i = 0; i < 200 && first_ok < 0; i++)
        if (s_login(port) == 200)
            first_ok = i;
    fprintf(stderr, "space back: login %d after the space returned passed\n",
            first_ok);
    CHECK(first_ok >= 0);
    s_logins_with_room(port, 20);
    s_collect_all(sub);
    CHECK_EQ(it_stat(&cfg, "seq"), max_seq);

    //  5. The environment is intact and holds exactly what was published:
    //  a clean stop, mdb_stat, a restart, then every published login is
    //  online and every refused one is not there.
    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    CHECK_EQ(it_proc_stop(&gateway, 5000), 0);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    CHECK(s_mdb_stat_ok());
    CHECK_EQ(it_broker_start(&env, NULL, &broker), 0);
    CHECK_EQ(it_stat(&cfg, "seq"), max_seq);
    int online = 0;
    for (int i = 0; i < nusers; i++) {
        char state[16];
        uint64_t sessions;
        int rc = it_get_user(&cfg, users[i].user, state, &sessions, NULL, NULL);
        if (users[i].published) {
            CHECK_EQ(rc, 0);
            CHECK_STR(state, "online");
            CHECK_EQ(sessions, 1);
            online++;
        } else {
            //  Refused: never written (or, created by a later batch, not
            //  live).
            CHECK(rc == 1 || (rc == 0 && strcmp(state, "offline") == 0));
        }
    }
    CHECK_EQ(it_stat(&cfg, "users.online"), (uint64_t)online);
    fprintf(stderr, "restart: %d users online, seq %llu, as published\n",
            online, (unsigned long long)max_seq);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    s_umount();
    it_env_cleanup(&env);
    printf("fault.full_disk: ok\n");
    return 0;
}

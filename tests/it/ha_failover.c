/*  it.ha_failover / it.ha_cutoff: fail-over through etcd (docs/ha.md).
    failover: etcd, a leader and a standby broker, the sweeper and a
    gateway; under mixed load kill -9 the leader and check that the
    standby leads within failover_ttl + 1 s, holds every change a
    subscriber saw and every account change acknowledged, that seq goes
    on, that the gateway recovers by itself and that the old leader
    rejoins as a standby and catches up.
    etcd3: the same on a three-member etcd, one member of which is killed
    first (the leader must keep leading through the other two).
    cutoff: a leader whose etcd stops (SIGSTOP) stops publishing within
    failover_ttl. Skips (77) when etcd is not installed. */
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "itutil.h"
#include "pres_jwt.h"
#include "pres_leader.h"
#include "testutil.h"

#define S_TTL   3
#define S_USERS 40

#define S_ETCD_MAX 3

static pid_t s_etcd_pid[S_ETCD_MAX];      //  member i, 0 once gone
static char s_etcd_urls[S_ETCD_MAX][40];  //  client URL of member i

static void
s_kill_etcd(void)
{
    for (int i = 0; i < S_ETCD_MAX; i++)
        if (s_etcd_pid[i] > 0) {
            kill(s_etcd_pid[i], SIGCONT);
            kill(s_etcd_pid[i], SIGKILL);
            waitpid(s_etcd_pid[i], NULL, 0);
            s_etcd_pid[i] = 0;
        }
}

static int
s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

//  n etcd members on free loopback ports in dir/etcd<i>; fills urls with
//  the comma list of their client URLs.
static void
s_start_etcd(const it_env_t *env, int n, char *urls, size_t cap)
{
    char client[S_ETCD_MAX][40], peer[S_ETCD_MAX][40], cluster[400] = "";
    urls[0] = 0;
    for (int i = 0; i < n; i++) {
        snprintf(client[i], sizeof client[i], "http://127.0.0.1:%d",
                 s_free_port());
        snprintf(s_etcd_urls[i], sizeof s_etcd_urls[i], "%s", client[i]);
        snprintf(peer[i], sizeof peer[i], "http://127.0.0.1:%d", s_free_port());
        size_t len = strlen(cluster);
        snprintf(cluster + len, sizeof cluster - len, "%se%d=%s", i ? "," : "",
                 i, peer[i]);
        len = strlen(urls);
        snprintf(urls + len, cap - len, "%s%s", i ? "," : "", client[i]);
    }
    for (int i = 0; i < n; i++) {
        char data[300], log[300], name[16];  //  "e" and any int
        snprintf(data, sizeof data, "%s/etcd%d", env->dir, i);
        snprintf(log, sizeof log, "%s/etcd%d.log", env->dir, i);
        snprintf(name, sizeof name, "e%d", i);
        s_etcd_pid[i] = fork();
        CHECK(s_etcd_pid[i] >= 0);
        if (s_etcd_pid[i] == 0) {
            //  Dies with the test, even when a CHECK aborts it.
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            FILE *f = freopen(log, "w", stderr);
            (void)f;
            dup2(2, 1);
            execlp("etcd", "etcd", "--name", name, "--data-dir", data,
                   "--listen-client-urls", client[i], "--advertise-client-urls",
                   client[i], "--listen-peer-urls", peer[i],
                   "--initial-advertise-peer-urls", peer[i],
                   "--initial-cluster", cluster, "--initial-cluster-state",
                   "new", (char *)NULL);
            _exit(127);
        }
    }
    atexit(s_kill_etcd);
}

//  Index of an etcd member that is not the raft leader.
static int
s_etcd_follower(const it_env_t *env, int n)
{
    for (int i = 0; i < n; i++) {
        char cmd[700], path[300], text[2048] = "";
        snprintf(path, sizeof path, "%s/status%d.json", env->dir, i);
        snprintf(cmd, sizeof cmd,
                 "curl -s -X POST -d '{}' %s/v3/maintenance/status > %s",
                 s_etcd_urls[i], path);
        CHECK(system(cmd) == 0);
        FILE *f = fopen(path, "r");
        CHECK(f);
        size_t got = fread(text, 1, sizeof text - 1, f);
        text[got] = 0;
        fclose(f);
        const char *me = strstr(text, "\"member_id\":\"");
        const char *leader = strstr(text, "\"leader\":\"");
        CHECK(me && leader);
        me += 13;
        leader += 10;
        if (strncmp(me, leader, strcspn(me, "\"")) != 0)
            return i;
    }
    CHECK(!"no etcd follower found");
    return 0;
}

static bool
s_have_etcd(void)
{
    return system("command -v etcd >/dev/null 2>&1") == 0;
}

//  A broker of its own: data and run dirs under dir/<node>.
typedef struct {
    char node[8];
    char data[200], run[200];
    char env[4][400];
    const char *envp[5];
    pres_config_t cfg;  //  direct (no etcd) view for its stats
    it_proc_t proc;
} s_broker_t;

static void
s_broker_init(const it_env_t *env, s_broker_t *b, const char *node)
{
    snprintf(b->node, sizeof b->node, "%s", node);
    snprintf(b->data, sizeof b->data, "%s/%s-data", env->dir, node);
    snprintf(b->run, sizeof b->run, "%s/%s-run", env->dir, node);
    mkdir(b->data, 0750);
    mkdir(b->run, 0750);
    snprintf(b->env[0], sizeof b->env[0], "PRESENCE_DATA_DIR=%s", b->data);
    snprintf(b->env[1], sizeof b->env[1], "PRESENCE_RUN_DIR=%s", b->run);
    snprintf(b->env[2], sizeof b->env[2], "PRESENCE_NODE_NAME=%s", node);
    snprintf(b->env[3], sizeof b->env[3], "PRESENCE_FAILOVER_TTL=%d", S_TTL);
    for (int i = 0; i < 4; i++)
        b->envp[i] = b->env[i];
    b->envp[4] = NULL;
    pres_config_defaults(&b->cfg);
    snprintf(b->cfg.data_dir, sizeof b->cfg.data_dir, "%s", b->data);
    snprintf(b->cfg.run_dir, sizeof b->cfg.run_dir, "%s", b->run);
    CHECK(pres_config_finish(&b->cfg) == 0);
}

static void
s_broker_start(const it_env_t *env, s_broker_t *b)
{
    CHECK(it_spawn(env, "presence-broker", NULL, b->envp, &b->proc) == 0);
}

//  stats.ha.role of b ("" when it does not answer).
static const char *
s_role(s_broker_t *b, uint64_t *seq)
{
    static char role[16];
    role[0] = 0;
    pres_query_t q = {.op = PRES_Q_STATS};
    zframe_t *r = it_query(&b->cfg, &q);
    if (r) {
        if (it_mp_str(r, "ha.role", role, sizeof role))
            role[0] = 0;
        if (seq && it_mp_uint(r, "seq", seq))
            *seq = 0;
        zframe_destroy(&r);
    }
    return role;
}

static bool
s_wait_role(s_broker_t *b, const char *want, int timeout_ms)
{
    int64_t until = pres_mono_ms() + timeout_ms;
    while (pres_mono_ms() < until) {
        if (strcmp(s_role(b, NULL), want) == 0)
            return true;
        zclock_sleep(50);  //  poll interval
    }
    return false;
}

//  ---- HTTP via libcurl: status of METHOD url with a bearer token.
static char s_body[65536];  //  the last response body (truncated)
static size_t s_body_len;

static size_t
s_sink(char *d, size_t s, size_t n, void *a)
{
    (void)a;
    size_t len = s * n;
    size_t room = sizeof s_body - 1 - s_body_len;
    size_t take = len < room ? len : room;
    memcpy(s_body + s_body_len, d, take);
    s_body_len += take;
    s_body[s_body_len] = 0;
    return len;
}

static long
s_http(const char *method, const char *url, const char *token, const char *body)
{
    CURL *c = curl_easy_init();
    char auth[1200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    s_body_len = 0;
    s_body[0] = 0;
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

//  The last change seen per user before the kill.
typedef struct {
    char user[PRES_ID_MAX + 1];
    pres_change_t last;
} s_seen_t;

static s_seen_t s_seen[S_USERS + 8];
static int s_nseen;
static uint64_t s_max_seq;

static void
s_note(const pres_change_t *ch)
{
    if (ch->seq > s_max_seq)
        s_max_seq = ch->seq;
    for (int i = 0; i < s_nseen; i++)
        if (strcmp(s_seen[i].user, ch->user) == 0) {
            if (ch->seq > s_seen[i].last.seq)
                s_seen[i].last = *ch;
            return;
        }
    CHECK(s_nseen < (int)(sizeof s_seen / sizeof s_seen[0]));
    snprintf(s_seen[s_nseen].user, sizeof s_seen[0].user, "%s", ch->user);
    s_seen[s_nseen++].last = *ch;
}

static void
s_drain_changes(zsock_t *sub, int quiet_ms)
{
    pres_change_t ch;
    int rc;
    while ((rc = it_recv(sub, &ch, NULL, quiet_ms)) != 0)
        if (rc == 1)
            s_note(&ch);
}

static int
s_failover(it_env_t *env, int etcd_members)
{
    s_broker_t a, b;
    s_broker_init(env, &a, "a");
    s_broker_init(env, &b, "b");
    s_broker_start(env, &a);
    CHECK(s_wait_role(&a, "leader", 10000));
    s_broker_start(env, &b);
    CHECK(s_wait_role(&b, "standby", 10000));

    int port = s_free_port();
    char listen[32], base[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(base, sizeof base, "http://%s", listen);
    it_env_set(env, "http_listen", listen);
    static it_proc_t sweeper, gateway;
    CHECK(it_spawn(env, "presence-sweeper", NULL, NULL, &sweeper) == 0);
    CHECK(it_spawn(env, "presence-gateway", NULL, NULL, &gateway) == 0);

    //  The test's own clients find the brokers through etcd too.
    pres_config_t cfg;
    CHECK(it_env_config(env, &cfg) == 0);
    CHECK(pres_leader_resolve(&cfg, 5000) == 0);
    zsock_t *sub;
    pres_pub_t *pub;
    CHECK(it_bus_open(&cfg, "presence.", "it-ha-1", &sub, &pub) == 0);

    //  Tokens (the gateway created the secret in data_dir).
    char secret[400];
    snprintf(secret, sizeof secret, "%s/jwt.secret", env->data_dir);
    CHECK(it_wait_file(secret, 10000));
    pres_jwt_t *jwt = pres_jwt_new(&cfg, false);
    CHECK(jwt);
    char *admin = pres_jwt_mint(jwt, "root", true, 600, time(NULL));
    char *user = pres_jwt_mint(jwt, "httpuser", false, 600, time(NULL));
    char url[200];
    snprintf(url, sizeof url, "%s/v1/stats", base);
    int64_t until = pres_mono_ms() + 10000;
    while (s_http("GET", url, admin, NULL) != 200 && pres_mono_ms() < until)
        zclock_sleep(100);  //  poll interval
    CHECK_EQ(s_http("GET", url, admin, NULL), 200);

    //  Mixed load: logins, heartbeats, logouts on the bus, HTTP logins,
    //  account changes acknowledged by the leader.
    char name[32], sess[32];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < S_USERS; i++) {
            snprintf(name, sizeof name, "u%d", i);
            snprintf(sess, sizeof sess, "s%d-%d", i, round);
            CHECK(it_send_login(pub, name, sess) == 0);
            CHECK(it_send_heartbeat(pub, name, sess,
                                    i % 3 ? "online" : "away") == 0);
            if (i % 4 == 0)
                CHECK(it_send_logout(pub, name, sess) == 0);
        }
    snprintf(url, sizeof url, "%s/v1/login", base);
    CHECK_EQ(s_http("POST", url, user, "{}"), 200);
    for (int i = 0; i < 4; i++) {
        snprintf(name, sizeof name, "acct%d", i);
        CHECK(it_admin_account(&cfg, name, "suspended") == 0);
    }
    //  Read until the subscriber has every change the leader made.
    uint64_t aseq = 0;
    until = pres_mono_ms() + 10000;
    do {
        s_drain_changes(sub, 200);
        s_role(&a, &aseq);
    } while (s_max_seq < aseq && pres_mono_ms() < until);
    if (etcd_members > 1) {
        //  Losing one etcd member of three (not etcd's raft leader, whose
        //  loss pauses etcd for an election) changes nothing: the broker
        //  keeps its lease through the other members for two ttls.
        int victim = s_etcd_follower(env, etcd_members);
        kill(s_etcd_pid[victim], SIGKILL);
        waitpid(s_etcd_pid[victim], NULL, 0);
        s_etcd_pid[victim] = 0;
        int64_t still = pres_mono_ms() + 2 * S_TTL * 1000;
        while (pres_mono_ms() < still) {
            CHECK_STR(s_role(&a, NULL), "leader");
            zclock_sleep(200);  //  sampling period of the check
        }
    }
    fprintf(stderr, "seen %d users, max seq %llu\n", s_nseen,
            (unsigned long long)s_max_seq);
    CHECK(s_nseen >= S_USERS);

    //  kill -9 the leader.
    it_proc_kill9(&a.proc);
    int64_t killed = pres_mono_ms();
    CHECK(s_wait_role(&b, "leader", (S_TTL + 5) * 1000));
    int64_t took = pres_mono_ms() - killed;
    fprintf(stderr, "fail-over took %lld ms (ttl %d s)\n", (long long)took,
            S_TTL);
    CHECK(took <= (S_TTL + 1) * 1000);

    //  Every change seen before the kill is the new leader's state.
    for (int i = 0; i < s_nseen; i++) {
        char state[16], account[16];
        uint64_t sessions, last_seen;
        CHECK_EQ(it_get_user(&b.cfg, s_seen[i].user, state, &sessions,
                             &last_seen, account),
                 0);
        CHECK_STR(state, pres_state_name(s_seen[i].last.state));
    }
    uint64_t bseq = 0;
    s_role(&b, &bseq);
    CHECK(bseq >= s_max_seq);
    for (int i = 0; i < 4; i++) {
        char state[16], account[16];
        uint64_t sessions, last_seen;
        snprintf(name, sizeof name, "acct%d", i);
        CHECK_EQ(
            it_get_user(&b.cfg, name, state, &sessions, &last_seen, account),
            0);
        CHECK_STR(account, "suspended");
    }

    //  The clients move by themselves: seq goes on from where it was.
    //  The sentinel's echo shows both reached the new leader.
    CHECK(pres_pub_wait(pub, 10000));
    CHECK(it_sync(sub, pub, 10000) == 0);
    CHECK(it_send_login(pub, "after", "s-after") == 0);
    pres_change_t ch;
    CHECK(it_wait_change(sub, "after", &ch, 10000) == 0);
    CHECK(ch.seq > s_max_seq);
    CHECK(ch.term > 0);
    snprintf(url, sizeof url, "%s/v1/stats", base);
    until = pres_mono_ms() + 10000;
    while (s_http("GET", url, admin, NULL) != 200 && pres_mono_ms() < until)
        zclock_sleep(100);  //  poll interval
    CHECK_EQ(s_http("GET", url, admin, NULL), 200);
    //  GET /v1/stats shows who leads now.
    if (!strstr(s_body, "\"role\":\"leader\"") ||
        !strstr(s_body, "\"leader\":\"b\""))
        fprintf(stderr, "stats: %s\n", s_body);
    CHECK(strstr(s_body, "\"leader\":\"b\"") != NULL);
    snprintf(url, sizeof url, "%s/v1/login", base);
    CHECK_EQ(s_http("POST", url, user, "{}"), 200);
    //  The standby's lag shows in /metrics (the gateway polls stats).
    snprintf(url, sizeof url, "%s/metrics", base);
    until = pres_mono_ms() + 5000;
    while (pres_mono_ms() < until &&
           (s_http("GET", url, admin, NULL) != 200 ||
            !strstr(s_body, "presence_broker_ha_term")))
        zclock_sleep(200);  //  poll interval
    CHECK(strstr(s_body, "presence_broker_ha_lag") != NULL);

    //  The old leader rejoins as a standby and catches up.
    s_broker_start(env, &a);
    CHECK(s_wait_role(&a, "standby", 10000));
    until = pres_mono_ms() + 10000;
    while (pres_mono_ms() < until) {
        s_role(&a, &aseq);
        s_role(&b, &bseq);
        if (aseq == bseq && aseq > 0)
            break;
        zclock_sleep(100);  //  poll interval
    }
    CHECK_EQ(aseq, bseq);
    CHECK(it_send_login(pub, "later", "s-later") == 0);
    CHECK(it_wait_change(sub, "later", &ch, 10000) == 0);
    until = pres_mono_ms() + 5000;
    while (pres_mono_ms() < until && (s_role(&a, &aseq), aseq < ch.seq))
        zclock_sleep(50);  //  poll interval
    CHECK_EQ(aseq, ch.seq);

    free(admin);
    free(user);
    pres_jwt_destroy(&jwt);
    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    //  A clean exit each (sanitizer findings make it non-zero).
    CHECK_EQ(it_proc_stop(&gateway, 5000), 0);
    CHECK_EQ(it_proc_stop(&sweeper, 5000), 0);
    CHECK_EQ(it_proc_stop(&a.proc, 5000), 0);
    CHECK_EQ(it_proc_stop(&b.proc, 5000), 0);
    return 0;
}

static int
s_cutoff(it_env_t *env)
{
    s_broker_t a;
    s_broker_init(env, &a, "a");
    s_broker_start(env, &a);
    CHECK(s_wait_role(&a, "leader", 10000));
    pres_config_t cfg;
    CHECK(it_env_config(env, &cfg) == 0);
    CHECK(pres_leader_resolve(&cfg, 5000) == 0);
    zsock_t *sub;
    pres_pub_t *pub;
    CHECK(it_bus_open(&cfg, "presence.", "it-ha-2", &sub, &pub) == 0);
    CHECK(it_send_login(pub, "before", "s1") == 0);
    pres_change_t ch;
    CHECK(it_wait_change(sub, "before", &ch, 5000) == 0);

    kill(s_etcd_pid[0], SIGSTOP);
    int64_t stopped = pres_mono_ms();
    //  Keep publishing logins; note the last change that came out.
    int64_t last_change = stopped;
    char name[32];
    for (int i = 0; pres_mono_ms() - stopped < (S_TTL + 2) * 1000; i++) {
        snprintf(name, sizeof name, "cut%d", i);
        if (pres_pub_ready(pub))
            it_send_login(pub, name, "s1");
        int rc;
        while ((rc = it_recv(sub, &ch, NULL, 20)) != 0)
            if (rc == 1)
                last_change = pres_mono_ms();
    }
    int64_t silent_after = last_change - stopped;
    fprintf(stderr, "last change %lld ms after etcd stopped (ttl %d s)\n",
            (long long)silent_after, S_TTL);
    CHECK(silent_after < S_TTL * 1000);
    CHECK(strcmp(s_role(&a, NULL), "leader") != 0);
    kill(s_etcd_pid[0], SIGCONT);
    //  etcd back: the lone broker leads again by itself.
    CHECK(s_wait_role(&a, "leader", (S_TTL * 3 + 5) * 1000));
    pres_pub_destroy(&pub);
    zsock_destroy(&sub);
    CHECK_EQ(it_proc_stop(&a.proc, 5000), 0);
    return 0;
}

int
main(int argc, char **argv)
{
    if (!s_have_etcd()) {
        printf("SKIP: etcd is not installed (apt-get install etcd-server "
               "etcd-client)\n");
        return 77;
    }
    const char *mode = argc > 1 ? argv[1] : "failover";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    it_env_t env;
    CHECK(it_env_init(&env, "ha") == 0);
    char url[200];
    int members = strcmp(mode, "etcd3") == 0 ? 3 : 1;
    s_start_etcd(&env, members, url, sizeof url);
    it_env_set(&env, "etcd_endpoints", url);
    it_env_set(&env, "etcd_prefix", "/presence-it");
    it_env_set(&env, "failover_ttl", "3");
    //  Wait for etcd to answer.
    int64_t until = pres_mono_ms() + 15000;
    char cmd[200];
    snprintf(cmd, sizeof cmd,
             "curl -sf -o /dev/null -X POST -d '{}' %.*s/v3/maintenance/status",
             (int)strcspn(url, ","), url);
    while (system(cmd) != 0) {
        CHECK(pres_mono_ms() < until);
        zclock_sleep(100);  //  poll interval
    }
    int rc = strcmp(mode, "cutoff") == 0 ? s_cutoff(&env)
                                         : s_failover(&env, members);
    s_kill_etcd();
    if (rc == 0)
        it_env_cleanup(&env);
    return rc;
}

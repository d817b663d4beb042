/*  it.netns_gateways (label netns): gateways on many hosts. Three network
    namespaces joined by a bridge stand for hosts: a broker host, two
    gateway hosts; a fourth holds a subscriber (`presencectl watch`). All
    bus traffic is tcp:// with CURVE. Logins and heartbeats go through
    both gateways; every change must reach the subscriber, in seq order
    without a gap. Skips (77) when not root or when `ip netns` fails. */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "itutil.h"
#include "pres_jwt.h"
#include "testutil.h"

#define S_USERS 20

static char s_tag[16];  //  per-run suffix of namespace and link names
static const char *const s_hosts[] = {"brk", "gw1", "gw2", "sub"};
#define S_NHOSTS 4

static int s_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
s_sh(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static void
s_teardown(void)
{
    for (int i = 0; i < S_NHOSTS; i++)
        s_sh("ip netns del %s%s >/dev/null 2>&1", s_hosts[i], s_tag);
    s_sh("ip link del br%s >/dev/null 2>&1", s_tag);
}

//  Hosts 10.77.<n>.1 .. .4 on a bridge; the test itself is .254.
static int
s_setup(int net)
{
    atexit(s_teardown);
    if (s_sh("ip link add br%s type bridge && ip addr add 10.77.%d.254/24 "
             "dev br%s && ip link set br%s up",
             s_tag, net, s_tag, s_tag))
        return -1;
    for (int i = 0; i < S_NHOSTS; i++) {
        const char *h = s_hosts[i];
        if (s_sh("ip netns add %s%s", h, s_tag) ||
            s_sh("ip link add v%s%s type veth peer name p%s%s", h, s_tag, h,
                 s_tag) ||
            s_sh("ip link set p%s%s master br%s up", h, s_tag, s_tag) ||
            s_sh("ip link set v%s%s netns %s%s", h, s_tag, h, s_tag) ||
            s_sh("ip -n %s%s addr add 10.77.%d.%d/24 dev v%s%s", h, s_tag, net,
                 i + 1, h, s_tag) ||
            s_sh("ip -n %s%s link set v%s%s up", h, s_tag, h, s_tag) ||
            s_sh("ip -n %s%s link set lo up", h, s_tag))
            return -1;
    }
    return 0;
}

//  Spawn prog inside host i's namespace: setns in this (single-threaded)
//  process around the fork, then back.
static void
s_spawn_in(const it_env_t *env, int host, const char *prog,
           const char *const *argv, const char *const *extra, it_proc_t *p)
{
    char path[128];
    snprintf(path, sizeof path, "/var/run/netns/%s%s", s_hosts[host], s_tag);
    int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    int ns = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(home >= 0 && ns >= 0);
    CHECK(setns(ns, CLONE_NEWNET) == 0);
    int rc = it_spawn(env, prog, argv, extra, p);
    CHECK(setns(home, CLONE_NEWNET) == 0);
    close(ns);
    close(home);
    CHECK(rc == 0);
}

static char s_body[512];  //  the last response body (cut)
static size_t s_body_len;

static size_t
s_sink(char *d, size_t s, size_t n, void *a)
{
    (void)a;
    size_t len = s * n;
    size_t take = sizeof s_body - 1 - s_body_len;
    take = len < take ? len : take;
    memcpy(s_body + s_body_len, d, take);
    s_body_len += take;
    s_body[s_body_len] = '\0';
    return len;
}

static long
s_post(const char *url, const char *token, const char *body)
{
    CURL *c = curl_easy_init();
    char auth[1200];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    s_body_len = 0;
    s_body[0] = '\0';
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

//  POST until the answer is not 503, the gateway's "try again" (a worker
//  whose publisher is still attaching to the broker answers it for a
//  login the broker applied, when a gateway starts on a busy box), or
//  for 15 s. Returns the last status; prints the body if it is not want.
static long
s_post_retry(const char *url, const char *token, const char *body, long want)
{
    int64_t until = pres_mono_ms() + 15000;
    long status;
    while ((status = s_post(url, token, body)) == 503 &&
           pres_mono_ms() < until) {
        fprintf(stderr, "POST %s: 503 %s, again\n", url, s_body);
        zclock_sleep(100);  //  retry interval
    }
    if (status != want)
        fprintf(stderr, "POST %s: %ld %s\n", url, status, s_body);
    return status;
}

//  Count lines of the watch log that carry `"user":"<user>"` and the
//  highest seq seen; false if the seqs are not contiguous.
static bool
s_scan_watch(const char *path, int *nchanges, bool *gap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[2048];
    uint64_t last = 0;
    *nchanges = 0;
    *gap = false;
    while (fgets(line, sizeof line, f)) {
        const char *s = strstr(line, "\"seq\":");
        if (!s || !strstr(line, "\"user\":"))
            continue;
        uint64_t seq = strtoull(s + 6, NULL, 10);
        if (last && seq != last + 1)
            *gap = true;
        last = seq;
        (*nchanges)++;
    }
    fclose(f);
    return true;
}

int
main(void)
{
    if (geteuid() != 0 || system("ip netns list >/dev/null 2>&1") != 0) {
        printf("SKIP: needs root and a working `ip netns`\n");
        return 77;
    }
    //  Namespaces left by an aborted run (its pid is gone) go first.
    s_sh("for ns in $(ip netns list | awk '{print $1}' | "
         "grep -E '^(brk|gw1|gw2|sub)p[0-9]+$'); do pid=${ns#???p}; "
         "kill -0 $pid 2>/dev/null || ip netns del $ns; done; "
         "for br in $(ip -o link show type bridge | awk -F': ' '{print $2}' "
         "| grep -E '^brp[0-9]+$'); do kill -0 ${br#brp} 2>/dev/null || "
         "ip link del $br; done");
    int net = 100 + getpid() % 100;
    snprintf(s_tag, sizeof s_tag, "p%d", (int)getpid());
    if (s_setup(net)) {
        printf("SKIP: cannot build the namespaces (ip netns/veth/bridge)\n");
        return 77;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    it_env_t env;
    CHECK(it_env_init(&env, "netns") == 0);

    //  Certificates: one per host, the broker's public cert to the
    //  clients, the clients' public certs in the broker's allowlist.
    char certs[300], clients[300], ctl[400];
    snprintf(certs, sizeof certs, "%s/certs", env.dir);
    snprintf(clients, sizeof clients, "%s/clients.d", env.dir);
    mkdir(certs, 0700);
    mkdir(clients, 0700);
    CHECK(it_build_path("presencectl", ctl, sizeof ctl) == 0);
    for (int i = 0; i < S_NHOSTS; i++) {
        CHECK(s_sh("%s keygen %s %s >/dev/null", ctl, s_hosts[i], certs) == 0);
        if (i > 0)
            CHECK(s_sh("cp %s/%s.cert %s/", certs, s_hosts[i], clients) == 0);
    }
    char ep[3][64], value[400];
    const char *keys[3] = {"events_endpoint", "changes_endpoint",
                           "query_endpoint"};
    for (int i = 0; i < 3; i++)
        snprintf(ep[i], sizeof ep[i], "tcp://10.77.%d.1:%d", net, 5555 + i);
    for (int i = 0; i < 3; i++)
        it_env_set(&env, keys[i], ep[i]);
    snprintf(value, sizeof value, "%s/brk.cert", certs);
    it_env_set(&env, "curve_server_public_file", value);
    it_env_set(&env, "curve_clients_dir", clients);
    snprintf(value, sizeof value, "%s/sub.cert_secret", certs);
    it_env_set(&env, "curve_secret_file", value);  //  hosts override it
    snprintf(value, sizeof value, "%s/jwt.secret", env.data_dir);
    it_env_set(&env, "jwt_secret_file", value);

    //  Per-host settings.
    static char envs[S_NHOSTS][4][400];
    static const char *envp[S_NHOSTS][5];
    for (int i = 0; i < S_NHOSTS; i++) {
        snprintf(envs[i][0], sizeof envs[i][0],
                 "PRESENCE_CURVE_SECRET_FILE=%s/%s.cert_secret", certs,
                 s_hosts[i]);
        snprintf(envs[i][1], sizeof envs[i][1],
                 "PRESENCE_HTTP_LISTEN=10.77.%d.%d:8080", net, i + 1);
        snprintf(envs[i][2], sizeof envs[i][2], "PRESENCE_RUN_DIR=%s/run-%s",
                 env.dir, s_hosts[i]);
        envp[i][0] = envs[i][0];
        envp[i][1] = envs[i][1];
        envp[i][2] = envs[i][2];
        envp[i][3] = NULL;
        char dir[300];
        snprintf(dir, sizeof dir, "%s/run-%s", env.dir, s_hosts[i]);
        mkdir(dir, 0750);
    }
    //  The broker binds every address of its host.
    static char bind_env[3][100];
    static const char *bind_envp[6];
    for (int i = 0; i < 3; i++) {
        snprintf(bind_env[i], sizeof bind_env[i],
                 "PRESENCE_%s=tcp://0.0.0.0:%d",
                 i == 0   ? "EVENTS_ENDPOINT"
                 : i == 1 ? "CHANGES_ENDPOINT"
                          : "QUERY_ENDPOINT",
                 5555 + i);
        bind_envp[i] = bind_env[i];
    }
    bind_envp[3] = envs[0][0];
    bind_envp[4] = envs[0][2];
    bind_envp[5] = NULL;

    static it_proc_t broker, gw1, gw2, watch;
    s_spawn_in(&env, 0, "presence-broker", NULL, bind_envp, &broker);
    s_spawn_in(&env, 1, "presence-gateway", NULL, envp[1], &gw1);
    s_spawn_in(&env, 2, "presence-gateway", NULL, envp[2], &gw2);
    const char *wargv[] = {"watch", "--json", NULL};
    s_spawn_in(&env, 3, "presencectl", wargv, envp[3], &watch);

    //  Tokens from the shared secret (the first gateway creates it).
    char secret[300];
    snprintf(secret, sizeof secret, "%s/jwt.secret", env.data_dir);
    CHECK(it_wait_file(secret, 10000));
    pres_config_t cfg;
    CHECK(it_env_config(&env, &cfg) == 0);
    pres_jwt_t *jwt = pres_jwt_new(&cfg, false);
    CHECK(jwt);

    //  Logins through both gateways once both are up (200), then a
    //  heartbeat that goes away through the other gateway.
    char url[2][100];
    for (int g = 0; g < 2; g++)
        snprintf(url[g], sizeof url[g], "http://10.77.%d.%d:8080/v1", net,
                 g + 2);
    char *probe = pres_jwt_mint(jwt, "probe", false, 600, time(NULL));
    for (int g = 0; g < 2; g++) {
        char u[260];
        snprintf(u, sizeof u, "%s/login", url[g]);
        int64_t until = pres_mono_ms() + 15000;
        long status;
        while ((status = s_post(u, probe, "{\"device\":\"probe\"}")) != 200 &&
               pres_mono_ms() < until)
            zclock_sleep(100);  //  poll interval
        if (status != 200)
            fprintf(stderr, "probe %s: %ld %s\n", u, status, s_body);
        CHECK_EQ(status, 200);
    }
    free(probe);
    //  The subscriber must be watching before the changes it must see.
    int64_t ready = pres_mono_ms() + 15000;
    while (!it_proc_log_has(&watch, "watching changes") &&
           pres_mono_ms() < ready)
        zclock_sleep(100);  //  poll interval
    CHECK(it_proc_log_has(&watch, "watching changes"));
    for (int i = 0; i < S_USERS; i++) {
        char user[32], u[260], body[128];
        snprintf(user, sizeof user, "nsuser%d", i);
        char *tok = pres_jwt_mint(jwt, user, false, 600, time(NULL));
        snprintf(u, sizeof u, "%s/login", url[i % 2]);
        CHECK_EQ(s_post_retry(u, tok, "{}", 200), 200);
        //  The session id is not needed: a heartbeat for an unknown
        //  session starts one, through the other gateway.
        snprintf(u, sizeof u, "%s/heartbeat", url[(i + 1) % 2]);
        snprintf(body, sizeof body,
                 "{\"session\":\"other%d\",\"state\":"
                 "\"away\"}",
                 i);
        CHECK_EQ(s_post_retry(u, tok, body, 204), 204);
        free(tok);
    }
    //  Each login of a new user is one change; the probe's two logins one
    //  or two. Wait for all users in the subscriber's output.
    int n = 0;
    bool gap = false;
    int64_t until = pres_mono_ms() + 15000;
    while (pres_mono_ms() < until) {
        s_scan_watch(watch.log_path, &n, &gap);
        bool all = true;
        for (int i = 0; i < S_USERS && all; i++) {
            char needle[48];
            snprintf(needle, sizeof needle, "\"user\":\"nsuser%d\"", i);
            all = it_proc_log_has(&watch, needle);
        }
        if (all)
            break;
        zclock_sleep(200);  //  poll interval
    }
    for (int i = 0; i < S_USERS; i++) {
        char needle[48];
        snprintf(needle, sizeof needle, "\"user\":\"nsuser%d\"", i);
        if (!it_proc_log_has(&watch, needle)) {
            it_proc_dump_log(&watch);
            CHECK(it_proc_log_has(&watch, needle));
        }
    }
    s_scan_watch(watch.log_path, &n, &gap);
    fprintf(stderr, "subscriber saw %d changes from 2 gateway hosts\n", n);
    CHECK(!gap);
    CHECK(n >= S_USERS);

    pres_jwt_destroy(&jwt);
    it_proc_stop(&watch, 5000);
    CHECK_EQ(it_proc_stop(&gw1, 5000), 0);
    CHECK_EQ(it_proc_stop(&gw2, 5000), 0);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    s_teardown();
    it_env_cleanup(&env);
    return 0;
}

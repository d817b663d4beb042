/*  it.curve_tcp: the bus between hosts. The broker on tcp:// with CURVE
    accepts a client whose public certificate is in curve_clients_dir,
    refuses one that is not (no event applied, no query answered), and
    refuses to start on tcp:// without CURVE. Its admin endpoint on tcp://
    admits only the keys in curve_admin_dir: a bus client is refused
    there, an admin key changes an account and is recorded by name. */
#include "itutil.h"
#include "testutil.h"

#include <unistd.h>

static void
s_cert(const it_env_t *env, const char *dir, const char *name, char *secret,
       char *public_path)
{
    zcert_t *cert = zcert_new();
    CHECK(cert);
    zcert_set_meta(cert, "name", "%s", name);
    char path[PRES_PATH_MAX - 8];  //  room for "_secret"
    snprintf(path, sizeof path, "%s/%s/%s.cert", env->dir, dir, name);
    CHECK_EQ(zcert_save(cert, path), 0);
    snprintf(secret, PRES_PATH_MAX, "%s_secret", path);
    if (public_path)
        snprintf(public_path, PRES_PATH_MAX, "%s", path);
    zcert_destroy(&cert);
}

//  Four free loopback ports for the broker's endpoints.
static void
s_endpoints(it_env_t *env)
{
    const char *keys[4] = {"events_endpoint", "changes_endpoint",
                           "query_endpoint", "admin_endpoint"};
    for (int i = 0; i < 4; i++) {
        int port = it_free_port();
        CHECK(port > 0);
        char ep[64];
        snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", port);
        it_env_set(env, keys[i], ep);
    }
}

static void
s_client_cfg(const it_env_t *env, pres_config_t *cfg, const char *secret,
             const char *server_public)
{
    CHECK_EQ(it_env_config(env, cfg), 0);
    snprintf(cfg->curve_secret_file, sizeof cfg->curve_secret_file, "%s",
             secret);
    snprintf(cfg->curve_server_public_file,
             sizeof cfg->curve_server_public_file, "%s", server_public);
    cfg->curve_clients_dir[0] = '\0';
}

int
main(void)
{
    it_env_t env;
    CHECK_EQ(it_env_init(&env, "curve"), 0);
    char dir[PRES_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/certs", env.dir);
    CHECK_EQ(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof dir, "%s/clients.d", env.dir);
    CHECK_EQ(mkdir(dir, 0700), 0);
    snprintf(dir, sizeof dir, "%s/admin.d", env.dir);
    CHECK_EQ(mkdir(dir, 0700), 0);

    char broker_secret[PRES_PATH_MAX], broker_public[PRES_PATH_MAX];
    char good_secret[PRES_PATH_MAX], bad_secret[PRES_PATH_MAX];
    s_cert(&env, "certs", "broker", broker_secret, broker_public);
    s_cert(&env, "clients.d", "gw1", good_secret, NULL);  //  allowed
    s_cert(&env, "certs", "intruder", bad_secret, NULL);  //  not listed
    //  The allowlist holds public certificates only.
    char path[PRES_PATH_MAX];
    snprintf(path, sizeof path, "%s/clients.d/gw1.cert_secret", env.dir);
    char moved[PRES_PATH_MAX];
    snprintf(moved, sizeof moved, "%s/certs/gw1.cert_secret", env.dir);
    CHECK_EQ(rename(path, moved), 0);
    snprintf(good_secret, sizeof good_secret, "%s", moved);
    char ops_secret[PRES_PATH_MAX];
    s_cert(&env, "admin.d", "ops", ops_secret, NULL);  //  an admin key
    snprintf(path, sizeof path, "%s/admin.d/ops.cert_secret", env.dir);
    snprintf(moved, sizeof moved, "%s/certs/ops.cert_secret", env.dir);
    CHECK_EQ(rename(path, moved), 0);
    snprintf(ops_secret, sizeof ops_secret, "%s", moved);

    //  Ports the kernel says are free (a fixed formula such as
    //  20000 + pid % 20000 collided with other tests' and clients'
    //  ephemeral ports under ctest -j2: the broker failed to bind).
    s_endpoints(&env);

    //  tcp:// without CURVE: the broker refuses to start.
    static it_proc_t broker;
    CHECK_EQ(it_spawn(&env, "presence-broker", NULL, NULL, &broker), 0);
    CHECK(it_proc_wait(&broker, 20000) > 0);
    CHECK(it_proc_log_has(&broker, "CURVE"));

    snprintf(dir, sizeof dir, "%s/clients.d", env.dir);
    it_env_set(&env, "curve_secret_file", broker_secret);
    it_env_set(&env, "curve_clients_dir", dir);
    it_env_set(&env, "curve_server_public_file", broker_public);
    snprintf(dir, sizeof dir, "%s/admin.d", env.dir);
    it_env_set(&env, "curve_admin_dir", dir);
    pres_config_t good;
    //  A port may still be taken between our probe and the bind: then the
    //  broker exits at once and we try other ports.
    bool up = false;
    for (int attempt = 0; attempt < 5 && !up; attempt++) {
        if (attempt)
            s_endpoints(&env);
        CHECK_EQ(it_spawn(&env, "presence-broker", NULL, NULL, &broker), 0);
        s_client_cfg(&env, &good, good_secret, broker_public);
        IT_POLL_UNTIL(
            (up = it_wait_query(&good, 200)) || !it_proc_alive(&broker), 20000);
        if (!up) {
            it_proc_dump_log(&broker);
            it_proc_kill9(&broker);
        }
    }
    CHECK(up);

    //  The listed client: events applied, queries answered.
    pres_pub_t *pub = it_pub_new(&good, "gateway-curve-1");
    CHECK(pub);
    CHECK_EQ(it_send_login(pub, "alice", "s1"), 0);
    CHECK(it_wait_user(&good, "alice", "online", 10000));
    char state[16] = "", account[16];
    uint64_t sessions = 0, last_seen;
    CHECK_EQ(it_get_user(&good, "alice", state, &sessions, &last_seen, account),
             0);
    CHECK_EQ(sessions, 1);

    //  The unlisted client: its handshake is refused, so it never sees the
    //  broker attach and its queries are never answered.
    pres_config_t bad;
    s_client_cfg(&env, &bad, bad_secret, broker_public);
    CHECK(!it_wait_query(&bad, 1000));
    pres_pub_t *intruder = pres_pub_new(&bad, "gateway-intruder");
    CHECK(intruder);
    CHECK(!pres_pub_wait(intruder, 1000));
    pres_event_t ev = {.type = PRES_EV_LOGIN};
    snprintf(ev.user, sizeof ev.user, "mallory");
    snprintf(ev.session, sizeof ev.session, "m1");
    CHECK_EQ(pres_pub_send(intruder, &ev, 200), -1);
    CHECK_EQ(
        it_get_user(&good, "mallory", state, &sessions, &last_seen, account),
        1);
    pres_pub_destroy(&intruder);

    //  Admin endpoint: the bus client gw1 is refused, the ops key gets in.
    CHECK(it_admin_account_refused(&good, "alice", "banned"));
    //  At least once: a query client that times out on a busy box asks
    //  again (seen: 2 under ctest --repeat at load 20).
    CHECK(it_stat(&good, "forbidden.peers") >= 1);
    pres_config_t ops;
    s_client_cfg(&env, &ops, ops_secret, broker_public);
    CHECK_EQ(it_admin_account(&ops, "alice", "banned"), 0);
    it_get_user(&good, "alice", state, &sessions, &last_seen, account);
    CHECK_STR(account, "banned");
    CHECK(it_proc_log_has(&broker, "alice: active -> banned by curve:ops"));
    pres_pub_destroy(&pub);
    CHECK_EQ(it_proc_stop(&broker, 5000), 0);
    it_env_cleanup(&env);
    printf("it.curve_tcp: OK\n");
    return 0;
}

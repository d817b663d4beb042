/*  test_config: defaults, file, environment precedence, derived values
    and every kind of bad input. */
#include "pres_config.h"
#include "testutil.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_path[] = "/tmp/pres_config_XXXXXX";

static void
s_write(const char *text)
{
    FILE *file = fopen(s_path, "w");
    CHECK(file);
    fputs(text, file);
    fclose(file);
}

int
main(void)
{
    int fd = mkstemp(s_path);
    CHECK(fd >= 0);
    close(fd);
    pres_config_t cfg;

    //  Embedded defaults: no file needed.
    pres_config_defaults(&cfg);
    CHECK_EQ(pres_config_load(&cfg, NULL), 0);
    CHECK_STR(cfg.data_dir, "./data");
    CHECK_STR(cfg.events_endpoint, "ipc://./run/events");
    CHECK_STR(cfg.changes_endpoint, "ipc://./run/changes");
    CHECK_STR(cfg.query_endpoint, "ipc://./run/query");
    CHECK_STR(cfg.admin_endpoint, "ipc://./run/admin");
    CHECK_STR(cfg.admin_peers, "");
    CHECK_EQ(cfg.max_sessions_per_user, 16);
    CHECK_STR(cfg.jwt_secret_file, "./data/jwt.secret");
    CHECK_STR(cfg.http_listen, "127.0.0.1:8080");
    CHECK_STR(cfg.jwt_alg, "HS256");
    CHECK_EQ(cfg.jwt_leeway, 30);
    CHECK_EQ(cfg.heartbeat, 30);
    CHECK(cfg.timeout == 120.0);
    CHECK_STR(cfg.unknown_users, "allow");

    //  File, with comments, blanks and spaces; env wins over the file.
    s_write("# a comment\n\n  run_dir = /tmp/r  \ntimeout=2.5\n"
            "heartbeat = 10\nunknown_users = deny\n");
    setenv("PRESENCE_HEARTBEAT", "7", 1);
    pres_config_defaults(&cfg);
    CHECK_EQ(pres_config_load(&cfg, s_path), 0);
    CHECK_STR(cfg.run_dir, "/tmp/r");
    CHECK_STR(cfg.query_endpoint, "ipc:///tmp/r/query");
    CHECK(cfg.timeout == 2.5);
    CHECK_EQ(cfg.heartbeat, 7);
    CHECK_STR(cfg.unknown_users, "deny");
    unsetenv("PRESENCE_HEARTBEAT");

    //  Bad input: each refused.
    const char *bad[] = {
        "nokey\n", "colour = blue\n", "timeout = soon\n", "timeout = -1\n",
        "heartbeat = 1x\n", "jwt_alg = none\n", "jwt_alg = RS256\n",
        "bus_insecure_tcp = maybe\n", "unknown_users = sometimes\n",
        "events_endpoint = tcp://10.0.0.1:5555\n",
        "account_sources = gateway\n",
        //  bus_insecure_tcp: loopback only
        "bus_insecure_tcp = yes\n"
        "events_endpoint = tcp://10.0.0.1:5555\n",
        "bus_insecure_tcp = yes\n"
        "query_endpoint = tcp://*:5555\n",
        "bus_insecure_tcp = yes\n"
        "changes_endpoint = tcp://eth0:5555\n",
        "bus_insecure_tcp = yes\n"
        "events_endpoint = tcp://128.0.0.1:5555\n",
        "bus_insecure_tcp = yes\n"
        "events_endpoint = tcp://127.0.0.1:1;10.0.0.1:2\n",
        //  the admin endpoint on tcp always needs CURVE
        "bus_insecure_tcp = yes\n"
        "admin_endpoint = tcp://127.0.0.1:5555\n",
        "curve_secret_file = /x.cert\n"
        "admin_endpoint = tcp://10.0.0.1:5555\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_write(bad[i]);
        pres_config_defaults(&cfg);
        CHECK_EQ(pres_config_load(&cfg, s_path), -1);
    }
    setenv("PRESENCE_TIMEOUT", "abc", 1);
    pres_config_defaults(&cfg);
    CHECK_EQ(pres_config_load(&cfg, NULL), -1);
    unsetenv("PRESENCE_TIMEOUT");
    pres_config_defaults(&cfg);
    CHECK_EQ(pres_config_load(&cfg, "/nonexistent/presence.conf"), -1);

    //  tcp:// is fine with CURVE configured, or explicitly insecure.
    s_write("events_endpoint = tcp://127.0.0.1:5555\nbus_insecure_tcp = yes\n"
            "query_endpoint = tcp://[::1]:5556\n"
            "changes_endpoint = tcp://localhost:5557\n");
    pres_config_defaults(&cfg);
    CHECK_EQ(pres_config_load(&cfg, s_path), 0);
    s_write("curve_secret_file = /x.cert\ncurve_admin_dir = /x\n"
            "admin_endpoint = tcp://10.0.0.1:5555\n");
    pres_config_defaults(&cfg);
    CHECK_EQ(pres_config_load(&cfg, s_path), 0);
    s_write("events_endpoint = tcp://127.0.0.1:5555\nbus_insecure_tcp = yes\n");
    pres_config_defaults(&cfg);
    CHECK_EQ(pres_config_load(&cfg, s_path), 0);

    //  Data and run directories: created 0750; an existing group- or
    //  world-writable one is refused.
    char dir[] = "/tmp/pres_config_dir_XXXXXX";
    CHECK(mkdtemp(dir));
    pres_config_t dirs;
    pres_config_defaults(&dirs);
    snprintf(dirs.data_dir, sizeof dirs.data_dir, "%s/data", dir);
    snprintf(dirs.run_dir, sizeof dirs.run_dir, "%s/run", dir);
    CHECK_EQ(pres_config_make_dirs(&dirs), 0);
    CHECK_EQ(pres_config_make_dirs(&dirs), 0);
    CHECK_EQ(chmod(dirs.run_dir, 0770), 0);
    CHECK_EQ(pres_config_make_dirs(&dirs), -1);
    CHECK_EQ(chmod(dirs.run_dir, 0750), 0);
    CHECK_EQ(chmod(dirs.data_dir, 0757), 0);
    CHECK_EQ(pres_config_make_dirs(&dirs), -1);
    CHECK_EQ(chmod(dirs.data_dir, 0755), 0);
    CHECK_EQ(pres_config_make_dirs(&dirs), 0);
    rmdir(dirs.data_dir);
    rmdir(dirs.run_dir);
    rmdir(dir);

    //  The printed config loads back to the same values.
    FILE *file = fopen(s_path, "w");
    CHECK(file);
    pres_config_print(&cfg, file);
    fclose(file);
    pres_config_t again;
    pres_config_defaults(&again);
    CHECK_EQ(pres_config_load(&again, s_path), 0);
    CHECK_STR(again.events_endpoint, cfg.events_endpoint);
    CHECK(again.bus_insecure_tcp);
    unlink(s_path);
    printf("test_config: OK\n");
    return 0;
}

/*  unit.ctl_args: presencectl's command-line parser: commands, options
    anywhere, validation (usage errors exit 2 before any broker call) and
    help for every command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_args.h"
#include "testutil.h"

static char out_buf[16384], err_buf[4096];

//  Parse a NULL-terminated argument list (without argv[0]).
static int
s_parse(ctl_args_t *a, const char *const *list)
{
    static char store[32][128];  //  writable copies: argv is char **
    char *argv[32];
    int argc = 0;
    for (const char *arg = "presencectl"; arg; arg = *list++) {
        CHECK(argc < 31 && strlen(arg) < sizeof(store[0]));
        strcpy(store[argc], arg);
        argv[argc] = store[argc];
        argc++;
    }
    argv[argc] = NULL;
    FILE *out = fmemopen(out_buf, sizeof(out_buf), "w");
    FILE *err = fmemopen(err_buf, sizeof(err_buf), "w");
    CHECK(out && err);
    int rc = ctl_args_parse(a, argc, argv, out, err);
    fclose(out);
    fclose(err);
    return rc;
}

#define PARSE(a, ...) s_parse((a), (const char *const[]){__VA_ARGS__, NULL})

static void
test_ok(void)
{
    ctl_args_t a;
    CHECK_EQ(PARSE(&a, "get", "alice"), 0);
    CHECK_EQ(a.cmd, CTL_CMD_GET);
    CHECK_STR(a.user, "alice");
    CHECK(!a.json);
    CHECK_EQ(a.timeout_ms, CTL_TIMEOUT_DEFAULT);

    CHECK_EQ(PARSE(&a, "-c", "/etc/p.conf", "--json", "stats"), 0);
    CHECK_EQ(a.cmd, CTL_CMD_STATS);
    CHECK_STR(a.config, "/etc/p.conf");
    CHECK(a.json);
    //  Global options after the command too.
    CHECK_EQ(PARSE(&a, "stats", "--json", "--timeout", "500", "-v"), 0);
    CHECK(a.json && a.verbose);
    CHECK_EQ(a.timeout_ms, 500);

    CHECK_EQ(PARSE(&a, "token", "ops", "--admin", "--ttl", "60"), 0);
    CHECK_EQ(a.cmd, CTL_CMD_TOKEN);
    CHECK(a.admin);
    CHECK_EQ(a.ttl, 60);
    CHECK_EQ(PARSE(&a, "token", "bob"), 0);
    CHECK_EQ(a.ttl, 3600);
    CHECK(!a.admin);

    CHECK_EQ(PARSE(&a, "list", "--state", "online", "--account", "active",
                   "--limit", "10", "--cursor", "bob", "--all"),
             0);
    CHECK_EQ(a.cmd, CTL_CMD_LIST);
    CHECK_STR(a.state, "online");
    CHECK_STR(a.account, "active");
    CHECK_STR(a.cursor, "bob");
    CHECK_EQ(a.limit, 10);
    CHECK(a.all);

    CHECK_EQ(PARSE(&a, "watch", "--count", "3"), 0);
    CHECK_EQ(a.cmd, CTL_CMD_WATCH);
    CHECK_EQ(a.count, 3);

    CHECK_EQ(PARSE(&a, "account", "mallory", "suspended", "--reason", "spam"),
             0);
    CHECK_EQ(a.cmd, CTL_CMD_ACCOUNT);
    CHECK_STR(a.user, "mallory");
    CHECK_STR(a.status, "suspended");
    CHECK_STR(a.reason, "spam");

    CHECK_EQ(PARSE(&a, "publish", "login", "alice", "--session", "s1",
                   "--device", "ios"),
             0);
    CHECK_EQ(a.cmd, CTL_CMD_PUBLISH);
    CHECK_STR(a.type, "login");
    CHECK_STR(a.user, "alice");
    CHECK_STR(a.session, "s1");
    CHECK_STR(a.device, "ios");
    CHECK_EQ(PARSE(&a, "publish", "heartbeat", "alice", "--session", "s1",
                   "--state", "away"),
             0);
    CHECK_EQ(PARSE(&a, "publish", "logout", "alice"), 0);
    CHECK_EQ(PARSE(&a, "publish", "expire", "alice", "--session", "s1",
                   "--deadline", "12345"),
             0);
    CHECK_EQ(a.deadline, 12345);
    CHECK_EQ(PARSE(&a, "publish", "account", "alice", "--status", "banned",
                   "--reason", "x"),
             0);
}

static void
test_usage(void)
{
    ctl_args_t a;
    struct {
        const char *const *argv;
        const char *says;
    } cases[] = {
        {(const char *const[]){NULL}, "no command"},
        {(const char *const[]){"frob", NULL}, "unknown command"},
        {(const char *const[]){"get", NULL}, "missing argument"},
        {(const char *const[]){"get", "a", "b", NULL}, "unexpected"},
        {(const char *const[]){"get", "no spaces", NULL}, "not a user id"},
        {(const char *const[]){"get", "alice", "--admin", NULL},
         "unknown option"},
        {(const char *const[]){"stats", "-x", NULL}, "unknown option"},
        {(const char *const[]){"stats", "--timeout", "0", NULL}, "--timeout"},
        {(const char *const[]){"stats", "-c", NULL}, "needs a value"},
        {(const char *const[]){"token", "a", "--ttl", "-5", NULL}, "--ttl"},
        {(const char *const[]){"list", "--state", "busy", NULL}, "--state"},
        {(const char *const[]){"list", "--account", "x", NULL}, "--account"},
        {(const char *const[]){"list", "--limit", "1001", NULL}, "--limit"},
        {(const char *const[]){"list", "--limit", NULL}, "needs a value"},
        {(const char *const[]){"watch", "--count", "x", NULL}, "--count"},
        {(const char *const[]){"account", "a", NULL}, "missing"},
        {(const char *const[]){"account", "a", "gone", NULL}, "STATUS"},
        {(const char *const[]){"publish", "ping", "a", NULL}, "TYPE"},
        {(const char *const[]){"publish", "heartbeat", "a", NULL},
         "needs --session"},
        {(const char *const[]){"publish", "expire", "a", NULL},
         "needs --session"},
        {(const char *const[]){"publish", "login", "a", "--state", "away",
                               NULL},
         "--state"},
        {(const char *const[]){"publish", "heartbeat", "a", "--session", "s",
                               "--state", "offline", NULL},
         "--state"},
        {(const char *const[]){"publish", "account", "a", NULL}, "--status"},
        {(const char *const[]){"publish", "login", "a", "--status", "banned",
                               NULL},
         "for account"},
        {(const char *const[]){"publish", "login", "a", "--session", "x y",
                               NULL},
         "--session"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memset(err_buf, 0, sizeof(err_buf));
        int rc = s_parse(&a, cases[i].argv);
        if (rc != CTL_EXIT_USAGE || !strstr(err_buf, cases[i].says)) {
            fprintf(stderr, "case %zu: rc %d, err: %s\n", i, rc, err_buf);
            CHECK(0);
        }
        CHECK(strstr(err_buf, "--help"));
    }
}

static void
test_help(void)
{
    ctl_args_t a;
    memset(out_buf, 0, sizeof(out_buf));
    CHECK_EQ(PARSE(&a, "--help"), 1);
    CHECK(strstr(out_buf, "usage: presencectl"));
    CHECK(strstr(out_buf, "exit codes"));
    CHECK(strstr(out_buf, "examples"));
    const char *cmds[] = {"token", "get",     "list",   "stats",
                          "watch", "account", "publish"};
    for (size_t i = 0; i < 7; i++) {
        char want[64];
        snprintf(want, sizeof(want), "usage: presencectl %s", cmds[i]);
        memset(out_buf, 0, sizeof(out_buf));
        CHECK_EQ(PARSE(&a, cmds[i], "--help"), 1);
        CHECK(strstr(out_buf, want));
        CHECK(strstr(out_buf, "examples:"));
        memset(out_buf, 0, sizeof(out_buf));
        CHECK_EQ(PARSE(&a, "help", cmds[i]), 1);
        CHECK(strstr(out_buf, want));
    }
    //  -h wins over a usage problem later on the line? No: help is given
    //  for whatever command was named.
    memset(out_buf, 0, sizeof(out_buf));
    CHECK_EQ(PARSE(&a, "-h", "get"), 1);
    CHECK(strstr(out_buf, "usage: presencectl get"));
    CHECK_EQ(PARSE(&a, "help", "frob"), CTL_EXIT_USAGE);
}

int
main(void)
{
    test_ok();
    test_usage();
    test_help();
    printf("unit.ctl_args: ok\n");
    return 0;
}
